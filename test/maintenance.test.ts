// Background upkeep (src/maintenance.ts): pruning past TIMEHOOK_CHANGE_RETENTION removes old changes and settled
// deliveries in batches, keeps open deliveries, and runs on one worker at a time (two maintenances on one store
// take turns under the advisory lock). PGlite, or a fresh PostgreSQL schema with DATABASE_URL.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startMaintenance } from '../src/maintenance.ts';
import { appendChanges } from '../src/store/changes.ts';
import { recordAttempts, syncDeliveries } from '../src/store/deliveries.ts';
import { claimWebhookLeases, releaseWebhookLeases } from '../src/store/delivery-leases.ts';
import { migrate } from '../src/store/migrate.ts';
import { ensureTenant } from '../src/store/tenants.ts';
import { createWebhook } from '../src/store/webhooks.ts';
import { delivered } from './helpers/attempts.ts';
import { newTenant, openTestDb } from './helpers/harness.ts';
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
  await claimWebhookLeases(db, 'm', 60_000, 1_000);
  await syncDeliveries(db, { webhookId, part: 0, owner: 'm', limit: 100, plain: true, afterId: 0, space: 0 });
  await releaseWebhookLeases(db, 'm');
  const ids = (
    await db.query<{ id: number }>('select id from deliveries where webhook_id = $1 order by id', [webhookId])
  ).map((r) => r.id);
  // All but the last five delivered; everything written two days ago.
  await recordAttempts(
    db,
    ids.slice(0, -5).map((deliveryId) => delivered(deliveryId)),
  );
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
      ids.slice(-5).map((id) => [id, 'Pending']),
    );
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});
