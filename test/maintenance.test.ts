// Background upkeep (src/maintenance.ts): pruning past TIMEHOOK_CHANGE_RETENTION removes old changes and settled
// deliveries in batches, keeps open deliveries, and runs on one worker at a time (two maintenances on one store
// take turns under the advisory lock); on the embedded store the tables are vacuumed as autovacuum would, so
// pruned space is used again (store/upkeep.ts). PGlite, or a fresh PostgreSQL schema with DATABASE_URL.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startMaintenance } from '../src/maintenance.ts';
import { appendChanges } from '../src/store/changes.ts';
import { migrate } from '../src/store/migrate.ts';
import { ensureTenant } from '../src/store/tenants.ts';
import { upkeepDue } from '../src/store/upkeep.ts';
import { createWebhook } from '../src/store/webhooks.ts';
import { recordFailedDeliveries } from './helpers/deliveries.ts';
import { newTenant, openTestDb, usingPostgres } from './helpers/harness.ts';
import { waitUntil } from './helpers/receiver.ts';

const { db, drop } = await openTestDb();
await migrate(db);
after(async () => {
  await db.close();
  await drop();
});

test('pruning removes old changes and settled deliveries, keeps open ones, one worker at a time', async () => {
  const tenant = newTenant();
  await ensureTenant(db, tenant);
  const webhookId = randomUUID();
  const created = await createWebhook(
    db,
    {
      id: webhookId,
      tenantId: tenant,
      collection: 'absences',
      destinationUrl: 'https://example.com/hook',
      externalReferences: {},
      keyEncrypted: 'v1.sealed',
      createdAt: new Date(),
      validUntil: new Date(Date.now() + 3_600_000),
    },
    1_000,
  );
  assert.ok(created.ok);
  await db.transaction((tx) =>
    appendChanges(
      tx,
      tenant,
      Array.from({ length: 30 }, (_, i) => ({
        collection: 'absences',
        entityId: i,
        changeType: 'InsertOrUpdate' as const,
        data: { id: i },
      })),
    ),
  );
  await recordFailedDeliveries(db, webhookId);
  const ids = (
    await db.query<{ id: number }>('select id from deliveries where webhook_id = $1 order by id', [webhookId])
  ).map((r) => r.id);
  // All but the last five delivered; everything written two days ago.
  await db.query(`update deliveries set status = 'Delivered' where id = any($1::bigint[])`, [
    ids.slice(0, -5),
  ]);
  await db.query(`update changes set committed_at = now() - interval '2 days' where tenant_id = $1`, [
    tenant,
  ]);
  await db.query(`update deliveries set created_at = now() - interval '2 days' where webhook_id = $1`, [
    webhookId,
  ]);

  const config = loadConfig({ TIMEHOOK_CHANGE_RETENTION: '1d' });
  const logger = createLogger('silent');
  const workers = [0, 1].map(() =>
    startMaintenance(db, config, logger, { firstPruneAfterMs: 0, pruneIntervalMs: 50 }),
  );
  try {
    const count = async (sql: string, param: string) => (await db.query<{ n: number }>(sql, [param]))[0]!.n;
    await waitUntil(
      async () =>
        (await count('select count(*)::int as n from changes where tenant_id = $1', tenant)) === 0 &&
        (await count('select count(*)::int as n from deliveries where webhook_id = $1', webhookId)) === 5,
      15_000,
      'old changes and settled deliveries pruned',
    );
    const left = await db.query<{ id: number; status: string }>(
      'select id, status from deliveries where webhook_id = $1 order by id',
      [webhookId],
    );
    assert.deepEqual(
      left.map((r) => [r.id, r.status]),
      ids.slice(-5).map((id) => [id, 'Failed']),
    );
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});

/** Writes `count` changes of about 300 bytes each for a new tenant, committed two days ago. */
async function oldChanges(count: number): Promise<string> {
  const tenant = newTenant();
  await ensureTenant(db, tenant);
  await db.transaction((tx) =>
    appendChanges(
      tx,
      tenant,
      Array.from({ length: count }, (_, i) => ({
        collection: 'absences',
        entityId: i + 1,
        changeType: 'InsertOrUpdate' as const,
        data: { id: i + 1, note: 'x'.repeat(256) },
      })),
    ),
  );
  await db.query(`update changes set committed_at = now() - interval '2 days' where tenant_id = $1`, [
    tenant,
  ]);
  return tenant;
}

interface TableStats {
  vacuums: number;
  analyzes: number;
  dead: number;
  rows: number;
  bytes: number;
}

async function changesTable(): Promise<TableStats> {
  await db.query('select pg_stat_force_next_flush()');
  const rows = await db.query<TableStats>(
    `select s.vacuum_count::int as vacuums, s.analyze_count::int as analyzes, s.n_dead_tup::int as dead,
            c.reltuples::int as rows, pg_relation_size(c.oid)::int as bytes
       from pg_stat_user_tables s join pg_class c on c.oid = s.relid
      where s.schemaname = current_schema() and s.relname = 'changes'`,
  );
  return rows[0]!;
}

test(
  'the embedded store vacuums its tables, so the space of pruned changes is used again',
  { skip: usingPostgres() && 'embedded store only: a PostgreSQL server vacuums its own tables (autovacuum)' },
  async () => {
    const tenant = await oldChanges(3_000);
    // By autovacuum's rules the old row versions that dating the rows back left make the table due; once
    // vacuumed, it is not.
    assert.ok((await upkeepDue(db)).some((step) => step.table === 'changes'));
    await db.exec('vacuum changes');
    assert.ok(!(await upkeepDue(db)).some((step) => step.table === 'changes'));
    const written = await changesTable();

    const config = loadConfig({ TIMEHOOK_CHANGE_RETENTION: '1d' });
    const maintenance = startMaintenance(db, config, createLogger('silent'), {
      firstPruneAfterMs: 0,
      pruneIntervalMs: 50,
      firstUpkeepAfterMs: 0,
      upkeepIntervalMs: 50,
    });
    try {
      await waitUntil(
        async () => {
          const n = await db.query<{ n: number }>(
            'select count(*)::int as n from changes where tenant_id = $1',
            [tenant],
          );
          const now = await changesTable();
          return n[0]!.n === 0 && now.vacuums > written.vacuums && now.dead === 0;
        },
        15_000,
        'the pruned changes vacuumed',
      );
    } finally {
      await maintenance.stop();
    }
    const pruned = await changesTable();
    assert.ok(
      pruned.rows < written.rows,
      `row estimate after the prune: ${pruned.rows} (was ${written.rows})`,
    );

    // As many changes again fit in the space the pruned ones left: the table does not grow. Without the
    // VACUUM it grew by their whole size.
    await oldChanges(3_000);
    const refilled = await changesTable();
    assert.ok(
      refilled.bytes <= written.bytes + 8_192 * 2,
      `changes grew from ${written.bytes} to ${refilled.bytes} bytes`,
    );
  },
);

test(
  'on PostgreSQL the maintenance leaves vacuuming to the server',
  { skip: !usingPostgres() && 'PostgreSQL only' },
  async () => {
    await oldChanges(1_000);
    const before = await changesTable();
    const config = loadConfig({ TIMEHOOK_CHANGE_RETENTION: '1d' });
    const maintenance = startMaintenance(db, config, createLogger('silent'), {
      firstPruneAfterMs: 60_000,
      firstUpkeepAfterMs: 0,
      upkeepIntervalMs: 20,
    });
    // The expiry sweep's first round (1 s) has run: the loop is going.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await maintenance.stop();
    const after = await changesTable();
    assert.equal(after.vacuums, before.vacuums);
    assert.equal(after.analyzes, before.analyzes);
  },
);
