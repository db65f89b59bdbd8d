// Absences through the HTTP surface: ingest by PUT, DELETE and batch, links, validation, the date filter and
// paging (SPEC §1.4).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newTenant, PREFIX, useHarness } from './helpers/harness.ts';
import { holdTenantLock } from './helpers/tenant-lock.ts';
import {
  absence,
  allPages,
  filterQuery,
  followDelta,
  put,
  putOk,
  seed,
  seededToken,
} from './helpers/collections.ts';

const h = await useHarness({ TIMEHOOK_PAGE_SIZE: '3' });

const ABSENCE_KEYS = [
  'changeVersion',
  'id',
  'person',
  'resultingAbsenceDefinition',
  'requestedAbsenceDefinition',
  'shiftDefinition',
  'date',
  'startTimeInMinutes',
  'durationInMinutes',
  'calculatedDurationInMinutes',
  'dayPart',
  'request',
  'status',
  'approvalLevel',
  'isLocked',
  'periodType',
];

async function startDelta(token: string, filter = "date ge '2026-01-01'"): Promise<string> {
  const pages = await allPages(h, token, `/absences?${filterQuery(filter)}&delta`);
  return pages.at(-1)!.deltaLink!;
}

describe('PUT /absences/{id}', () => {
  test('creates an absence: 201, Location, every field in spec order', async () => {
    const token = await seededToken(h);
    const res = await put(h, token, '/absences/1001', absence());
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers.location, `${PREFIX}/absences/1001`);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ABSENCE_KEYS);
    const { changeVersion, ...rest } = body;
    assert.match(changeVersion, /^[0-9A-F]{20}$/);
    assert.deepEqual(rest, { id: 1001, ...absence() });
    const got = await h.request({ method: 'GET', path: '/absences/1001', token });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), body);
  });

  test('requestedAbsenceDefinition, shiftDefinition and request may be null or omitted, and read as null', async () => {
    const token = await seededToken(h);
    const { requestedAbsenceDefinition: _r, shiftDefinition: _s, request: _q, ...required } = absence();
    const omitted = await putOk(h, token, '/absences/1', required);
    assert.deepEqual(Object.keys(omitted), ABSENCE_KEYS);
    assert.equal(omitted.requestedAbsenceDefinition, null);
    assert.equal(omitted.shiftDefinition, null);
    assert.equal(omitted.request, null);
    const nulls = await putOk(
      h,
      token,
      '/absences/2',
      absence({ requestedAbsenceDefinition: null, shiftDefinition: null, request: null }),
    );
    assert.equal(nulls.shiftDefinition, null);
  });

  test('replacing changes the changeVersion; an identical PUT is 200, unchanged, and records no change', async () => {
    const token = await seededToken(h);
    const first = await putOk(h, token, '/absences/1', absence());
    const updated = await put(h, token, '/absences/1', absence({ durationInMinutes: 60 }));
    assert.equal(updated.statusCode, 200);
    assert.ok(updated.json().changeVersion > first.changeVersion);
    const link = await startDelta(token);
    const same = await put(h, token, '/absences/1', { ...absence({ durationInMinutes: 60 }), id: 1 });
    assert.equal(same.statusCode, 200);
    assert.deepEqual(same.json(), updated.json());
    assert.deepEqual((await followDelta(h, token, link)).value, []);
  });

  test('an id in the body that differs from the path is 400', async () => {
    const token = await seededToken(h);
    const res = await put(h, token, '/absences/1', { ...absence(), id: 2 });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().validationErrors[0].property, 'id');
  });
});

describe('absence validation', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['dayPart outside the enum', { dayPart: 'Third' }, 'dayPart'],
    ['status outside the enum', { status: 'manual' }, 'status'],
    ['approvalLevel outside the enum', { approvalLevel: 'Yes' }, 'approvalLevel'],
    ['periodType outside the enum', { periodType: 'Month' }, 'periodType'],
    ['negative startTimeInMinutes', { startTimeInMinutes: -1 }, 'startTimeInMinutes'],
    ['startTimeInMinutes over 1440', { startTimeInMinutes: 1441 }, 'startTimeInMinutes'],
    ['fractional durationInMinutes', { durationInMinutes: 1.5 }, 'durationInMinutes'],
    ['durationInMinutes over 1440', { durationInMinutes: 2000 }, 'durationInMinutes'],
    [
      'calculatedDurationInMinutes as a string',
      { calculatedDurationInMinutes: '60' },
      'calculatedDurationInMinutes',
    ],
    ['a date that does not exist', { date: '2026-02-30' }, 'date'],
    ['a date without leading zeros', { date: '2026-3-2' }, 'date'],
    ['a date with a time', { date: '2026-03-02T00:00:00Z' }, 'date'],
    ['isLocked as a string', { isLocked: 'false' }, 'isLocked'],
    ['request.id without a RequestId', { request: { id: 'acme-1' } }, 'request.id'],
    ['request.id with a non-numeric PersonId', { request: { id: 'acme-x-9001' } }, 'request.id'],
    ['request.id without a TenantId', { request: { id: '-1-9001' } }, 'request.id'],
    ['request.id of another person', { request: { id: 'acme-2-9001' } }, 'request.id'],
    ['an empty request.id', { request: { id: '' } }, 'request.id'],
    ['request without id', { request: {} }, 'request.id'],
    ['person missing', { person: undefined }, 'person'],
    ['person null', { person: null }, 'person'],
    [
      'resultingAbsenceDefinition missing',
      { resultingAbsenceDefinition: undefined },
      'resultingAbsenceDefinition',
    ],
    ['a link with neither id nor references', { person: {} }, 'person'],
    [
      'a link with id and references',
      { person: { id: 1, externalReferences: { '@employee-number': 'E1' } } },
      'person',
    ],
    ['a link id of 0', { shiftDefinition: { id: 0 } }, 'shiftDefinition.id'],
    ['a link id that is a string', { shiftDefinition: { id: '20' } }, 'shiftDefinition.id'],
    [
      'a link naming two references',
      { person: { externalReferences: { '@employee-number': 'E1', '@badge-number': 'B1' } } },
      'person.externalReferences',
    ],
    [
      'a predefined reference of another collection',
      { person: { externalReferences: { '@shift-code': 'C20' } } },
      'person.externalReferences.@shift-code',
    ],
    ['a shiftDefinition that is a number', { shiftDefinition: 20 }, 'shiftDefinition'],
    ['an unknown property', { comment: 'x' }, 'comment'],
    ['a changeVersion', { changeVersion: '00000000000000000001' }, 'changeVersion'],
  ];
  for (const [what, change, property] of cases) {
    test(`${what} is 400 naming ${property}, and nothing is written`, async () => {
      const token = await seededToken(h);
      const body: Record<string, unknown> = { ...absence(), ...change };
      for (const [k, v] of Object.entries(change)) if (v === undefined) delete body[k];
      const res = await put(h, token, '/absences/1', body);
      assert.equal(res.statusCode, 400, res.body);
      const errors = res.json().validationErrors as { property: string }[];
      assert.ok(Array.isArray(errors), res.body);
      assert.ok(
        errors.some((e) => e.property === property),
        JSON.stringify(errors),
      );
      assert.equal((await h.request({ method: 'GET', path: '/absences/1', token })).statusCode, 404);
    });
  }

  test('a leap day is a real date', async () => {
    const token = await seededToken(h);
    assert.equal((await put(h, token, '/absences/1', absence({ date: '2028-02-29' }))).statusCode, 201);
  });

  test('0 and 1440 minutes are accepted', async () => {
    const token = await seededToken(h);
    const res = await put(
      h,
      token,
      '/absences/1',
      absence({ startTimeInMinutes: 0, durationInMinutes: 1440, calculatedDurationInMinutes: 0 }),
    );
    assert.equal(res.statusCode, 201);
  });

  test('a TenantId with hyphens is accepted when PersonId and RequestId are the last two segments', async () => {
    const token = await seededToken(h);
    const res = await put(h, token, '/absences/1', absence({ request: { id: 'acme-corp-eu-1-77' } }));
    assert.equal(res.statusCode, 201, res.body);
  });
});

describe('absence links', () => {
  test('links that name nothing in the tenant are 400 UnknownLink listing each one', async () => {
    const token = await seededToken(h);
    const res = await put(
      h,
      token,
      '/absences/1',
      absence({
        person: { id: 99 },
        requestedAbsenceDefinition: { id: 97 },
        shiftDefinition: { id: 10 },
        request: null,
      }),
    );
    assert.equal(res.statusCode, 400);
    const { error } = res.json();
    assert.equal(error.code, 'UnknownLink');
    assert.equal(error.reasons.length, 3);
    assert.match(error.reasons.join('\n'), /person: no person has id 99/);
    assert.match(error.reasons.join('\n'), /requestedAbsenceDefinition: no absence definition has id 97/);
    assert.match(error.reasons.join('\n'), /shiftDefinition: no shift definition has id 10/);
    assert.equal((await h.request({ method: 'GET', path: '/absences/1', token })).statusCode, 404);
  });

  test("another tenant's person cannot be linked", async () => {
    const a = await seededToken(h);
    const b = await h.token(newTenant());
    const res = await put(h, b, '/absences/1', absence());
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'UnknownLink');
    assert.equal(res.json().error.reasons.length, 4);
    assert.equal((await put(h, a, '/absences/1', absence())).statusCode, 201);
  });
});

describe('DELETE /absences/{id}', () => {
  test('204, then 404; another tenant gets 404 and the absence stays', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence());
    const other = await h.token(newTenant());
    assert.equal((await h.request({ method: 'DELETE', path: '/absences/1', token: other })).statusCode, 404);
    assert.equal((await h.request({ method: 'GET', path: '/absences/1', token: other })).statusCode, 404);
    assert.equal((await h.request({ method: 'DELETE', path: '/absences/1', token })).statusCode, 204);
    assert.equal((await h.request({ method: 'GET', path: '/absences/1', token })).statusCode, 404);
    const again = await h.request({ method: 'DELETE', path: '/absences/1', token });
    assert.equal(again.statusCode, 404);
    assert.equal(again.json().error.code, 'NotFound');
  });
});

describe('GET /absences?filter=…', () => {
  const dates = [
    '2026-03-05',
    '2026-03-01',
    '2026-03-03',
    '2026-03-01',
    '2026-03-02',
    '2026-03-05',
    '2026-03-04',
  ];

  async function withAbsences(): Promise<string> {
    const token = await seededToken(h);
    for (const [i, date] of dates.entries()) {
      await putOk(
        h,
        token,
        `/absences/${100 - i}`,
        absence({ date, person: { id: (i % 2) + 1 }, request: null }),
      );
    }
    return token;
  }

  test('returns the range ordered by (date, id), paged with nextLink until the end', async () => {
    const token = await withAbsences();
    const pages = await allPages(
      h,
      token,
      `/absences?${filterQuery("date ge '2026-03-01' and date le '2026-03-31'")}`,
    );
    const got = pages.flatMap((p) => p.value.map((v) => [v.date, v.id]));
    const expected = dates
      .map((date, i) => [date, 100 - i] as [string, number])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
    assert.deepEqual(got, expected);
    assert.deepEqual(
      pages.map((p) => p.value.length),
      [3, 3, 1],
    );
    const first = pages[0]!.nextLink!;
    assert.ok(first.startsWith(`${PREFIX}/absences?filter=`), first);
    assert.match(
      decodeURIComponent(first),
      /filter=date ge '2026-03-01' and date le '2026-03-31'&continuationToken=/,
    );
  });

  test('applies the date bounds inclusively and the person filter', async () => {
    const token = await withAbsences();
    const range = await allPages(
      h,
      token,
      `/absences?${filterQuery("date ge '2026-03-02' and date le '2026-03-04'")}`,
    );
    assert.deepEqual(
      range.flatMap((p) => p.value.map((v) => v.date)),
      ['2026-03-02', '2026-03-03', '2026-03-04'],
    );
    const person2 = await allPages(
      h,
      token,
      `/absences?${filterQuery("date ge '2026-03-01' and person in (2)")}`,
    );
    assert.deepEqual(person2.flatMap((p) => p.value.map((v) => v.id)).sort(), [95, 97, 99]);
    assert.ok(person2.flatMap((p) => p.value).every((v) => v.person.id === 2));
  });

  test('date le defaults to 365 days after date ge', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence({ date: '2027-03-01' }));
    await putOk(h, token, '/absences/2', absence({ date: '2027-03-02' }));
    const pages = await allPages(h, token, `/absences?${filterQuery("date ge '2026-03-01'")}`);
    assert.deepEqual(
      pages.flatMap((p) => p.value.map((v) => v.id)),
      [1],
    );
  });

  const badFilters: [string, string | undefined][] = [
    ['missing', undefined],
    ['empty', ''],
    ['without date ge', "date le '2026-03-01'"],
    ['spanning 367 days', "date ge '2026-01-01' and date le '2027-01-03'"],
    ['malformed', "date ge '2026-01-01' and"],
    ['on another field', "status eq 'Manual'"],
  ];
  for (const [what, filter] of badFilters) {
    test(`a filter ${what} is 400 InvalidFilter with reasons`, async () => {
      const token = await seededToken(h);
      const res = await h.request({
        method: 'GET',
        path: filter === undefined ? '/absences' : `/absences?${filterQuery(filter)}`,
        token,
      });
      assert.equal(res.statusCode, 400);
      const { error } = res.json();
      assert.equal(error.code, 'InvalidFilter');
      assert.ok(error.reasons.length > 0);
    });
  }

  test('a continuation token only continues the same filter', async () => {
    const token = await withAbsences();
    const page = (
      await h.request({ method: 'GET', path: `/absences?${filterQuery("date ge '2026-03-01'")}`, token })
    ).json();
    const continuation = page.nextLink.split('continuationToken=')[1];
    const res = await h.request({
      method: 'GET',
      path: `/absences?${filterQuery("date ge '2026-03-02'")}&continuationToken=${continuation}`,
      token,
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'InvalidContinuationToken');
  });

  test("another tenant's absences are not listed", async () => {
    await withAbsences();
    const other = await h.token(newTenant());
    const res = await h.request({
      method: 'GET',
      path: `/absences?${filterQuery("date ge '2026-03-01'")}`,
      token: other,
    });
    assert.deepEqual(res.json(), { value: [] });
  });
});

describe('POST /absences/batch', () => {
  const batch = (token: string, body: unknown) =>
    h.request({ method: 'POST', path: '/absences/batch', token, body });

  test('upserts and deletes in one transaction and reports the counts and lastChangeVersion', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence());
    await putOk(h, token, '/absences/2', absence());
    const link = await startDelta(token);
    const res = await batch(token, {
      upsert: [
        { ...absence(), id: 1 },
        { ...absence({ dayPart: 'Second' }), id: 3 },
        { ...absence({ person: { id: 2 }, request: { id: 'acme-2-1' } }), id: 4 },
      ],
      delete: [2, 404],
    });
    assert.equal(res.statusCode, 200, res.body);
    const result = res.json();
    assert.deepEqual(
      { ...result, lastChangeVersion: undefined },
      {
        upserted: 2,
        unchanged: 1,
        deleted: 1,
        lastChangeVersion: undefined,
      },
    );
    const delta = await followDelta(h, token, link);
    assert.deepEqual(
      delta.value.map((c) => [c.changeType, c.data.id]),
      [
        ['InsertOrUpdate', 3],
        ['InsertOrUpdate', 4],
        ['Delete', 2],
      ],
    );
    assert.equal(result.lastChangeVersion, delta.value.at(-1)!.data.changeVersion);
    assert.equal((await h.request({ method: 'GET', path: '/absences/2', token })).statusCode, 404);
    assert.equal((await h.request({ method: 'GET', path: '/absences/4', token })).json().person.id, 2);
  });

  test('concurrent batches of a tenant, written together after waiting for its lock, each get their own answer', async () => {
    const tenant = newTenant();
    const token = await h.token(tenant);
    await seed(h, token);
    const link = await startDelta(token);
    // The tenant lock held by another transaction: the batches queue behind it (two in the store, the rest in
    // the process) and are written, the queued ones in one statement, once it is released.
    const release = await holdTenantLock(h.db, tenant);
    const ids = [[1, 2, 3], [4], [5, 6], [7, 8], [9], [10, 11, 12]];
    const unknownAt = 3;
    const answers = ids.map((batchIds, b) =>
      batch(token, {
        upsert: batchIds.map((id, i) => ({
          ...absence(b === unknownAt && i === 1 ? { shiftDefinition: { id: 999 } } : {}),
          id,
        })),
        delete: [],
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await release();
    const results = await Promise.all(answers);

    const delta: Awaited<ReturnType<typeof followDelta>>['value'] = [];
    let page = await followDelta(h, token, link);
    while (page.value.length > 0) {
      delta.push(...page.value);
      page = await followDelta(h, token, page.deltaLink);
    }
    const versionOf = new Map(delta.map((c) => [c.data.id as number, c.data.changeVersion as string]));
    for (const [b, res] of results.entries()) {
      if (b === unknownAt) {
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json().error.code, 'UnknownLink');
        assert.deepEqual(res.json().error.reasons, [
          'upsert.1.shiftDefinition: no shift definition has id 999 in this tenant.',
        ]);
        for (const id of ids[b]!) assert.equal(versionOf.has(id), false, `absence ${id} was written`);
        continue;
      }
      assert.equal(res.statusCode, 200, res.body);
      const versions = ids[b]!.map((id) => parseInt(versionOf.get(id)!, 16));
      assert.deepEqual(res.json(), {
        upserted: ids[b]!.length,
        unchanged: 0,
        deleted: 0,
        lastChangeVersion: versionOf.get(ids[b]!.at(-1)!),
      });
      // A batch's changes are consecutive, in its order.
      assert.deepEqual(
        versions,
        versions.map((_, i) => versions[0]! + i),
      );
    }
    assert.equal(delta.length, ids.flat().length - ids[unknownAt]!.length);
  });

  test('a batch that changes nothing reports lastChangeVersion null', async () => {
    const token = await seededToken(h);
    const res = await batch(token, { upsert: [], delete: [5] });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { upserted: 0, unchanged: 0, deleted: 0, lastChangeVersion: null });
  });

  test('one invalid item rejects the whole batch: nothing written, no change recorded', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence());
    const link = await startDelta(token);
    const res = await batch(token, {
      upsert: [
        { ...absence(), id: 2 },
        { ...absence({ date: '2026-02-30' }), id: 3 },
      ],
      delete: [1],
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json().validationErrors, [
      { property: 'upsert.1.date', message: 'must match format "date"' },
    ]);
    assert.equal((await h.request({ method: 'GET', path: '/absences/2', token })).statusCode, 404);
    assert.equal((await h.request({ method: 'GET', path: '/absences/1', token })).statusCode, 200);
    assert.deepEqual((await followDelta(h, token, link)).value, []);
  });

  test('one unknown link rejects the whole batch with UnknownLink naming the item', async () => {
    const token = await seededToken(h);
    const link = await startDelta(token);
    const res = await batch(token, {
      upsert: [
        { ...absence(), id: 2 },
        { ...absence({ shiftDefinition: { id: 999 } }), id: 3 },
      ],
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'UnknownLink');
    assert.deepEqual(res.json().error.reasons, [
      'upsert.1.shiftDefinition: no shift definition has id 999 in this tenant.',
    ]);
    assert.equal((await h.request({ method: 'GET', path: '/absences/2', token })).statusCode, 404);
    assert.deepEqual((await followDelta(h, token, link)).value, []);
  });

  test('a request.id of another person rejects the whole batch', async () => {
    const token = await seededToken(h);
    const res = await batch(token, { upsert: [{ ...absence({ request: { id: 'acme-2-5' } }), id: 2 }] });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().validationErrors[0].property, 'upsert.0.request.id');
  });

  test('an id twice in a batch is 400', async () => {
    const token = await seededToken(h);
    const twice = await batch(token, {
      upsert: [
        { ...absence(), id: 2 },
        { ...absence(), id: 2 },
      ],
    });
    assert.equal(twice.statusCode, 400);
    assert.equal(twice.json().validationErrors[0].property, 'upsert.1.id');
    const both = await batch(token, { upsert: [{ ...absence(), id: 2 }], delete: [2] });
    assert.equal(both.statusCode, 400);
    assert.equal(both.json().validationErrors[0].property, 'delete.0');
  });

  test('upserts need their id; unknown properties and non-id deletes are 400', async () => {
    const token = await seededToken(h);
    for (const body of [
      { upsert: [absence()] },
      { upsert: [], extra: 1 },
      { delete: ['1'] },
      { delete: [0] },
      [],
    ]) {
      const res = await batch(token, body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.ok(Array.isArray(res.json().validationErrors));
    }
  });

  test('more than 10,000 items is 400', async () => {
    const token = await seededToken(h);
    const res = await batch(token, { delete: Array.from({ length: 10_001 }, (_, i) => i + 1) });
    assert.equal(res.statusCode, 400);
    const split = await batch(token, {
      upsert: [{ ...absence(), id: 1 }],
      delete: Array.from({ length: 10_000 }, (_, i) => i + 2),
    });
    assert.equal(split.statusCode, 400);
    assert.match(JSON.stringify(split.json()), /at most 10000/);
  });

  test('accepts bodies over 1 MiB (the batch limit is 16 MiB) and writes every item', async () => {
    const token = await seededToken(h);
    const upsert = Array.from({ length: 4000 }, (_, i) => ({
      ...absence({ date: `2026-0${(i % 9) + 1}-1${i % 10}` }),
      id: i + 1,
    }));
    const body = JSON.stringify({ upsert });
    assert.ok(body.length > 1024 * 1024);
    const res = await batch(token, body);
    assert.equal(res.statusCode, 200, res.body.slice(0, 500));
    assert.equal(res.json().upserted, 4000);
    const again = await batch(token, body);
    assert.deepEqual(
      { ...again.json<object>(), lastChangeVersion: null },
      { upserted: 0, unchanged: 4000, deleted: 0, lastChangeVersion: null },
    );
  });

  test('a PUT over 1 MiB is 413', async () => {
    const token = await seededToken(h);
    const res = await put(h, token, '/absences/1', { ...absence(), comment: 'x'.repeat(1024 * 1024) });
    assert.equal(res.statusCode, 413);
  });

  test('needs absences.write', async () => {
    const tenant = newTenant();
    const token = await h.token(tenant, ['connector-protimeapi-absences.read']);
    const res = await batch(token, { upsert: [] });
    assert.equal(res.statusCode, 401);
  });
});
