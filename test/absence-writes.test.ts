// The absence write path of the store (store/ingest.ts → timehook_write_absence_batches): the change log it
// leaves, byte for byte — the function builds the change data from the columns, and it must read exactly as the
// domain's canonical absence with its changeVersion first — the versions, previous values and deletes, links
// checked in the same statement, and the table's checks that make the plain quoting there safe.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ABSENCE_STATUSES,
  APPROVAL_LEVELS,
  DAY_PARTS,
  MAX_ID,
  PERIOD_TYPES,
  canonicalAbsence,
  canonicalPerson,
  canonicalResource,
  withChangeVersion,
  type AbsenceBody,
  type AbsenceDraft,
} from '../src/domain/collections.ts';
import { parseChangeVersion } from '../src/domain/change-version.ts';
import type { AppError } from '../src/errors.ts';
import { queueAbsenceWrite } from '../src/store/absence-write-queue.ts';
import {
  encodeAbsenceWrites,
  writeAbsenceBatches,
  writeAbsences,
  type AbsenceWriteBatch,
  type AbsenceWriteResult,
} from '../src/store/absences.ts';
import { applyAbsenceBatch, putResource } from '../src/store/ingest.ts';
import { migrate } from '../src/store/migrate.ts';
import { currentVersion, ensureTenant } from '../src/store/tenants.ts';
import { newTenant, openTestDb } from './helpers/harness.ts';
import { absenceDraft as draft } from './helpers/collections.ts';
import { holdTenantLock } from './helpers/tenant-lock.ts';

const { db, drop } = await openTestDb();
await migrate(db);
after(async () => {
  await db.close();
  await drop();
});

const PEOPLE = [1, 42, MAX_ID];
const ABSENCE_DEFINITIONS = [7, 8];
const SHIFT_DEFINITIONS = [3];

async function tenantWithLinks(): Promise<string> {
  const tenant = newTenant();
  await ensureTenant(db, tenant);
  for (const id of PEOPLE) {
    await putResource(db, tenant, 'people', {
      body: canonicalPerson({ id, firstName: 'P', lastName: `${id}` }),
      customReferences: undefined,
    });
  }
  for (const [collection, ids] of [
    ['absence-definitions', ABSENCE_DEFINITIONS],
    ['shift-definitions', SHIFT_DEFINITIONS],
  ] as const) {
    for (const id of ids) {
      await putResource(db, tenant, collection, {
        body: canonicalResource(collection, {
          id,
          name: { default: `D${id}`, translations: {} },
          code: `C${id}`,
          isEnabled: true,
        }),
        customReferences: undefined,
      });
    }
  }
  return tenant;
}

interface LoggedChange {
  version: number;
  entity_id: number;
  change_type: string;
  data: string;
  absence_date: string | null;
  person_id: number | null;
  previous_absence_date: string | null;
  previous_person_id: number | null;
}

const changesAfter = (tenant: string, version: number): Promise<LoggedChange[]> =>
  db.query<LoggedChange>(
    `select version, entity_id, change_type, data::text as data, to_char(absence_date, 'YYYY-MM-DD') as absence_date,
            person_id, to_char(previous_absence_date, 'YYYY-MM-DD') as previous_absence_date, previous_person_id
       from changes where tenant_id = $1 and version > $2 order by version`,
    [tenant, version],
  );

const lastVersion = (batch: { lastChangeVersion: string | null }, before: number): number =>
  batch.lastChangeVersion === null ? before : parseChangeVersion(batch.lastChangeVersion)!;

const idLink = (ids: number[]) => fc.constantFrom(...ids).map((id) => ({ id }));

/** A valid absence with links by id; its request.id carries its person's id. */
const absenceArbitrary = (id: number): fc.Arbitrary<AbsenceBody> =>
  fc
    .record({
      person: idLink(PEOPLE),
      resultingAbsenceDefinition: idLink(ABSENCE_DEFINITIONS),
      requestedAbsenceDefinition: fc.option(idLink(ABSENCE_DEFINITIONS)),
      shiftDefinition: fc.option(idLink(SHIFT_DEFINITIONS)),
      date: fc
        .date({
          min: new Date('0001-01-01T00:00:00Z'),
          max: new Date('9999-12-31T00:00:00Z'),
          noInvalidDate: true,
        })
        .map((d) => d.toISOString().slice(0, 10)),
      startTimeInMinutes: fc.integer({ min: 0, max: 1440 }),
      durationInMinutes: fc.integer({ min: 0, max: 1440 }),
      calculatedDurationInMinutes: fc.integer({ min: 0, max: 1440 }),
      dayPart: fc.constantFrom(...DAY_PARTS),
      request: fc.option(fc.constantFrom('acme', 'a.b_c-d', 'X9')),
      status: fc.constantFrom(...ABSENCE_STATUSES),
      approvalLevel: fc.constantFrom(...APPROVAL_LEVELS),
      isLocked: fc.boolean(),
      periodType: fc.constantFrom(...PERIOD_TYPES),
    })
    .map(({ request, ...a }) =>
      canonicalAbsence({
        id,
        ...a,
        request: request === null ? null : { id: `${request}-${a.person.id}-${id}` },
      }),
    );

/** A batch of absences with distinct ids from a small pool, so later batches update earlier ones. */
const batchArbitrary = fc
  .uniqueArray(fc.constantFrom(1, 2, 3, MAX_ID), { minLength: 1, maxLength: 4 })
  .chain((ids) => fc.tuple(...ids.map(absenceArbitrary)));

describe('the absence write path', () => {
  test('records each changed upsert as JSON.stringify of the absence with its changeVersion first', async () => {
    const tenant = await tenantWithLinks();
    const stored = new Map<number, string>();
    let version = await currentVersion(db, tenant);
    await fc.assert(
      fc.asyncProperty(batchArbitrary, async (bodies) => {
        const result = await applyAbsenceBatch(db, tenant, bodies, []);
        const changed = bodies.filter((b) => stored.get(b.id) !== JSON.stringify(b));
        assert.equal(result.upserted, changed.length);
        assert.equal(result.unchanged, bodies.length - changed.length);
        const logged = await changesAfter(tenant, version);
        assert.deepEqual(
          logged.map((c) => c.data),
          changed.map((b, i) => JSON.stringify(withChangeVersion(version + 1 + i, b))),
        );
        assert.deepEqual(
          logged.map((c) => [c.entity_id, c.change_type, c.absence_date, c.person_id]),
          changed.map((b) => [b.id, 'InsertOrUpdate', b.date, b.person.id]),
        );
        for (const b of bodies) stored.set(b.id, JSON.stringify(b));
        version = lastVersion(result, version);
      }),
      // The store keeps what each run wrote, so a failure is reported as found, not shrunk.
      { numRuns: 40, endOnFailure: true },
    );
  });

  test('a moved absence records where it was, a delete its stored date and person, after the upserts', async () => {
    const tenant = await tenantWithLinks();
    const a = (id: number, date: string, person: number): AbsenceDraft =>
      draft({ id, date, person: { id: person } });
    const first = await applyAbsenceBatch(
      db,
      tenant,
      [a(1, '2026-01-01', 1), a(2, '2026-01-02', 1), a(3, '2026-01-03', 42), a(4, '2026-01-04', 42)],
      [],
    );
    const before = lastVersion(first, 0);
    const second = await applyAbsenceBatch(
      db,
      tenant,
      [a(2, '2026-01-02', 1), a(1, '2026-02-01', 42), { ...a(4, '2026-01-04', 42), isLocked: true }],
      [999, 3],
    );
    assert.deepEqual(second, {
      upserted: 2,
      unchanged: 1,
      deleted: 1,
      lastChangeVersion: withChangeVersion(before + 3, {}).changeVersion,
    });
    const logged = await changesAfter(tenant, before);
    assert.deepEqual(
      logged.map((c) => [
        c.version,
        c.entity_id,
        c.change_type,
        c.absence_date,
        c.person_id,
        c.previous_absence_date,
        c.previous_person_id,
      ]),
      [
        [before + 1, 1, 'InsertOrUpdate', '2026-02-01', 42, '2026-01-01', 1],
        [before + 2, 4, 'InsertOrUpdate', '2026-01-04', 42, null, null],
        [before + 3, 3, 'Delete', '2026-01-03', 42, null, null],
      ],
    );
    assert.equal(logged[2]!.data, JSON.stringify(withChangeVersion(before + 3, { id: 3 })));
  });

  test('relinking a stored absence to a person that does not exist is UnknownLink, and nothing is written', async () => {
    const tenant = await tenantWithLinks();
    const stored = draft({ id: 5 });
    await applyAbsenceBatch(db, tenant, [stored], []);
    const before = await currentVersion(db, tenant);
    await assert.rejects(
      applyAbsenceBatch(db, tenant, [{ ...stored, person: { id: 77 } }], []),
      (error: AppError) => {
        assert.equal(error.code, 'UnknownLink');
        assert.deepEqual(error.reasons, ['upsert.0.person: no person has id 77 in this tenant.']);
        return true;
      },
    );
    assert.equal(await currentVersion(db, tenant), before);
    assert.deepEqual(await changesAfter(tenant, before), []);
  });

  test("accepts every value of the domain's enumerations (the table checks them too)", async () => {
    const tenant = await tenantWithLinks();
    const count = Math.max(
      ABSENCE_STATUSES.length,
      APPROVAL_LEVELS.length,
      DAY_PARTS.length,
      PERIOD_TYPES.length,
    );
    const bodies = Array.from({ length: count }, (_, i) =>
      canonicalAbsence(
        draft({
          id: 100 + i,
          dayPart: DAY_PARTS[i % DAY_PARTS.length]!,
          status: ABSENCE_STATUSES[i % ABSENCE_STATUSES.length]!,
          approvalLevel: APPROVAL_LEVELS[i % APPROVAL_LEVELS.length]!,
          periodType: PERIOD_TYPES[i % PERIOD_TYPES.length]!,
        }),
      ),
    );
    const before = await currentVersion(db, tenant);
    assert.equal((await applyAbsenceBatch(db, tenant, bodies, [])).upserted, count);
    assert.deepEqual(
      (await changesAfter(tenant, before)).map((c) => c.data),
      bodies.map((b, i) => JSON.stringify(withChangeVersion(before + 1 + i, b))),
    );
  });

  test('a value the table does not accept fails the whole write, so no change data is built from it', async () => {
    const tenant = await tenantWithLinks();
    const body = canonicalAbsence(
      draft({ id: 200, dayPart: 'First', status: 'Manual","isLocked":true,"x":"' as AbsenceBody['status'] }),
    );
    const before = await currentVersion(db, tenant);
    await assert.rejects(writeAbsences(db, tenant, encodeAbsenceWrites([body], [])), /absences_status/);
    assert.equal(await currentVersion(db, tenant), before);
    assert.deepEqual(await changesAfter(tenant, before), []);
  });
});

describe('several batches of a tenant in one statement', () => {
  /** Absences 1-5 as every tenant of these tests starts with. */
  const STORED = [1, 2, 3, 4, 5].map((id) => canonicalAbsence(draft({ id })));

  async function tenantWithAbsences(): Promise<string> {
    const tenant = await tenantWithLinks();
    await writeAbsences(db, tenant, encodeAbsenceWrites(STORED, []));
    return tenant;
  }

  /** Applies `batches` to two like tenants, one call per batch and all in one; returns both outcomes. */
  async function bothWays(batches: () => AbsenceWriteBatch[]) {
    const alone = await tenantWithAbsences();
    const together = await tenantWithAbsences();
    const before = await currentVersion(db, together);
    assert.equal(await currentVersion(db, alone), before);
    const one: AbsenceWriteResult[] = [];
    for (const batch of batches()) one.push(await writeAbsences(db, alone, batch));
    const all = await writeAbsenceBatches(db, together, batches());
    return {
      before,
      one,
      all,
      aloneLog: await changesAfter(alone, before),
      log: await changesAfter(together, before),
      aloneVersion: await currentVersion(db, alone),
      version: await currentVersion(db, together),
    };
  }

  test('writes each batch as a call of its own would, in the order given, with consecutive versions each', async () => {
    const { before, one, all, aloneLog, log, aloneVersion, version } = await bothWays(() => [
      encodeAbsenceWrites([canonicalAbsence(draft({ id: 10 })), canonicalAbsence(draft({ id: 11 }))], []),
      encodeAbsenceWrites(
        [canonicalAbsence(draft({ id: 1, durationInMinutes: 30, person: { id: 42 } }))],
        [2],
      ),
      encodeAbsenceWrites([canonicalAbsence(draft({ id: 12, person: { id: 999 } }))], [3]),
      encodeAbsenceWrites([STORED[3]!], []),
      encodeAbsenceWrites([], [5, 404]),
    ]);

    assert.deepEqual(all, one);
    // The third batch links to nothing: it reports the link and records nothing (its counts are not read).
    assert.deepEqual(
      all.map((r, i) => [
        i === 2 ? '-' : r.upserted,
        i === 2 ? '-' : r.deleted,
        r.lastVersion,
        r.unknownLinks,
      ]),
      [
        [2, 0, before + 2, []],
        [1, 1, before + 4, []],
        ['-', '-', null, ['people:999']],
        [0, 0, null, []],
        [0, 1, before + 5, []],
      ],
    );
    // Absence 4 keeps the version it was stored with, the last but one before the group.
    assert.equal(all[3]!.unchangedVersion, before - 1);
    assert.deepEqual(log, aloneLog);
    assert.deepEqual(
      log.map((c) => [c.version, c.entity_id, c.change_type, c.previous_person_id]),
      [
        [before + 1, 10, 'InsertOrUpdate', null],
        [before + 2, 11, 'InsertOrUpdate', null],
        [before + 3, 1, 'InsertOrUpdate', 1],
        [before + 4, 2, 'Delete', null],
        [before + 5, 5, 'Delete', null],
      ],
    );
    assert.equal(version, before + 5);
    assert.equal(aloneVersion, version);
  });

  test('any group of batches without a shared absence: the same answers and the same log as one call each', async () => {
    // Ids 1-5 are stored, 6-9 are not; each id goes to at most one batch, as an upsert (the stored absence, a
    // new variant of it, or one linking to nothing) or a delete.
    const item = fc.record({
      id: fc.integer({ min: 1, max: 9 }),
      what: fc.constantFrom('same', 'changed', 'moved', 'unknown-link', 'delete'),
      batch: fc.integer({ min: 0, max: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(item, { selector: (i) => i.id, minLength: 1, maxLength: 9 }),
        async (items) => {
          const batches = () =>
            [0, 1, 2, 3]
              .map((b) => items.filter((i) => i.batch === b))
              .filter((inBatch) => inBatch.length > 0)
              .map((inBatch) =>
                encodeAbsenceWrites(
                  inBatch
                    .filter((i) => i.what !== 'delete')
                    .map((i) =>
                      canonicalAbsence(
                        i.what === 'same'
                          ? draft({ id: i.id })
                          : i.what === 'changed'
                            ? draft({ id: i.id, durationInMinutes: 15 })
                            : i.what === 'moved'
                              ? draft({ id: i.id, date: '2026-04-01', person: { id: 42 } })
                              : draft({ id: i.id, shiftDefinition: { id: 77 } }),
                      ),
                    ),
                  inBatch.filter((i) => i.what === 'delete').map((i) => i.id),
                ),
              );
          const { one, all, aloneLog, log, aloneVersion, version } = await bothWays(batches);
          assert.deepEqual(all, one);
          assert.deepEqual(log, aloneLog);
          assert.equal(version, aloneVersion);
        },
      ),
      { numRuns: 25 },
    );
  });

  /** How many transactions wrote the tenant's changes after `version`. */
  const transactionsAfter = async (tenant: string, version: number): Promise<number> =>
    (
      await db.query<{ n: number }>(
        'select count(distinct xmin::text)::int as n from changes where tenant_id = $1 and version > $2',
        [tenant, version],
      )
    )[0]!.n;

  test('writes queued while two wait for the tenant lock go as one statement, in arrival order', async () => {
    const tenant = await tenantWithLinks();
    const before = await currentVersion(db, tenant);
    const release = await holdTenantLock(db, tenant);
    const writes = Array.from({ length: 10 }, (_, i) =>
      queueAbsenceWrite(db, tenant, encodeAbsenceWrites([canonicalAbsence(draft({ id: 300 + i }))], [])),
    );
    await release();
    const results = await Promise.all(writes);

    assert.deepEqual(
      results.map((r) => [r.upserted, r.created]),
      results.map(() => [1, 1]),
    );
    const log = await changesAfter(tenant, before);
    // Each write's version is the one its absence was recorded with.
    for (const [i, r] of results.entries()) {
      assert.equal(log.find((c) => c.version === r.lastVersion)?.entity_id, 300 + i);
    }
    // The two that waited in the database went alone; the eight behind them together, in the order queued.
    assert.equal(await transactionsAfter(tenant, before), 3);
    assert.deepEqual(
      log.slice(2).map((c) => c.entity_id),
      [302, 303, 304, 305, 306, 307, 308, 309],
    );
  });

  test('a queued write of an absence already in the group starts the next group', async () => {
    const tenant = await tenantWithLinks();
    const before = await currentVersion(db, tenant);
    const release = await holdTenantLock(db, tenant);
    const ids = [500, 501, 502, 503, 504, 503, 505];
    const writes = ids.map((id, i) =>
      queueAbsenceWrite(
        db,
        tenant,
        encodeAbsenceWrites([canonicalAbsence(draft({ id, startTimeInMinutes: i }))], []),
      ),
    );
    await release();
    const results = await Promise.all(writes);

    assert.deepEqual(
      results.map((r) => [r.upserted, r.created]),
      [
        [1, 1],
        [1, 1],
        [1, 1],
        [1, 1],
        [1, 1],
        [1, 0],
        [1, 1],
      ],
    );
    // Two alone, then 502-504, then the second write of 503 with 505.
    assert.equal(await transactionsAfter(tenant, before), 4);
    const log = await changesAfter(tenant, before);
    assert.deepEqual(
      log.slice(2).map((c) => c.entity_id),
      [502, 503, 504, 503, 505],
    );
    assert.equal(JSON.parse(log.at(-2)!.data).startTimeInMinutes, 5);
  });

  test('a batch that fails in a group fails alone, and the others are written', async () => {
    const tenant = await tenantWithLinks();
    const before = await currentVersion(db, tenant);
    const release = await holdTenantLock(db, tenant);
    const write = (body: AbsenceBody) => queueAbsenceWrite(db, tenant, encodeAbsenceWrites([body], []));
    const waiting = [
      write(canonicalAbsence(draft({ id: 400 }))),
      write(canonicalAbsence(draft({ id: 401 }))),
    ];
    const good = write(canonicalAbsence(draft({ id: 402 })));
    const bad = write(canonicalAbsence(draft({ id: 403, status: 'Manual","x":"' as AbsenceBody['status'] })));
    const unknown = write(canonicalAbsence(draft({ id: 404, person: { id: 999 } })));
    const alsoGood = write(canonicalAbsence(draft({ id: 405 })));
    await release();

    await Promise.all(waiting);
    assert.equal((await good).upserted, 1);
    await assert.rejects(bad, /absences_status/);
    assert.deepEqual((await unknown).unknownLinks, ['people:999']);
    assert.equal((await alsoGood).upserted, 1);
    assert.deepEqual(
      (await changesAfter(tenant, before)).map((c) => c.entity_id).sort((a, b) => a - b),
      [400, 401, 402, 405],
    );
  });
});
