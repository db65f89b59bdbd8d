// External references (SPEC §1.4, §1.5): predefined and custom references of people and definitions, their
// uniqueness, reads that include them, lookups by path, and absence links given by reference.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalPerson } from '../src/domain/collections.ts';
import { attachExternalReferencesToChanges } from '../src/store/external-references.ts';
import { newTenant, useHarness } from './helpers/harness.ts';
import {
  absence,
  allPages,
  definition,
  filterQuery,
  followDelta,
  person,
  put,
  putOk,
  seed,
  seededToken,
} from './helpers/collections.ts';

const h = await useHarness({ TIMEHOOK_PAGE_SIZE: '3' });

const get = (token: string, path: string) => h.request({ method: 'GET', path, token });

describe('external references on reads', () => {
  test('people gain an externalReferences map right after id, in query order, leaving out names without a value', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/1', person(1, { badgeNumber: 'B1', externalReferences: { HRMID: 'h1' } }));
    await putOk(h, token, '/people/2', person(2, { employeeNumber: null }));
    const res = await get(token, '/people?externalReferences=(people,HRMID)(people,@employee-number)');
    assert.equal(res.statusCode, 200, res.body);
    const [p1, p2] = res.json().value;
    assert.deepEqual(Object.keys(p1), [
      'changeVersion',
      'id',
      'externalReferences',
      ...Object.keys(canonicalPerson({ id: 1 })).slice(1),
    ]);
    assert.deepEqual(Object.entries(p1.externalReferences), [
      ['HRMID', 'h1'],
      ['@employee-number', 'E1'],
    ]);
    assert.deepEqual(p2.externalReferences, {});
  });

  test('absences gain maps inside person and both definition links; null links stay null', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/people/1', person(1, { badgeNumber: 'B1' }));
    await putOk(h, token, '/absences/1', absence({ requestedAbsenceDefinition: { id: 11 } }));
    await putOk(
      h,
      token,
      '/absences/2',
      absence({ requestedAbsenceDefinition: null, shiftDefinition: null }),
    );
    const refs = '(people,@badge-number)(absence-definitions,@absence-code)(shift-definitions,@shift-code)';
    const item = (await get(token, `/absences/1?externalReferences=${refs}`)).json();
    assert.deepEqual(item.person, { id: 1, externalReferences: { '@badge-number': 'B1' } });
    assert.deepEqual(item.resultingAbsenceDefinition, {
      id: 10,
      externalReferences: { '@absence-code': 'C10' },
    });
    assert.deepEqual(item.requestedAbsenceDefinition, {
      id: 11,
      externalReferences: { '@absence-code': 'C11' },
    });
    assert.deepEqual(item.shiftDefinition, { id: 20, externalReferences: { '@shift-code': 'C20' } });
    const list = await allPages(
      h,
      token,
      `/absences?${filterQuery("date ge '2026-01-01'")}&externalReferences=(people,@employee-number)`,
    );
    const second = list.flatMap((p) => p.value).find((a) => a.id === 2);
    assert.deepEqual(second.person, { id: 1, externalReferences: { '@employee-number': 'E1' } });
    assert.deepEqual(second.resultingAbsenceDefinition, { id: 10 });
    assert.equal(second.shiftDefinition, null);
    assert.equal(second.requestedAbsenceDefinition, null);
  });

  test('the nextLink carries the externalReferences query', async () => {
    const token = await h.token(newTenant());
    for (const id of [1, 2, 3, 4]) await putOk(h, token, `/people/${id}`, person(id));
    const pages = await allPages(h, token, '/people?externalReferences=(people,@employee-number)');
    assert.equal(pages.length, 2);
    assert.deepEqual(pages[1]!.value[0].externalReferences, { '@employee-number': 'E4' });
  });

  test('without the query, objects have no externalReferences', async () => {
    const token = await h.token(newTenant());
    const created = await putOk(h, token, '/people/1', person(1, { externalReferences: { HRMID: 'h1' } }));
    assert.equal('externalReferences' in created, false);
    assert.equal('externalReferences' in (await get(token, '/people/1')).json(), false);
  });

  const badQueries: [string, string][] = [
    ['/people', '(people,@employee-number'],
    ['/people', 'people,@employee-number'],
    ['/people', '(absence-definitions,@absence-code)'],
    ['/people', '(people,@shift-code)'],
    ['/absences/1', '(absences,x)'],
    ['/absence-definitions', '(absence-definitions,1bad)'],
    ['/people', ''],
  ];
  for (const [path, query] of badQueries) {
    test(`externalReferences=${query || '(empty)'} on ${path} is 400 InvalidExternalReference`, async () => {
      const token = await h.token(newTenant());
      const res = await get(token, `${path}?externalReferences=${encodeURIComponent(query)}`);
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, 'InvalidExternalReference');
    });
  }
});

describe('lookup by reference in the path', () => {
  test('/people/E042?externalReferences=(people,@employee-number) finds the person; custom names too', async () => {
    const token = await h.token(newTenant());
    await putOk(
      h,
      token,
      '/people/42',
      person(42, { employeeNumber: 'E042', externalReferences: { HRMID: 'x-1' } }),
    );
    const res = await get(token, '/people/E042?externalReferences=(people,@employee-number)');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().id, 42);
    assert.deepEqual(res.json().externalReferences, { '@employee-number': 'E042' });
    const custom = await get(token, '/people/x-1?externalReferences=(people,HRMID)');
    assert.equal(custom.json().id, 42);
    const code = await h.token(newTenant());
    await putOk(h, code, '/absence-definitions/7', definition(7, { code: 'SICK' }));
    assert.equal(
      (
        await get(code, '/absence-definitions/SICK?externalReferences=(absence-definitions,@absence-code)')
      ).json().id,
      7,
    );
  });

  test('an unknown value, or one of another tenant, is 404', async () => {
    const a = await h.token(newTenant());
    const b = await h.token(newTenant());
    await putOk(h, a, '/people/42', person(42, { employeeNumber: 'E042' }));
    assert.equal((await get(a, '/people/E999?externalReferences=(people,@employee-number)')).statusCode, 404);
    assert.equal((await get(b, '/people/E042?externalReferences=(people,@employee-number)')).statusCode, 404);
  });

  test('with the query naming a reference, a reference value wins over an id; an id still works when no value matches', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/1', person(1, { employeeNumber: '2' }));
    await putOk(h, token, '/people/2', person(2, { employeeNumber: '1' }));
    await putOk(h, token, '/people/3', person(3, { employeeNumber: 'E3' }));
    assert.equal((await get(token, '/people/1?externalReferences=(people,@employee-number)')).json().id, 2);
    const byId = (await get(token, '/people/3?externalReferences=(people,@employee-number)')).json();
    assert.deepEqual([byId.id, byId.externalReferences], [3, { '@employee-number': 'E3' }]);
  });
});

describe('custom references on PUT', () => {
  test('are replaced when given, kept when omitted, and removed by {}', async () => {
    const token = await h.token(newTenant());
    const q = '/people/1?externalReferences=(people,HRMID)(people,SAP)';
    await putOk(h, token, '/people/1', person(1, { externalReferences: { HRMID: 'h1', SAP: 's1' } }));
    assert.deepEqual((await get(token, q)).json().externalReferences, { HRMID: 'h1', SAP: 's1' });
    await putOk(h, token, '/people/1', person(1, { externalReferences: { SAP: 's2' } }));
    assert.deepEqual((await get(token, q)).json().externalReferences, { SAP: 's2' });
    await putOk(h, token, '/people/1', person(1, { lastName: 'Renamed' }));
    assert.deepEqual((await get(token, q)).json().externalReferences, { SAP: 's2' });
    await putOk(h, token, '/people/1', person(1, { lastName: 'Renamed', externalReferences: {} }));
    assert.deepEqual((await get(token, q)).json().externalReferences, {});
  });

  test('a change of custom references alone records a change; the same references record none', async () => {
    const token = await h.token(newTenant());
    const first = await putOk(h, token, '/people/1', person(1, { externalReferences: { HRMID: 'h1' } }));
    const load = (await get(token, '/people?delta&externalReferences=(people,HRMID)')).json();
    const same = await put(h, token, '/people/1', person(1, { externalReferences: { HRMID: 'h1' } }));
    assert.deepEqual(same.json(), first);
    const changed = await put(h, token, '/people/1', person(1, { externalReferences: { HRMID: 'h2' } }));
    assert.equal(changed.statusCode, 200);
    assert.ok(changed.json().changeVersion > first.changeVersion);
    const delta = await followDelta(h, token, load.deltaLink);
    assert.deepEqual(
      delta.value.map((c) => c.data.externalReferences),
      [{ HRMID: 'h2' }],
    );
  });
});

describe('uniqueness: 409 ExternalReferenceInUse', () => {
  test('a custom value another person holds is 409 and nothing changes', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/1', person(1, { externalReferences: { HRMID: 'dup' } }));
    const res = await put(h, token, '/people/2', person(2, { externalReferences: { HRMID: 'dup' } }));
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'ExternalReferenceInUse');
    assert.match(res.json().error.reasons[0], /HRMID "dup" belongs to person 1/);
    assert.equal((await get(token, '/people/2')).statusCode, 404);
  });

  test('a predefined value (employeeNumber, code) another object holds is 409', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/1', person(1, { employeeNumber: 'E1' }));
    const res = await put(h, token, '/people/2', person(2, { employeeNumber: 'E1' }));
    assert.equal(res.statusCode, 409);
    assert.match(res.json().error.reasons[0], /@employee-number "E1" belongs to person 1/);
    await putOk(h, token, '/shift-definitions/1', definition(1, { code: 'EARLY' }));
    const shift = await put(h, token, '/shift-definitions/2', definition(2, { code: 'EARLY' }));
    assert.equal(shift.statusCode, 409);
    assert.equal(shift.json().error.code, 'ExternalReferenceInUse');
  });

  test('the same value is fine under another name, in another collection, or another tenant', async () => {
    const token = await h.token(newTenant());
    await putOk(
      h,
      token,
      '/people/1',
      person(1, { employeeNumber: 'X', externalReferences: { HRMID: 'X' } }),
    );
    assert.equal(
      (await put(h, token, '/people/2', person(2, { badgeNumber: 'X', employeeNumber: 'E2' }))).statusCode,
      201,
    );
    await putOk(h, token, '/absence-definitions/1', definition(1, { code: 'X' }));
    assert.equal((await put(h, token, '/shift-definitions/1', definition(1, { code: 'X' }))).statusCode, 201);
    const other = await h.token(newTenant());
    assert.equal((await put(h, other, '/people/1', person(1, { employeeNumber: 'X' }))).statusCode, 201);
  });

  test('a value is free again once its holder changed it or was deleted', async () => {
    const token = await h.token(newTenant());
    await putOk(
      h,
      token,
      '/people/1',
      person(1, { employeeNumber: 'E1', externalReferences: { HRMID: 'h' } }),
    );
    await putOk(h, token, '/people/1', person(1, { employeeNumber: 'E1-new' }));
    assert.equal((await put(h, token, '/people/2', person(2, { employeeNumber: 'E1' }))).statusCode, 201);
    assert.equal((await h.request({ method: 'DELETE', path: '/people/1', token })).statusCode, 204);
    assert.equal(
      (await put(h, token, '/people/3', person(3, { externalReferences: { HRMID: 'h' } }))).statusCode,
      201,
    );
    assert.equal((await put(h, token, '/people/4', person(4, { employeeNumber: 'E1-new' }))).statusCode, 201);
  });
});

describe('absence links by external reference', () => {
  test('person, definitions and shift given by predefined or custom reference resolve to ids', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/people/2', person(2, { externalReferences: { HRMID: 'hr-2' } }));
    const created = await putOk(
      h,
      token,
      '/absences/1',
      absence({
        person: { externalReferences: { '@employee-number': 'E2' } },
        resultingAbsenceDefinition: { externalReferences: { '@absence-code': 'C11' } },
        requestedAbsenceDefinition: { externalReferences: { '@absence-code': 'C10' } },
        shiftDefinition: { externalReferences: { '@shift-code': 'C20' } },
        request: { id: 'acme-2-1' },
      }),
    );
    assert.deepEqual(
      [
        created.person,
        created.resultingAbsenceDefinition,
        created.requestedAbsenceDefinition,
        created.shiftDefinition,
      ],
      [{ id: 2 }, { id: 11 }, { id: 10 }, { id: 20 }],
    );
    const custom = await putOk(
      h,
      token,
      '/absences/2',
      absence({ person: { externalReferences: { HRMID: 'hr-2' } }, request: null }),
    );
    assert.deepEqual(custom.person, { id: 2 });
  });

  test('the request.id PersonId is checked against the resolved person', async () => {
    const token = await seededToken(h);
    const res = await put(
      h,
      token,
      '/absences/1',
      absence({ person: { externalReferences: { '@employee-number': 'E2' } } }),
    );
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().validationErrors[0].property, 'request.id');
  });

  test('an unknown reference value is 400 UnknownLink', async () => {
    const token = await seededToken(h);
    const res = await put(
      h,
      token,
      '/absences/1',
      absence({
        person: { externalReferences: { '@employee-number': 'E404' } },
        shiftDefinition: { externalReferences: { '@shift-code': 'NOPE' } },
      }),
    );
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'UnknownLink');
    assert.deepEqual(res.json().error.reasons, [
      'person: no person has @employee-number "E404" in this tenant.',
      'shiftDefinition: no shift definition has @shift-code "NOPE" in this tenant.',
    ]);
  });

  test('a reference follows its field: the old employee number no longer resolves', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/people/1', person(1, { employeeNumber: 'NEW' }));
    const old = await put(
      h,
      token,
      '/absences/1',
      absence({ person: { externalReferences: { '@employee-number': 'E1' } } }),
    );
    assert.equal(old.statusCode, 400);
    const now = await put(
      h,
      token,
      '/absences/1',
      absence({ person: { externalReferences: { '@employee-number': 'NEW' } } }),
    );
    assert.equal(now.statusCode, 201);
  });
});

describe('attachExternalReferencesToChanges (used for webhook event bodies)', () => {
  test('decorates InsertOrUpdate data and leaves Delete data as {changeVersion, id}', async () => {
    const tenant = newTenant();
    const token = await h.token(tenant);
    await seed(h, token);
    const created = await putOk(h, token, '/absences/1', absence());
    const deleted = { changeVersion: '00000000000000000099', id: 2 };
    const events = await attachExternalReferencesToChanges(
      h.db,
      tenant,
      'absences',
      [
        { changeType: 'InsertOrUpdate', data: created },
        { changeType: 'Delete', data: deleted },
      ],
      { people: ['@employee-number'] },
    );
    assert.deepEqual(events[0]!.data.person, { id: 1, externalReferences: { '@employee-number': 'E1' } });
    assert.deepEqual(Object.keys(events[0]!.data), Object.keys(created));
    assert.deepEqual(events[1]!.data, deleted);
    const none = await attachExternalReferencesToChanges(
      h.db,
      tenant,
      'absences',
      [{ changeType: 'InsertOrUpdate', data: created }],
      undefined,
    );
    assert.deepEqual(none[0]!.data, created);
  });
});
