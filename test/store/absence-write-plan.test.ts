// The absence write's plan (migration 11): after a few single-absence writes, a write of many absences must
// still find each stored absence through the primary key. PL/pgSQL would otherwise switch to a generic plan
// made on the then tiny table and keep it, and that plan reads every absence of the tenant for each one.
// This file opens its own store: the plan cache belongs to the session, and other tests' writes would have
// filled it already.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  canonicalAbsenceDefinition,
  canonicalPerson,
  type AbsenceBody,
} from '../../src/domain/collections.ts';
import type { Queryable } from '../../src/store/db.ts';
import { encodeAbsenceWrites, writeAbsences } from '../../src/store/absences.ts';
import { putResource } from '../../src/store/ingest.ts';
import { migrate } from '../../src/store/migrate.ts';
import { ensureTenant } from '../../src/store/tenants.ts';
import { absenceDraft } from '../helpers/collections.ts';
import { newTenant, openTestDb } from '../helpers/harness.ts';

const { db, drop } = await openTestDb();
await migrate(db);
after(async () => {
  await db.close();
  await drop();
});

const absence = (id: number, startTimeInMinutes: number): AbsenceBody =>
  absenceDraft({ id, startTimeInMinutes });

/** Index entries of `absences` read so far in the current transaction, per index. */
async function indexReads(tx: Queryable): Promise<Map<string, number>> {
  const rows = await tx.query<{ index: string; reads: string }>(
    `select c.relname as index, pg_stat_get_xact_tuples_returned(c.oid)::text as reads
       from pg_index i join pg_class c on c.oid = i.indexrelid
      where i.indrelid = 'absences'::regclass`,
  );
  return new Map(rows.map((r) => [r.index, Number(r.reads)]));
}

test('a write of 1,000 absences after six single ones reads each stored absence by its key', async () => {
  const tenant = newTenant();
  await ensureTenant(db, tenant);
  await putResource(db, tenant, 'people', {
    body: canonicalPerson({ id: 1, firstName: 'P', lastName: '1' }),
    customReferences: undefined,
  });
  await putResource(db, tenant, 'absence-definitions', {
    body: canonicalAbsenceDefinition({
      id: 7,
      name: { default: 'D7', translations: {} },
      code: 'C7',
      isEnabled: true,
    }),
    customReferences: undefined,
  });
  const many = (start: number): AbsenceBody[] =>
    Array.from({ length: 1_000 }, (_, i) => absence(1_000 + i, start));

  // One session throughout (a transaction holds its connection): the plan cache is the session's.
  await db.transaction(async (tx) => {
    for (let id = 1; id <= 6; id++)
      await writeAbsences(tx, tenant, encodeAbsenceWrites([absence(id, 0)], []));
    assert.equal((await writeAbsences(tx, tenant, encodeAbsenceWrites(many(0), []))).upserted, 1_000);

    const before = await indexReads(tx);
    assert.equal((await writeAbsences(tx, tenant, encodeAbsenceWrites(many(1), []))).upserted, 1_000);
    const after = await indexReads(tx);
    const reads = [...after].map(([index, n]) => [index, n - (before.get(index) ?? 0)] as const);
    const total = reads.reduce((sum, [, n]) => sum + n, 0);
    // By the primary key: one entry per absence. The generic plan read 504,500 here.
    assert.ok(total <= 2_000, `index entries read: ${JSON.stringify(Object.fromEntries(reads))}`);
    assert.equal(Object.fromEntries(reads)['absences_pkey'], 1_000);
  });
});
