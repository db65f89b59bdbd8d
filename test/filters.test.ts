// The list filters of SPEC §1.4 through HTTP: upstream's grammar on absences (or on person, parentheses,
// named sets refused), the people filter, definitions that take none, and unknown query parameters ignored.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useHarness } from './helpers/harness.ts';
import { absence, allPages, filterQuery, person, putOk, seededToken } from './helpers/collections.ts';

const h = await useHarness({ TIMEHOOK_PAGE_SIZE: '2' });
const MARCH = "date ge '2026-03-01' and date le '2026-03-31'";

async function ids(token: string, path: string): Promise<number[]> {
  const pages = await allPages(h, token, path);
  return pages.flatMap((p) => p.value.map((o: { id: number }) => o.id));
}

async function badFilter(token: string, path: string): Promise<string[]> {
  const res = await h.request({ method: 'GET', path, token });
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().error.code, 'InvalidFilter');
  return res.json().error.reasons;
}

/** Three people and an absence each on 2026-03-02, plus one of person 1 in April. */
async function seeded(): Promise<string> {
  const token = await seededToken(h);
  await putOk(h, token, '/people/3', person(3, { badgeNumber: 'B3' }));
  for (const id of [1, 2, 3])
    await putOk(h, token, `/absences/${id}`, absence({ person: { id }, request: null }));
  await putOk(h, token, '/absences/4', absence({ date: '2026-04-02' }));
  return token;
}

describe('GET /absences with the upstream grammar', () => {
  test('or between person conditions, in parentheses, selects their union', async () => {
    const token = await seeded();
    const filter = `(person eq 1 or person eq 3) and ${MARCH}`;
    assert.deepEqual(await ids(token, `/absences?${filterQuery(filter)}`), [1, 3]);
    const nested = `${MARCH} and ((person in (1, 2) and person in (2, 3)) or person eq 3)`;
    assert.deepEqual(await ids(token, `/absences?${filterQuery(nested)}`), [2, 3]);
  });

  test('the nextLink carries the filter as given and pages on', async () => {
    const token = await seeded();
    const filter = `${MARCH} and (person eq 1 or person in (2, 3))`;
    const pages = await allPages(h, token, `/absences?${filterQuery(filter)}`);
    assert.equal(pages.length, 2);
    assert.ok(pages[0]!.nextLink!.includes(filterQuery(filter)));
  });

  test('or across fields is 400 and says why', async () => {
    const token = await seeded();
    const reasons = await badFilter(token, `/absences?${filterQuery(`${MARCH} or person eq 1`)}`);
    assert.match(reasons[0]!, /or may only join conditions on one field of the Multiple category \(person\)/);
  });

  test('named sets Timehook cannot resolve are 400 naming the construct', async () => {
    const token = await seeded();
    for (const set of ['circle', 'org-group', 'org-tree']) {
      const reasons = await badFilter(
        token,
        `/absences?${filterQuery(`${MARCH} and person in ${set}(2, 8)`)}`,
      );
      assert.match(reasons[0]!, new RegExp(`person in ${set}\\(…\\) names a set Timehook cannot resolve`));
    }
  });

  test('a filter that looks like SQL is only ever a value', async () => {
    const token = await seeded();
    const reasons = await badFilter(
      token,
      `/absences?${filterQuery(`${MARCH} and person eq '1; drop table absences'`)}`,
    );
    assert.match(reasons[0]!, /is not a valid person id/);
    assert.deepEqual(await ids(token, `/absences?${filterQuery(MARCH)}`), [1, 2, 3]);
  });
});

describe('GET /people?filter=…', () => {
  test('filters on id, employeeNumber and badgeNumber, with or and in', async () => {
    const token = await seeded();
    assert.deepEqual(await ids(token, '/people'), [1, 2, 3]);
    assert.deepEqual(await ids(token, `/people?${filterQuery('id in (1, 3)')}`), [1, 3]);
    assert.deepEqual(
      await ids(token, `/people?${filterQuery("employeeNumber eq 'E2' or employeeNumber eq 'E3'")}`),
      [2, 3],
    );
    assert.deepEqual(await ids(token, `/people?${filterQuery("badgeNumber eq 'B3' and id eq 3")}`), [3]);
    assert.deepEqual(await ids(token, `/people?${filterQuery("badgeNumber eq 'B3' and id eq 1")}`), []);
  });

  test('an unknown field or a bad value is 400 with reasons', async () => {
    const token = await seeded();
    assert.match(
      (await badFilter(token, `/people?${filterQuery("lastName eq 'X'")}`))[0]!,
      /"lastName" is not a field/,
    );
    assert.match((await badFilter(token, `/people?${filterQuery('employeeNumber eq 2')}`))[0]!, /quoted/);
    assert.match(
      (await badFilter(token, `/people?${filterQuery('id ge 2')}`))[0]!,
      /id takes eq or in, not ge/,
    );
  });

  test('definitions take no filter, as upstream', async () => {
    const token = await seeded();
    for (const collection of ['absence-definitions', 'shift-definitions']) {
      const reasons = await badFilter(token, `/${collection}?${filterQuery('id eq 10')}`);
      assert.match(reasons[0]!, new RegExp(`The ${collection} list takes no filter`));
    }
  });
});

describe('unknown query parameters', () => {
  test('are ignored on lists, items and delta, and left out of nextLink', async () => {
    const token = await seeded();
    const pages = await allPages(h, token, `/absences?${filterQuery(MARCH)}&$top=10&_=123`);
    assert.equal(pages.length, 2);
    assert.ok(!pages[0]!.nextLink!.includes('top'));
    assert.ok(!pages[0]!.nextLink!.includes('_='));
    assert.deepEqual(await ids(token, '/people?cacheBuster=1'), [1, 2, 3]);
    const item = await h.request({ method: 'GET', path: '/absences/1?expand=person', token });
    assert.equal(item.statusCode, 200, item.body);
    const load = await allPages(h, token, `/people?delta&x=1`);
    const delta = await h.request({ method: 'GET', path: `${load.at(-1)!.deltaLink!}&x=1`, token });
    assert.equal(delta.statusCode, 200, delta.body);
  });
});
