// Delta (SPEC §1.4, §2): the initial load with &delta, the change feed after a deltaToken with the original
// filter and external references, paging of changes, and expired, pruned, forged and foreign tokens.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newTenant, PREFIX, useHarness } from './helpers/harness.ts';
import {
  absence,
  allPages,
  definition,
  filterQuery,
  followDelta,
  person,
  putOk,
  seededToken,
} from './helpers/collections.ts';

const h = await useHarness({ TIMEHOOK_PAGE_SIZE: '3' });
// A delta may start no earlier than 1 January of the previous year: the clock stays in 2026, so the March
// 2026 deltas below stay valid whenever the suite runs.
const NOW = new Date('2026-06-15T12:00:00Z');
beforeEach(() => {
  h.clock.fixed = NOW;
});
afterEach(() => {
  h.clock.fixed = undefined;
});

const HOUR_MS = 3_600_000;
const MARCH = "date ge '2026-03-01' and date le '2026-03-31'";

async function load(token: string, path: string): Promise<string> {
  const pages = await allPages(h, token, path);
  for (const page of pages.slice(0, -1)) assert.equal(page.deltaLink, undefined);
  const link = pages.at(-1)!.deltaLink;
  assert.ok(link, 'the last page of a delta load has a deltaLink');
  return link;
}

const summary = (changes: { changeType: string; data: { id: number } }[]) =>
  changes.map((c) => [c.changeType, c.data.id]);

describe('the initial load with &delta', () => {
  test('pages like a list, carries delta in nextLink, and ends with a deltaLink to /delta/<collection>', async () => {
    const token = await seededToken(h);
    for (const id of [1, 2, 3, 4])
      await putOk(h, token, `/absences/${id}`, absence({ date: `2026-03-0${id}` }));
    const pages = await allPages(h, token, `/absences?${filterQuery(MARCH)}&delta`);
    assert.deepEqual(
      pages.map((p) => p.value.length),
      [3, 1],
    );
    assert.match(pages[0]!.nextLink!, /&delta&continuationToken=/);
    assert.equal(pages[0]!.deltaLink, undefined);
    assert.equal(pages[1]!.nextLink, undefined);
    assert.ok(pages[1]!.deltaLink!.startsWith(`${PREFIX}/delta/absences?deltaToken=`));
  });

  test('works for people and definitions, and for an empty collection', async () => {
    const token = await h.token(newTenant());
    for (const collection of ['people', 'absence-definitions', 'shift-definitions']) {
      const link = await load(token, `/${collection}?delta`);
      assert.ok(link.startsWith(`${PREFIX}/delta/${collection}?deltaToken=`));
      assert.deepEqual((await followDelta(h, token, link)).value, []);
    }
  });

  test('a change made while the load is paging is reported by the delta', async () => {
    const token = await seededToken(h);
    for (const id of [1, 2, 3, 4])
      await putOk(h, token, `/absences/${id}`, absence({ date: `2026-03-0${id}` }));
    const first = (
      await h.request({ method: 'GET', path: `/absences?${filterQuery(MARCH)}&delta`, token })
    ).json();
    await putOk(h, token, '/absences/1', absence({ date: '2026-03-01', durationInMinutes: 30 }));
    const rest = await allPages(h, token, first.nextLink);
    const delta = await followDelta(h, token, rest.at(-1)!.deltaLink!);
    assert.deepEqual(summary(delta.value), [['InsertOrUpdate', 1]]);
    assert.equal(delta.value[0]!.data.durationInMinutes, 30);
  });
});

describe('GET /delta/<collection>', () => {
  test('reports inserts, updates and deletes in changeVersion order with the objects as written', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence());
    const link = await load(token, `/absences?${filterQuery(MARCH)}&delta`);
    const inserted = await putOk(h, token, '/absences/2', absence({ date: '2026-03-10' }));
    const updated = await putOk(h, token, '/absences/1', absence({ dayPart: 'Second' }));
    await h.request({ method: 'DELETE', path: '/absences/2', token });
    const delta = await followDelta(h, token, link);
    assert.deepEqual(summary(delta.value), [
      ['InsertOrUpdate', 2],
      ['InsertOrUpdate', 1],
      ['Delete', 2],
    ]);
    assert.deepEqual(delta.value[0]!.data, inserted);
    assert.deepEqual(delta.value[1]!.data, updated);
    assert.deepEqual(Object.keys(delta.value[2]!.data), ['changeVersion', 'id']);
    const versions = delta.value.map((c) => c.data.changeVersion);
    assert.deepEqual([...versions].sort(), versions);
    assert.ok(delta.deltaLink.startsWith(`${PREFIX}/delta/absences?deltaToken=`));
    const next = await followDelta(h, token, delta.deltaLink);
    assert.deepEqual(next.value, []);
    assert.ok(next.deltaLink);
    await putOk(h, token, '/absences/3', absence({ date: '2026-03-20' }));
    assert.deepEqual(summary((await followDelta(h, token, next.deltaLink)).value), [['InsertOrUpdate', 3]]);
  });

  test('applies the date range to inserts, updates and deletes: changes outside it are not reported', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence({ date: '2026-03-05' }));
    await putOk(h, token, '/absences/2', absence({ date: '2026-04-05' }));
    const link = await load(token, `/absences?${filterQuery(MARCH)}&delta`);
    await putOk(h, token, '/absences/3', absence({ date: '2026-04-06' }));
    await putOk(h, token, '/absences/4', absence({ date: '2026-03-31' }));
    await h.request({ method: 'DELETE', path: '/absences/2', token });
    await h.request({ method: 'DELETE', path: '/absences/1', token });
    const delta = await followDelta(h, token, link);
    assert.deepEqual(summary(delta.value), [
      ['InsertOrUpdate', 4],
      ['Delete', 1],
    ]);
  });

  test('an absence moved out of the date range is reported, so the consumer learns it left', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence({ date: '2026-03-05' }));
    await putOk(h, token, '/absences/2', absence({ date: '2026-04-05' }));
    const link = await load(token, `/absences?${filterQuery(MARCH)}&delta`);
    await putOk(h, token, '/absences/1', absence({ date: '2026-04-07' }));
    await putOk(h, token, '/absences/2', absence({ date: '2026-04-08' }));
    const delta = await followDelta(h, token, link);
    assert.deepEqual(summary(delta.value), [['InsertOrUpdate', 1]]);
    assert.equal((delta.value[0]!.data as unknown as { date: string }).date, '2026-04-07');
  });

  test('without date le, follows every later date: a change two years after the start is reported', async () => {
    const token = await seededToken(h);
    const pages = await allPages(h, token, `/absences?${filterQuery("date ge '2026-03-01'")}&delta`);
    const link = pages.at(-1)!.deltaLink!;
    await putOk(h, token, '/absences/1', absence({ date: '2028-03-02' }));
    await putOk(h, token, '/absences/2', absence({ date: '2026-02-28' }));
    assert.deepEqual(summary((await followDelta(h, token, link)).value), [['InsertOrUpdate', 1]]);
  });

  test('the initial load without date le holds every later date too', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1', absence({ date: '2026-03-02' }));
    await putOk(h, token, '/absences/2', absence({ date: '2029-12-31' }));
    const pages = await allPages(h, token, `/absences?${filterQuery("date ge '2026-03-01'")}&delta`);
    assert.deepEqual(
      pages.flatMap((p) => p.value.map((a: { id: number }) => a.id)),
      [1, 2],
    );
    // A plain list without date le still ends 365 days after date ge.
    const list = await allPages(h, token, `/absences?${filterQuery("date ge '2026-03-01'")}`);
    assert.deepEqual(
      list.flatMap((p) => p.value.map((a: { id: number }) => a.id)),
      [1],
    );
  });

  test('a person filter with &delta is 400, as upstream, and the same list without &delta is 200', async () => {
    const token = await seededToken(h);
    for (const filter of [`${MARCH} and person in (2)`, `${MARCH} and (person eq 1 or person eq 2)`]) {
      const res = await h.request({ method: 'GET', path: `/absences?${filterQuery(filter)}&delta`, token });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, 'InvalidFilter');
      assert.match(res.json().error.reasons.join(' '), /person filtering is not available with delta/);
      const list = await h.request({ method: 'GET', path: `/absences?${filterQuery(filter)}`, token });
      assert.equal(list.statusCode, 200, list.body);
    }
  });

  test('a start before 1 January of the previous year is 400; that day itself is accepted', async () => {
    const token = await seededToken(h);
    const early = await h.request({
      method: 'GET',
      path: `/absences?${filterQuery("date ge '2024-12-31' and date le '2025-06-30'")}&delta`,
      token,
    });
    assert.equal(early.statusCode, 400, early.body);
    assert.deepEqual(early.json().error.reasons, [
      "A delta may start no earlier than 1 January of the previous year (2025-01-01); date ge is '2024-12-31'.",
    ]);
    await load(token, `/absences?${filterQuery("date ge '2025-01-01'")}&delta`);
    const list = await h.request({
      method: 'GET',
      path: `/absences?${filterQuery("date ge '2024-12-31' and date le '2025-06-30'")}`,
      token,
    });
    assert.equal(list.statusCode, 200, list.body);
  });

  test('a people filter with &delta is 400', async () => {
    const token = await seededToken(h);
    const res = await h.request({ method: 'GET', path: `/people?${filterQuery('id eq 1')}&delta`, token });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json().error.code, 'InvalidFilter');
  });

  test("reports only the token's collection", async () => {
    const token = await seededToken(h);
    const people = await load(token, '/people?delta');
    const absences = await load(token, `/absences?${filterQuery(MARCH)}&delta`);
    await putOk(h, token, '/absence-definitions/12', definition(12));
    await putOk(h, token, '/people/3', person(3));
    assert.deepEqual(summary((await followDelta(h, token, people)).value), [['InsertOrUpdate', 3]]);
    assert.deepEqual((await followDelta(h, token, absences)).value, []);
  });

  test('applies the external references of the initial load to the data', async () => {
    const token = await seededToken(h);
    const refs = '(people,@employee-number)(shift-definitions,@shift-code)';
    const link = await load(token, `/absences?${filterQuery(MARCH)}&delta&externalReferences=${refs}`);
    await putOk(h, token, '/absences/1', absence());
    await h.request({ method: 'DELETE', path: '/absences/1', token });
    const delta = await followDelta(h, token, link);
    assert.deepEqual(delta.value[0]!.data.person, {
      id: 1,
      externalReferences: { '@employee-number': 'E1' },
    });
    assert.deepEqual(delta.value[0]!.data.shiftDefinition, {
      id: 20,
      externalReferences: { '@shift-code': 'C20' },
    });
    assert.deepEqual(delta.value[0]!.data.resultingAbsenceDefinition, { id: 10 });
    assert.deepEqual(Object.keys(delta.value[1]!.data), ['changeVersion', 'id']);
    const people = await load(token, '/people?delta&externalReferences=(people,@badge-number)');
    await putOk(h, token, '/people/2', person(2, { badgeNumber: 'B2' }));
    const data = (await followDelta(h, token, people)).value[0]!.data;
    assert.deepEqual(Object.keys(data).slice(0, 3), ['changeVersion', 'id', 'externalReferences']);
    assert.deepEqual(data.externalReferences, { '@badge-number': 'B2' });
  });

  test('returns at most a page of changes; the deltaLink continues after the last one returned', async () => {
    const token = await h.token(newTenant());
    const link = await load(token, '/people?delta');
    for (const id of [1, 2, 3, 4, 5, 6, 7]) await putOk(h, token, `/people/${id}`, person(id));
    const ids: number[][] = [];
    let next = link;
    for (let i = 0; i < 4; i++) {
      const page = await followDelta(h, token, next);
      ids.push(page.value.map((c) => c.data.id));
      next = page.deltaLink;
    }
    assert.deepEqual(ids, [[1, 2, 3], [4, 5, 6], [7], []]);
  });

  test('the same deltaLink can be read again (a lost response can be retried)', async () => {
    const token = await h.token(newTenant());
    const link = await load(token, '/people?delta');
    await putOk(h, token, '/people/1', person(1));
    const a = await followDelta(h, token, link);
    const b = await followDelta(h, token, link);
    assert.deepEqual(a.value, b.value);
  });

  test('needs the read scope of the collection', async () => {
    const tenant = newTenant();
    const token = await h.token(tenant);
    const link = await load(token, '/people?delta');
    const other = await h.token(tenant, ['connector-protimeapi-absences.read']);
    assert.equal((await h.request({ method: 'GET', path: link, token: other })).statusCode, 401);
  });
});

describe('delta tokens', () => {
  test('a token expires 72 h after it was issued: 410 Gone; a fresh deltaLink restarts the clock', async () => {
    const start = new Date('2026-03-01T00:00:00Z');
    h.clock.fixed = start;
    const token = await h.token(newTenant());
    const link = await load(token, '/people?delta');
    h.clock.fixed = new Date(start.getTime() + 71 * HOUR_MS);
    const fresh = (await followDelta(h, token, link)).deltaLink;
    h.clock.fixed = new Date(start.getTime() + 72 * HOUR_MS + 1000);
    const gone = await h.request({ method: 'GET', path: link, token });
    assert.equal(gone.statusCode, 410);
    assert.equal(gone.json().error.code, 'Gone');
    assert.equal((await h.request({ method: 'GET', path: fresh, token })).statusCode, 200);
  });

  test('a token older than the retained change log is 410 Gone', async () => {
    const tenant = newTenant();
    const token = await h.token(tenant);
    await putOk(h, token, '/people/1', person(1));
    const link = await load(token, '/people?delta');
    await putOk(h, token, '/people/2', person(2));
    const rows = await h.db.query<{ v: number }>('select last_version as v from tenants where id = $1', [
      tenant,
    ]);
    const v = rows[0]!.v;
    await h.db.query('update tenants set pruned_through_version = $2 where id = $1', [tenant, v - 1]);
    assert.equal((await h.request({ method: 'GET', path: link, token })).statusCode, 200);
    await h.db.query('update tenants set pruned_through_version = $2 where id = $1', [tenant, v]);
    const res = await h.request({ method: 'GET', path: link, token });
    assert.equal(res.statusCode, 410);
    assert.equal(res.json().error.code, 'Gone');
  });

  test('a forged, altered or missing token is 400 InvalidDeltaToken', async () => {
    const token = await h.token(newTenant());
    const link = await load(token, '/people?delta');
    const raw = decodeURIComponent(link.split('deltaToken=')[1]!);
    const [body, mac] = raw.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString());
    const altered = `${Buffer.from(JSON.stringify({ ...payload, v: payload.v + 100 })).toString('base64url')}.${mac}`;
    for (const bad of [altered, `${body}.${mac!.slice(1)}`, 'not-a-token', `${body}`, '']) {
      const res = await h.request({
        method: 'GET',
        path: `/delta/people?deltaToken=${encodeURIComponent(bad)}`,
        token,
      });
      assert.equal(res.statusCode, 400, bad);
      assert.equal(res.json().error.code, 'InvalidDeltaToken');
    }
    const missing = await h.request({ method: 'GET', path: '/delta/people', token });
    assert.equal(missing.json().error.code, 'InvalidDeltaToken');
    // Unknown query parameters are ignored (README: Errors); the token alone says what the delta holds.
    const extra = await h.request({ method: 'GET', path: `${link}&filter=x`, token });
    assert.equal(extra.statusCode, 200);
    assert.deepEqual(extra.json().value, []);
  });

  test("another collection's or another tenant's token is 400 and shows no data", async () => {
    const tenant = newTenant();
    const token = await h.token(tenant);
    await putOk(h, token, '/people/1', person(1));
    const link = await load(token, '/people?delta');
    await putOk(h, token, '/people/2', person(2));
    const deltaToken = link.split('deltaToken=')[1];
    const wrongCollection = await h.request({
      method: 'GET',
      path: `/delta/absence-definitions?deltaToken=${deltaToken}`,
      token,
    });
    assert.equal(wrongCollection.statusCode, 400);
    assert.equal(wrongCollection.json().error.code, 'InvalidDeltaToken');
    const other = await h.token(newTenant());
    const foreign = await h.request({ method: 'GET', path: link, token: other });
    assert.equal(foreign.statusCode, 400);
    assert.equal(foreign.json().error.code, 'InvalidDeltaToken');
    assert.equal(foreign.body.includes('Person 2'), false);
  });

  test('an unknown collection is 404', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({ method: 'GET', path: '/delta/clockings?deltaToken=x', token });
    assert.equal(res.statusCode, 404);
  });
});

describe('concurrent writers', () => {
  test('concurrent PUTs and batches get distinct versions, and the stored absence is the last change', async () => {
    const token = await seededToken(h);
    const link = await load(token, `/absences?${filterQuery(MARCH)}&delta`);
    const writes = Array.from({ length: 12 }, (_, i) =>
      i % 3 === 0
        ? h.request({
            method: 'POST',
            path: '/absences/batch',
            token,
            body: {
              upsert: [
                { ...absence({ durationInMinutes: i }), id: 1 },
                { ...absence({ durationInMinutes: i }), id: 2 },
              ],
            },
          })
        : h.request({ method: 'PUT', path: '/absences/1', token, body: absence({ durationInMinutes: i }) }),
    );
    for (const res of await Promise.all(writes)) assert.ok([200, 201].includes(res.statusCode), res.body);
    const changes: {
      changeType: string;
      data: { id: number; changeVersion: string; durationInMinutes: number };
    }[] = [];
    let next = link;
    for (;;) {
      const page = await followDelta(h, token, next);
      if (page.value.length === 0) break;
      changes.push(...page.value);
      next = page.deltaLink;
    }
    const versions = changes.map((c) => c.data.changeVersion);
    assert.equal(new Set(versions).size, versions.length);
    assert.deepEqual([...versions].sort(), versions);
    for (const id of [1, 2]) {
      const last = changes.filter((c) => c.data.id === id).at(-1)!;
      const stored = (await h.request({ method: 'GET', path: `/absences/${id}`, token })).json();
      assert.deepEqual(stored, last.data);
    }
  });
});
