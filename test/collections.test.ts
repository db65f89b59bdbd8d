// People, absence definitions and shift definitions through the HTTP surface: ingest, reads, paging,
// validation, deletes, scopes and tenant isolation (SPEC §1.4).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newTenant, PREFIX, useHarness } from './helpers/harness.ts';
import {
  absence,
  allPages,
  definition,
  followDelta,
  PERSON_FIELDS,
  person,
  put,
  putOk,
  seededToken,
} from './helpers/collections.ts';

const h = await useHarness({ TIMEHOOK_PAGE_SIZE: '3' });

const CHANGE_VERSION = /^[0-9A-F]{20}$/;

/** A person with every upstream field set, in a different key order than upstream's. */
const fullPerson = () => ({
  firstName: 'Ada',
  lastName: 'Peeters',
  pinCode: '1234',
  badgeNumber: '6767676',
  terminalGroup: { id: 3 },
  maxAdvance: 500,
  hourlyRate: 21.5,
  payGroup: 'Monthly',
  employeeNumber: 'E042',
  wtdStartDate: '2020-09-01',
  outOfServiceDate: '2030-08-31',
  inServiceDate: '2020-09-01',
  bankAccount: 'BE00 0000 0000 0000',
  socialSecurityNumber: '000-00-0000',
  passportNumber: 'EN000000',
  registerNumber: '90.02.28-000.00',
  drivingLicense: 'B',
  placeOfBirth: 'Brugge',
  birthDate: '1990-02-28',
  maritalStatus: 'LivingTogether',
  sex: 'Female',
  nationalityISOCode: 'BE',
  countryISOCode: 'BE',
  town: 'Gent',
  postalCode: '9000',
  address: 'Kerkstraat 1',
  email: 'ada@example.com',
  mobile: '+32 470 00 00 00',
  telephone: '+32 2 000 00 00',
  initials: 'A.P.',
  advanceCurrencyDefinition: { id: 2 },
  hourlyRateCurrencyDefinition: { id: 1 },
  periodClosingDate: '2026-01-31',
});

/** An absence definition with every upstream field set. */
const fullAbsenceDefinition = () => ({
  name: { default: 'Sick', translations: { nl: 'Ziek', fr: 'Malade' } },
  code: 'SICK',
  friendlyName: { default: 'Sick leave', translations: { nl: 'Ziekteverlof' } },
  friendlyCode: { default: 'SL' },
  allowedDurations: ['Duration', 'FullDay'],
  isEnabled: true,
  isReasonForClocking: true,
  absenceGroup: { id: 4 },
});

/** The object at `path` (read before) and the collection's change log since `deltaLink` are unchanged. */
async function assertUnchanged(token: string, path: string, before: unknown, deltaLink: string) {
  const got = await h.request({ method: 'GET', path, token });
  assert.equal(got.statusCode, 200, got.body);
  assert.deepEqual(got.json(), before);
  assert.deepEqual((await followDelta(h, token, deltaLink)).value, []);
}

/** Stores `body` at `/${collection}/${id}`; returns the stored object and a deltaLink taken right after. */
async function storedWithDeltaLink(token: string, collection: string, id: number, body: unknown) {
  const stored = await putOk(h, token, `/${collection}/${id}`, body);
  const load = (await h.request({ method: 'GET', path: `/${collection}?delta`, token })).json();
  return { stored, deltaLink: load.deltaLink as string };
}

describe('PUT /people/{id}', () => {
  test('creates a person: 201, Location, every upstream field in upstream order, null where omitted', async () => {
    const token = await h.token(newTenant());
    const res = await put(h, token, '/people/42', {
      firstName: 'Ada',
      lastName: 'Peeters',
      employeeNumber: 'E042',
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers.location, `${PREFIX}/people/42`);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ['changeVersion', 'id', ...PERSON_FIELDS]);
    assert.match(body.changeVersion, CHANGE_VERSION);
    const expected = Object.fromEntries(PERSON_FIELDS.map((f) => [f, null]));
    assert.deepEqual(
      { ...body, changeVersion: undefined },
      {
        changeVersion: undefined,
        id: 42,
        ...expected,
        firstName: 'Ada',
        lastName: 'Peeters',
        employeeNumber: 'E042',
      },
    );
    const got = await h.request({ method: 'GET', path: '/people/42', token });
    assert.equal(got.body, res.body);
  });

  test('a full person: GET, the list and the delta return every field as written, in upstream order', async () => {
    const token = await h.token(newTenant());
    const load = (await h.request({ method: 'GET', path: '/people?delta', token })).json();
    const res = await put(h, token, '/people/42', fullPerson());
    assert.equal(res.statusCode, 201, res.body);
    const expected = { changeVersion: res.json().changeVersion, id: 42, ...fullPerson() };
    const got = await h.request({ method: 'GET', path: '/people/42', token });
    assert.deepEqual(got.json(), expected);
    assert.deepEqual(Object.keys(got.json()), ['changeVersion', 'id', ...PERSON_FIELDS]);
    const list = (await h.request({ method: 'GET', path: '/people', token })).json();
    assert.deepEqual(list.value, [expected]);
    const delta = await followDelta(h, token, load.deltaLink);
    assert.deepEqual(delta.value, [{ changeType: 'InsertOrUpdate', data: expected }]);
    assert.deepEqual(Object.keys(delta.value[0]!.data), ['changeVersion', 'id', ...PERSON_FIELDS]);
  });

  test('a full person PUT again, in another key order, is 200 and records no change', async () => {
    const token = await h.token(newTenant());
    const { stored, deltaLink } = await storedWithDeltaLink(token, 'people', 42, fullPerson());
    const reordered = Object.fromEntries(Object.entries(fullPerson()).reverse());
    const again = await put(h, token, '/people/42', { ...reordered, id: 42 });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json(), stored);
    await assertUnchanged(token, '/people/42', stored, deltaLink);
  });

  test('fields left out of a replacing PUT become null', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/42', fullPerson());
    const replaced = await putOk(h, token, '/people/42', { lastName: 'Peeters' });
    assert.deepEqual(
      { ...replaced, changeVersion: undefined },
      {
        changeVersion: undefined,
        id: 42,
        ...Object.fromEntries(PERSON_FIELDS.map((f) => [f, null])),
        lastName: 'Peeters',
      },
    );
  });

  test('replaces an existing person: 200 and a higher changeVersion', async () => {
    const token = await h.token(newTenant());
    const first = await putOk(h, token, '/people/1', person(1));
    const res = await put(h, token, '/people/1', person(1, { lastName: 'Renamed', badgeNumber: 'B1' }));
    assert.equal(res.statusCode, 200);
    const second = res.json();
    assert.ok(second.changeVersion > first.changeVersion);
    assert.equal(second.lastName, 'Renamed');
    assert.equal(second.badgeNumber, 'B1');
    const got = await h.request({ method: 'GET', path: '/people/1', token });
    assert.deepEqual(got.json(), second);
  });

  test('an identical PUT is 200 with the unchanged object and records no change', async () => {
    const token = await h.token(newTenant());
    const first = await putOk(h, token, '/people/1', person(1));
    const load = (await h.request({ method: 'GET', path: '/people?delta', token })).json();
    const again = await put(h, token, '/people/1', { ...person(1), id: 1 });
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), first);
    const delta = await followDelta(h, token, load.deltaLink);
    assert.deepEqual(delta.value, []);
  });

  test('an id in the body must equal the path id', async () => {
    const token = await h.token(newTenant());
    const res = await put(h, token, '/people/1', { ...person(1), id: 2 });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json().validationErrors, [
      { property: 'id', message: 'must equal the id in the path (1)' },
    ]);
  });

  for (const bad of ['0', 'abc', '-1', '9007199254740993', '1.5']) {
    test(`a path id ${bad} is 400 and writes nothing`, async () => {
      const token = await h.token(newTenant());
      const res = await put(h, token, `/people/${bad}`, person(1));
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, 'BadRequest');
    });
  }

  test('unparsable JSON is 400 validationErrors', async () => {
    const token = await h.token(newTenant());
    const res = await put(h, token, '/people/1', '{"firstName":');
    assert.equal(res.statusCode, 400);
    assert.ok(Array.isArray(res.json().validationErrors));
  });
});

describe('validation of people and definitions', () => {
  const cases: [string, string, unknown, string][] = [
    ['people', 'displayName (not an upstream field)', { displayName: 'Ada' }, 'displayName'],
    ['people', 'firstName empty', { firstName: '' }, 'firstName'],
    ['people', 'lastName blank', { lastName: '   ' }, 'lastName'],
    ['people', 'lastName not a string', { lastName: 5 }, 'lastName'],
    ['people', 'badgeNumber empty', { lastName: 'A', badgeNumber: '' }, 'badgeNumber'],
    ['people', 'employeeNumber a number', { lastName: 'A', employeeNumber: 42 }, 'employeeNumber'],
    [
      'people',
      'employeeNumber too long',
      { lastName: 'A', employeeNumber: 'x'.repeat(257) },
      'employeeNumber',
    ],
    ['people', 'an unknown property', { lastName: 'A', nickname: 'a' }, 'nickname'],
    ['people', 'a changeVersion', { lastName: 'A', changeVersion: '00000000000000000001' }, 'changeVersion'],
    ['people', 'an id of 0', { lastName: 'A', id: 0 }, 'id'],
    ['people', 'a sex that is no upstream value', { sex: 'F' }, 'sex'],
    ['people', 'a maritalStatus that is no upstream value', { maritalStatus: 'Separated' }, 'maritalStatus'],
    ['people', 'a birthDate that does not exist', { birthDate: '2026-02-30' }, 'birthDate'],
    ['people', 'an inServiceDate that is no date', { inServiceDate: '01/03/2026' }, 'inServiceDate'],
    [
      'people',
      'an outOfServiceDate before inServiceDate',
      { inServiceDate: '2026-03-02', outOfServiceDate: '2026-03-01' },
      'outOfServiceDate',
    ],
    ['people', 'a negative hourlyRate', { hourlyRate: -0.5 }, 'hourlyRate'],
    ['people', 'a maxAdvance as a string', { maxAdvance: '500' }, 'maxAdvance'],
    ['people', 'a terminalGroup id of 0', { terminalGroup: { id: 0 } }, 'terminalGroup.id'],
    ['people', 'a terminalGroup that is a number', { terminalGroup: 3 }, 'terminalGroup'],
    [
      'people',
      'a currency link with another property',
      { hourlyRateCurrencyDefinition: { id: 1, code: 'EUR' } },
      'hourlyRateCurrencyDefinition.code',
    ],
    ['people', 'an email without @', { email: 'ada.example.com' }, 'email'],
    [
      'people',
      'a predefined reference',
      { lastName: 'A', externalReferences: { '@employee-number': 'E1' } },
      'externalReferences.@employee-number',
    ],
    [
      'people',
      'a bad custom name',
      { lastName: 'A', externalReferences: { '1abc': 'x' } },
      'externalReferences.1abc',
    ],
    [
      'people',
      'an empty custom value',
      { lastName: 'A', externalReferences: { HRMID: '' } },
      'externalReferences.HRMID',
    ],
    [
      'people',
      'a non-string custom value',
      { lastName: 'A', externalReferences: { HRMID: 1 } },
      'externalReferences.HRMID',
    ],
    ['absence-definitions', 'name missing', { code: 'A', isEnabled: true }, 'name'],
    [
      'absence-definitions',
      'name.default empty',
      { name: { default: '' }, code: 'A', isEnabled: true },
      'name.default',
    ],
    ['absence-definitions', 'name a string', { name: 'Sick', code: 'A', isEnabled: true }, 'name'],
    [
      'absence-definitions',
      'an unknown name property',
      { name: { default: 'S', short: 'S' }, code: 'A', isEnabled: true },
      'name.short',
    ],
    [
      'absence-definitions',
      'a translation key that is no language',
      { name: { default: 'S', translations: { 'not a tag': 'x' } }, code: 'A', isEnabled: true },
      'name.translations.not a tag',
    ],
    [
      'absence-definitions',
      'a translation that is not a string',
      { name: { default: 'S', translations: { nl: 1 } }, code: 'A', isEnabled: true },
      'name.translations.nl',
    ],
    ['absence-definitions', 'code missing', { name: { default: 'S' }, isEnabled: true }, 'code'],
    ['shift-definitions', 'code empty', { name: { default: 'S' }, code: '', isEnabled: true }, 'code'],
    [
      'shift-definitions',
      'isEnabled a string',
      { name: { default: 'S' }, code: 'A', isEnabled: 'yes' },
      'isEnabled',
    ],
    ['shift-definitions', 'isEnabled missing', { name: { default: 'S' }, code: 'A' }, 'isEnabled'],
    ...(
      [
        ['an unknown allowedDuration', { allowedDurations: ['Daily'] }, 'allowedDurations.0'],
        ['a repeated allowedDuration', { allowedDurations: ['FullDay', 'FullDay'] }, 'allowedDurations.1'],
        ['allowedDurations null', { allowedDurations: null }, 'allowedDurations'],
        ['a friendlyName without default', { friendlyName: { translations: {} } }, 'friendlyName.default'],
        ['a friendlyCode as a string', { friendlyCode: 'SL' }, 'friendlyCode'],
        ['isReasonForClocking a string', { isReasonForClocking: 'no' }, 'isReasonForClocking'],
        ['an absenceGroup id of 0', { absenceGroup: { id: 0 } }, 'absenceGroup.id'],
        [
          'an absenceGroup by external reference',
          { absenceGroup: { externalReferences: { X: 'y' } } },
          'absenceGroup.externalReferences',
        ],
      ] as const
    ).map(
      ([what, over, property]) =>
        ['absence-definitions', what, definition(1, over), property] as [string, string, unknown, string],
    ),
    ['shift-definitions', 'friendlyCode', definition(1, { friendlyCode: { default: 'S' } }), 'friendlyCode'],
    ['shift-definitions', 'allowedDurations', definition(1, { allowedDurations: [] }), 'allowedDurations'],
    ['shift-definitions', 'a friendlyName as a string', definition(1, { friendlyName: 'S' }), 'friendlyName'],
  ];
  for (const [collection, what, body, property] of cases) {
    test(`${collection}: ${what} is 400 naming ${property}, and nothing is written`, async () => {
      const token = await h.token(newTenant());
      const res = await put(h, token, `/${collection}/1`, body);
      assert.equal(res.statusCode, 400, res.body);
      const errors = res.json().validationErrors as { property: string; message: string }[];
      assert.ok(
        errors.some((e) => e.property === property),
        JSON.stringify(errors),
      );
      const get = await h.request({ method: 'GET', path: `/${collection}/1`, token });
      assert.equal(get.statusCode, 404);
    });
  }
});

describe('a bad PUT over a stored object is 400 naming the property, and changes nothing', () => {
  const cases: [string, unknown, string][] = [
    ['people', { ...fullPerson(), sex: 'female' }, 'sex'],
    ['people', { ...fullPerson(), birthDate: '1990-02-29' }, 'birthDate'],
    ['people', { ...fullPerson(), outOfServiceDate: '2019-12-31' }, 'outOfServiceDate'],
    ['people', { ...fullPerson(), terminalGroup: { id: -3 } }, 'terminalGroup.id'],
    ['people', { ...fullPerson(), advanceCurrencyDefinition: { id: 'EUR' } }, 'advanceCurrencyDefinition.id'],
    ['people', { ...fullPerson(), email: 'ada at example.com' }, 'email'],
    ['people', { ...fullPerson(), displayName: 'Ada Peeters' }, 'displayName'],
    [
      'absence-definitions',
      { ...fullAbsenceDefinition(), allowedDurations: ['FullDay', 'Hourly'] },
      'allowedDurations.1',
    ],
    ['absence-definitions', { ...fullAbsenceDefinition(), absenceGroup: 4 }, 'absenceGroup'],
    [
      'absence-definitions',
      { ...fullAbsenceDefinition(), friendlyCode: { default: '' } },
      'friendlyCode.default',
    ],
    [
      'shift-definitions',
      definition(7, { friendlyName: { default: 'F', short: 'F' } }),
      'friendlyName.short',
    ],
    ['shift-definitions', definition(7, { isReasonForClocking: true }), 'isReasonForClocking'],
  ];
  const valid: Record<string, unknown> = {
    people: fullPerson(),
    'absence-definitions': fullAbsenceDefinition(),
    'shift-definitions': definition(7, { friendlyName: { default: 'Early' } }),
  };
  for (const [collection, body, property] of cases) {
    test(`${collection}: ${property}`, async () => {
      const token = await h.token(newTenant());
      const { stored, deltaLink } = await storedWithDeltaLink(token, collection, 7, valid[collection]);
      const res = await put(h, token, `/${collection}/7`, body);
      assert.equal(res.statusCode, 400, res.body);
      const errors = res.json().validationErrors as { property: string; message: string }[];
      assert.ok(
        errors.some((e) => e.property === property),
        JSON.stringify(errors),
      );
      await assertUnchanged(token, `/${collection}/7`, stored, deltaLink);
    });
  }
});

describe('definitions', () => {
  test('a full absence definition: every upstream field in upstream order, allowedDurations in enum order', async () => {
    const token = await h.token(newTenant());
    const res = await put(h, token, '/absence-definitions/7', fullAbsenceDefinition());
    assert.equal(res.statusCode, 201, res.body);
    const created = res.json();
    assert.deepEqual(created, {
      changeVersion: created.changeVersion,
      id: 7,
      name: { default: 'Sick', translations: { fr: 'Malade', nl: 'Ziek' } },
      code: 'SICK',
      friendlyName: { default: 'Sick leave', translations: { nl: 'Ziekteverlof' } },
      friendlyCode: { default: 'SL', translations: {} },
      allowedDurations: ['FullDay', 'Duration'],
      isEnabled: true,
      isReasonForClocking: true,
      absenceGroup: { id: 4 },
    });
    assert.deepEqual(Object.keys(created), [
      'changeVersion',
      'id',
      'name',
      'code',
      'friendlyName',
      'friendlyCode',
      'allowedDurations',
      'isEnabled',
      'isReasonForClocking',
      'absenceGroup',
    ]);
    const got = await h.request({ method: 'GET', path: '/absence-definitions/7', token });
    assert.equal(got.body, res.body);
  });

  test('an absence definition without the new fields: friendly names null, no durations, not for clocking', async () => {
    const token = await h.token(newTenant());
    const created = await putOk(h, token, '/absence-definitions/7', definition(7));
    assert.deepEqual(
      { ...created, changeVersion: undefined, name: undefined },
      {
        changeVersion: undefined,
        id: 7,
        name: undefined,
        code: 'C7',
        friendlyName: null,
        friendlyCode: null,
        allowedDurations: [],
        isEnabled: true,
        isReasonForClocking: false,
        absenceGroup: null,
      },
    );
  });

  test('an absence definition PUT again with its durations in another order is 200 and records no change', async () => {
    const token = await h.token(newTenant());
    const { stored, deltaLink } = await storedWithDeltaLink(
      token,
      'absence-definitions',
      7,
      fullAbsenceDefinition(),
    );
    const again = await put(h, token, '/absence-definitions/7', {
      ...fullAbsenceDefinition(),
      allowedDurations: ['FullDay', 'Duration'],
      isReasonForClocking: true,
    });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json(), stored);
    await assertUnchanged(token, '/absence-definitions/7', stored, deltaLink);
  });

  test('a shift definition: id, name, code, friendlyName, isEnabled; an identical PUT records no change', async () => {
    const token = await h.token(newTenant());
    const body = definition(20, { friendlyName: { default: 'Early', translations: { nl: 'Vroeg' } } });
    const { stored, deltaLink } = await storedWithDeltaLink(token, 'shift-definitions', 20, body);
    assert.deepEqual(Object.keys(stored), [
      'changeVersion',
      'id',
      'name',
      'code',
      'friendlyName',
      'isEnabled',
    ]);
    assert.deepEqual(stored.friendlyName, { default: 'Early', translations: { nl: 'Vroeg' } });
    const again = await put(h, token, '/shift-definitions/20', body);
    assert.equal(again.statusCode, 200);
    await assertUnchanged(token, '/shift-definitions/20', stored, deltaLink);
  });

  for (const [collection, keys] of [
    [
      'absence-definitions',
      [
        'changeVersion',
        'id',
        'name',
        'code',
        'friendlyName',
        'friendlyCode',
        'allowedDurations',
        'isEnabled',
        'isReasonForClocking',
        'absenceGroup',
      ],
    ],
    ['shift-definitions', ['changeVersion', 'id', 'name', 'code', 'friendlyName', 'isEnabled']],
  ] as const) {
    test(`${collection}: stored in spec key order, translations by language, omitted translations = {}`, async () => {
      const token = await h.token(newTenant());
      const created = await putOk(h, token, `/${collection}/7`, {
        code: 'SICK',
        isEnabled: false,
        name: { translations: { nl: 'Ziek', fr: 'Malade' }, default: 'Sick' },
      });
      assert.deepEqual(Object.keys(created), keys);
      assert.deepEqual(created.name, { default: 'Sick', translations: { fr: 'Malade', nl: 'Ziek' } });
      assert.deepEqual(Object.keys(created.name.translations), ['fr', 'nl']);
      const plain = await putOk(h, token, `/${collection}/8`, {
        name: { default: 'Other' },
        code: 'O',
        isEnabled: true,
      });
      assert.deepEqual(plain.name, { default: 'Other', translations: {} });
      const got = (await h.request({ method: 'GET', path: `/${collection}/7`, token })).json();
      assert.deepEqual(got, created);
    });
  }
});

describe('GET a single object', () => {
  test('an unknown id is 404 NotFound', async () => {
    const token = await h.token(newTenant());
    for (const collection of ['people', 'absence-definitions', 'shift-definitions', 'absences']) {
      const res = await h.request({ method: 'GET', path: `/${collection}/999`, token });
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error.code, 'NotFound');
    }
  });

  test('a path value that is no id, without an externalReferences query, is 400', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({ method: 'GET', path: '/people/E042', token });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /externalReferences/);
  });

  test('an unknown query parameter is ignored, as upstream does; a malformed filter is 400', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/1', person(1));
    const res = await h.request({ method: 'GET', path: '/people/1?expand=all', token });
    assert.equal(res.statusCode, 200);
    const list = await h.request({ method: 'GET', path: '/people?filter=x', token });
    assert.equal(list.statusCode, 400);
    assert.equal(list.json().error.code, 'InvalidFilter');
  });
});

describe('DELETE', () => {
  test('deletes a person: 204, then GET and a second DELETE are 404', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/1', person(1));
    const del = await h.request({ method: 'DELETE', path: '/people/1', token });
    assert.equal(del.statusCode, 204);
    assert.equal(del.body, '');
    assert.equal((await h.request({ method: 'GET', path: '/people/1', token })).statusCode, 404);
    const again = await h.request({ method: 'DELETE', path: '/people/1', token });
    assert.equal(again.statusCode, 404);
    assert.equal(again.json().error.code, 'NotFound');
  });

  test('records a Delete change {changeVersion, id}', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/shift-definitions/5', definition(5));
    const load = (await h.request({ method: 'GET', path: '/shift-definitions?delta', token })).json();
    await h.request({ method: 'DELETE', path: '/shift-definitions/5', token });
    const delta = await followDelta(h, token, load.deltaLink);
    assert.equal(delta.value.length, 1);
    assert.equal(delta.value[0]!.changeType, 'Delete');
    assert.deepEqual(Object.keys(delta.value[0]!.data), ['changeVersion', 'id']);
    assert.equal(delta.value[0]!.data.id, 5);
  });

  test('a person or definition that absences still link to is 409 EntityInUse, and stays', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence({ requestedAbsenceDefinition: { id: 11 } }));
    for (const path of [
      '/people/1',
      '/absence-definitions/10',
      '/absence-definitions/11',
      '/shift-definitions/20',
    ]) {
      const res = await h.request({ method: 'DELETE', path, token });
      assert.equal(res.statusCode, 409, path);
      assert.equal(res.json().error.code, 'EntityInUse');
      assert.equal((await h.request({ method: 'GET', path, token })).statusCode, 200);
    }
    // Once the absence is gone, they can be deleted.
    assert.equal((await h.request({ method: 'DELETE', path: '/absences/1', token })).statusCode, 204);
    assert.equal((await h.request({ method: 'DELETE', path: '/people/1', token })).statusCode, 204);
  });
});

describe('lists', () => {
  test('pages by id with nextLink until the last page, which has none', async () => {
    const token = await h.token(newTenant());
    for (const id of [7, 3, 5, 1, 6, 2, 4]) await putOk(h, token, `/people/${id}`, person(id));
    const pages = await allPages(h, token, '/people');
    assert.deepEqual(
      pages.map((p) => p.value.map((v) => v.id)),
      [[1, 2, 3], [4, 5, 6], [7]],
    );
    assert.ok(pages[0]!.nextLink!.startsWith(`${PREFIX}/people?continuationToken=`));
    assert.equal(pages[2]!.nextLink, undefined);
    assert.equal(pages[2]!.deltaLink, undefined);
  });

  test('a full last page still has a nextLink, and the page after it is empty with none', async () => {
    const token = await h.token(newTenant());
    for (const id of [1, 2, 3]) await putOk(h, token, `/absence-definitions/${id}`, definition(id));
    const pages = await allPages(h, token, '/absence-definitions');
    assert.deepEqual(
      pages.map((p) => p.value.length),
      [3],
    );
    for (const id of [4, 5, 6]) await putOk(h, token, `/absence-definitions/${id}`, definition(id));
    const more = await allPages(h, token, '/absence-definitions');
    assert.deepEqual(
      more.map((p) => p.value.length),
      [3, 3],
    );
  });

  test('an empty collection is one empty page without nextLink', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({ method: 'GET', path: '/shift-definitions', token });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { value: [] });
  });

  test('an altered continuation token is 400 InvalidContinuationToken', async () => {
    const token = await h.token(newTenant());
    for (const id of [1, 2, 3, 4]) await putOk(h, token, `/people/${id}`, person(id));
    const first = (await h.request({ method: 'GET', path: '/people', token })).json();
    const link: string = first.nextLink;
    const tokenText = decodeURIComponent(link.split('continuationToken=')[1]!);
    const [body, mac] = tokenText.split('.');
    const forgedBody = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), k: 0 }),
    ).toString('base64url');
    for (const bad of [`${forgedBody}.${mac}`, 'garbage', `${body}.${mac}x`]) {
      const res = await h.request({
        method: 'GET',
        path: `/people?continuationToken=${encodeURIComponent(bad)}`,
        token,
      });
      assert.equal(res.statusCode, 400, bad);
      assert.equal(res.json().error.code, 'InvalidContinuationToken');
    }
  });

  test('a continuation token is bound to its collection, references, delta flag and tenant', async () => {
    const tenant = newTenant();
    const token = await h.token(tenant);
    for (const id of [1, 2, 3, 4]) await putOk(h, token, `/people/${id}`, person(id));
    const link: string = (await h.request({ method: 'GET', path: '/people', token })).json().nextLink;
    const continuation = link.split('continuationToken=')[1]!;
    const other = await h.token(newTenant());
    for (const [path, t] of [
      [`/absence-definitions?continuationToken=${continuation}`, token],
      [`/people?externalReferences=(people,@employee-number)&continuationToken=${continuation}`, token],
      [`/people?delta&continuationToken=${continuation}`, token],
      [`/people?continuationToken=${continuation}`, other],
    ] as const) {
      const res = await h.request({ method: 'GET', path, token: t });
      assert.equal(res.statusCode, 400, path);
      assert.equal(res.json().error.code, 'InvalidContinuationToken');
    }
  });
});

describe('scopes and tenants', () => {
  test('writes need <collection>.write and reads need <collection>.read (401 insufficient_scope)', async () => {
    const tenant = newTenant();
    const readOnly = await h.token(tenant, ['connector-protimeapi-people.read']);
    const res = await put(h, readOnly, '/people/1', person(1));
    assert.equal(res.statusCode, 401);
    assert.match(String(res.headers['www-authenticate']), /insufficient_scope.*people\.write/);
    const del = await h.request({ method: 'DELETE', path: '/people/1', token: readOnly });
    assert.equal(del.statusCode, 401);
    const writeOnly = await h.token(tenant, ['connector-protimeapi-people.write']);
    assert.equal((await put(h, writeOnly, '/people/1', person(1))).statusCode, 201);
    const get = await h.request({ method: 'GET', path: '/people/1', token: writeOnly });
    assert.equal(get.statusCode, 401);
    const otherCollection = await h.token(tenant, ['connector-protimeapi-absences.read']);
    assert.equal(
      (await h.request({ method: 'GET', path: '/people', token: otherCollection })).statusCode,
      401,
    );
    assert.equal((await h.request({ method: 'GET', path: '/people', token: readOnly })).statusCode, 200);
  });

  test("another tenant's objects are 404 and absent from its lists", async () => {
    const a = await h.token(newTenant());
    const b = await h.token(newTenant());
    await putOk(h, a, '/people/1', person(1));
    await putOk(h, a, '/absence-definitions/10', definition(10));
    assert.equal((await h.request({ method: 'GET', path: '/people/1', token: b })).statusCode, 404);
    assert.equal((await h.request({ method: 'DELETE', path: '/people/1', token: b })).statusCode, 404);
    assert.deepEqual((await h.request({ method: 'GET', path: '/people', token: b })).json(), { value: [] });
    assert.equal(
      (await h.request({ method: 'GET', path: '/absence-definitions/10', token: b })).statusCode,
      404,
    );
    // The same id in another tenant is a separate object.
    assert.equal((await put(h, b, '/people/1', person(1, { lastName: 'B' }))).statusCode, 201);
    assert.equal(
      (await h.request({ method: 'GET', path: '/people/1', token: a })).json().lastName,
      'Person 1',
    );
  });
});

test('OpenAPI documents every collection route with tags and a summary', async () => {
  const doc = (await h.request({ method: 'GET', path: '/swagger/v1/swagger.json' })).json();
  const expected: [string, string][] = [
    ['/absences', 'get'],
    ['/absences/{id}', 'get'],
    ['/absences/{id}', 'put'],
    ['/absences/{id}', 'delete'],
    ['/absences/batch', 'post'],
    ['/delta/absences', 'get'],
  ];
  for (const c of ['people', 'absence-definitions', 'shift-definitions']) {
    expected.push(
      [`/${c}`, 'get'],
      [`/${c}/{id}`, 'get'],
      [`/${c}/{id}`, 'put'],
      [`/${c}/{id}`, 'delete'],
      [`/delta/${c}`, 'get'],
    );
  }
  for (const [path, method] of expected) {
    const op = doc.paths[`${PREFIX}${path}`]?.[method];
    assert.ok(op, `${method} ${path} is documented`);
    assert.ok(
      op.tags?.length > 0 && typeof op.summary === 'string',
      `${method} ${path} has tags and summary`,
    );
  }
});
