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
  person,
  put,
  putOk,
  seededToken,
} from './helpers/collections.ts';

const h = await useHarness({ TIMEHOOK_PAGE_SIZE: '3' });

const CHANGE_VERSION = /^[0-9A-F]{20}$/;

describe('PUT /people/{id}', () => {
  test('creates a person: 201, Location, the stored object in spec key order with a changeVersion', async () => {
    const token = await h.token(newTenant());
    const res = await put(h, token, '/people/42', { displayName: 'Ada', employeeNumber: 'E042' });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers.location, `${PREFIX}/people/42`);
    const body = res.json();
    assert.deepEqual(Object.keys(body), [
      'changeVersion',
      'id',
      'displayName',
      'badgeNumber',
      'employeeNumber',
    ]);
    assert.match(body.changeVersion, CHANGE_VERSION);
    assert.deepEqual(
      { ...body, changeVersion: undefined },
      { changeVersion: undefined, id: 42, displayName: 'Ada', badgeNumber: null, employeeNumber: 'E042' },
    );
  });

  test('replaces an existing person: 200 and a higher changeVersion', async () => {
    const token = await h.token(newTenant());
    const first = await putOk(h, token, '/people/1', person(1));
    const res = await put(h, token, '/people/1', person(1, { displayName: 'Renamed', badgeNumber: 'B1' }));
    assert.equal(res.statusCode, 200);
    const second = res.json();
    assert.ok(second.changeVersion > first.changeVersion);
    assert.equal(second.displayName, 'Renamed');
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
    const res = await put(h, token, '/people/1', '{"displayName":');
    assert.equal(res.statusCode, 400);
    assert.ok(Array.isArray(res.json().validationErrors));
  });
});

describe('validation of people and definitions', () => {
  const cases: [string, string, unknown, string][] = [
    ['people', 'displayName missing', { employeeNumber: 'E1' }, 'displayName'],
    ['people', 'displayName empty', { displayName: '' }, 'displayName'],
    ['people', 'displayName blank', { displayName: '   ' }, 'displayName'],
    ['people', 'displayName not a string', { displayName: 5 }, 'displayName'],
    ['people', 'badgeNumber empty', { displayName: 'A', badgeNumber: '' }, 'badgeNumber'],
    ['people', 'employeeNumber a number', { displayName: 'A', employeeNumber: 42 }, 'employeeNumber'],
    [
      'people',
      'employeeNumber too long',
      { displayName: 'A', employeeNumber: 'x'.repeat(257) },
      'employeeNumber',
    ],
    ['people', 'an unknown property', { displayName: 'A', nickname: 'a' }, 'nickname'],
    [
      'people',
      'a changeVersion',
      { displayName: 'A', changeVersion: '00000000000000000001' },
      'changeVersion',
    ],
    ['people', 'an id of 0', { displayName: 'A', id: 0 }, 'id'],
    [
      'people',
      'a predefined reference',
      { displayName: 'A', externalReferences: { '@employee-number': 'E1' } },
      'externalReferences.@employee-number',
    ],
    [
      'people',
      'a bad custom name',
      { displayName: 'A', externalReferences: { '1abc': 'x' } },
      'externalReferences.1abc',
    ],
    [
      'people',
      'an empty custom value',
      { displayName: 'A', externalReferences: { HRMID: '' } },
      'externalReferences.HRMID',
    ],
    [
      'people',
      'a non-string custom value',
      { displayName: 'A', externalReferences: { HRMID: 1 } },
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

describe('definitions', () => {
  for (const collection of ['absence-definitions', 'shift-definitions']) {
    test(`${collection}: stored in spec key order, translations by language, omitted translations = {}`, async () => {
      const token = await h.token(newTenant());
      const created = await putOk(h, token, `/${collection}/7`, {
        code: 'SICK',
        isEnabled: false,
        name: { translations: { nl: 'Ziek', fr: 'Malade' }, default: 'Sick' },
      });
      assert.deepEqual(Object.keys(created), ['changeVersion', 'id', 'name', 'code', 'isEnabled']);
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

  test('an unknown query parameter is 400', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/1', person(1));
    const res = await h.request({ method: 'GET', path: '/people/1?expand=all', token });
    assert.equal(res.statusCode, 400);
    const list = await h.request({ method: 'GET', path: '/people?filter=x', token });
    assert.equal(list.statusCode, 400);
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
    assert.equal((await put(h, b, '/people/1', person(1, { displayName: 'B' }))).statusCode, 201);
    assert.equal(
      (await h.request({ method: 'GET', path: '/people/1', token: a })).json().displayName,
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
