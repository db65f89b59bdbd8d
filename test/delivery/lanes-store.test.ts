// The SQL of delivery engine v2 (src/store/lanes.ts) on a real database (PGlite, or PostgreSQL with
// DATABASE_URL): leases on lanes, reading a lane's changes with the rows they have, writing outcomes (Delivered
// never undone, Abandoned never reopened, failed attempts kept, cursors only raised), abandoning, redelivery,
// partitions, pruning held back by cursors, and the worker census.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { appendChanges, type NewChange } from '../../src/store/changes.ts';
import { findDelivery, listDeliveries, requestRedelivery } from '../../src/store/deliveries.ts';
import {
  abandonWebhook,
  claimLanes,
  laneKey,
  readLaneChanges,
  readEntityOpenRows,
  readLaneOpenHeads,
  readRedeliveries,
  releaseLanes,
  renewLanes,
  writeOutcomes,
  type LaneTarget,
  type OutcomeRow,
} from '../../src/store/lanes.ts';
import { migrate } from '../../src/store/migrate.ts';
import { ensureTenant } from '../../src/store/tenants.ts';
import { createWebhook, deleteWebhook, disableWebhook } from '../../src/store/webhooks.ts';
import { deregisterWorker, heartbeatWorker } from '../../src/store/workers.ts';
import { newTenant, openTestDb } from '../helpers/harness.ts';
import { pruneAllChanges } from '../helpers/prune.ts';

const { db, drop } = await openTestDb();
await migrate(db);
after(async () => {
  await db.close();
  await drop();
});

const HOUR = 3_600_000;

async function newWebhook(tenant: string, partitions = 1): Promise<string> {
  await ensureTenant(db, tenant);
  const id = randomUUID();
  const created = await createWebhook(
    db,
    {
      id,
      tenantId: tenant,
      collection: 'absences',
      destinationUrl: 'https://example.com/hook',
      externalReferences: {},
      keyEncrypted: 'v1.sealed',
      createdAt: new Date(),
      validUntil: new Date(Date.now() + HOUR),
      partitions,
    },
    1_000,
  );
  assert.ok(created.ok);
  return id;
}

const change = (entityId: number, collection = 'absences'): NewChange => ({
  collection,
  entityId,
  changeType: 'InsertOrUpdate',
  data: { id: entityId },
});

const write = (tenant: string, changes: NewChange[]) =>
  db.transaction((tx) => appendChanges(tx, tenant, changes));

/** Claims every free lane for `owner` and returns the ones of `webhookId`. */
async function claim(owner: string, webhookId: string): Promise<LaneTarget[]> {
  const claimed = await claimLanes(db, owner, 60_000, 1_000);
  return claimed.filter((t) => t.webhookId === webhookId);
}

function outcome(webhookId: string, version: number, more: Partial<OutcomeRow> = {}): OutcomeRow {
  return {
    webhookId,
    version,
    seq: 0,
    entityId: 1,
    changeType: 'InsertOrUpdate',
    status: 'Delivered',
    body: `{"v":${version}}`,
    committedAt: Date.now(),
    attemptCount: 1,
    nextAttemptAt: null,
    attempt: { at: Date.now(), durationMs: 3, statusCode: 200, error: null, responseBody: 'ok' },
    ...more,
  };
}

const rowOf = async (webhookId: string, version: number) =>
  (
    await db.query<{ status: string; attempt_count: number; last_status_code: number | null }>(
      'select status, attempt_count, last_status_code from deliveries where webhook_id = $1 and change_version = $2 and seq = 0',
      [webhookId, version],
    )
  )[0];

describe('lane leases', () => {
  test('two owners never hold the same lane; a claim raises the epoch; a released lane is claimed again', async () => {
    const id = await newWebhook(newTenant());
    const [a] = await claim('owner-a', id);
    assert.ok(a);
    assert.deepEqual(await claim('owner-b', id), []);
    assert.deepEqual(await renewLanes(db, 'owner-b', 60_000, [laneKey(id, 0)]), []);
    assert.deepEqual(await renewLanes(db, 'owner-a', 60_000, [laneKey(id, 0)]), [laneKey(id, 0)]);
    await releaseLanes(db, 'owner-a', [laneKey(id, 0)]);
    assert.equal((await claim('owner-b', id)).length, 1);
    const epoch = await db.query<{ epoch: number }>(
      'select epoch from delivery_lanes where webhook_id = $1',
      [id],
    );
    assert.equal(Number(epoch[0]!.epoch), 2);
    await releaseLanes(db, 'owner-b');
  });

  test('an expired lease is claimed by another owner', async () => {
    const id = await newWebhook(newTenant());
    await claimLanes(db, 'short', 1, 1_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await claim('taker', id)).length, 1);
    await releaseLanes(db, 'taker');
    await releaseLanes(db, 'short');
  });

  test('lanes of disabled, deleted and expired webhooks are not claimed', async () => {
    const tenant = newTenant();
    const disabled = await newWebhook(tenant);
    await disableWebhook(db, disabled, 'EndpointGone');
    const deleted = await newWebhook(tenant);
    await deleteWebhook(db, tenant, deleted, new Date());
    const expired = await newWebhook(tenant);
    await db.query(`update webhooks set valid_until = now() - interval '1 second' where id = $1`, [expired]);
    const claimed = await claimLanes(db, 'sweeper', 60_000, 1_000);
    assert.deepEqual(
      claimed.filter((t) => [disabled, deleted, expired].includes(t.webhookId)),
      [],
    );
    await releaseLanes(db, 'sweeper');
  });
});

describe('reading a lane', () => {
  test("reads the collection's changes above the cursor with their rows; through covers the rest", async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    const [lane] = await claim('reader', id);
    assert.ok(lane);
    const versions = await write(tenant, [change(1), change(2, 'people'), change(3), change(4)]);
    await writeOutcomes(db, [outcome(id, versions[0]!)], []);
    const read = await readLaneChanges(db, lane, lane.cursor, 100);
    assert.deepEqual(
      read.changes.map((c) => [c.version, c.entityId, c.row?.status ?? null]),
      [
        [versions[0], 1, 'Delivered'],
        [versions[2], 3, null],
        [versions[3], 4, null],
      ],
    );
    assert.equal(read.through, versions[3]);
    const limited = await readLaneChanges(db, lane, lane.cursor, 2);
    assert.equal(limited.through, versions[2], 'a full read stops at its last change');
    assert.deepEqual((await readLaneChanges(db, lane, versions[3]!, 100)).changes, []);
    await releaseLanes(db, 'reader');
  });

  test('changes committed before the webhook was created are not read', async () => {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    await write(tenant, [change(1)]);
    const id = await newWebhook(tenant);
    const [lane] = await claim('late', id);
    assert.deepEqual((await readLaneChanges(db, lane!, lane!.cursor, 100)).changes, []);
    await releaseLanes(db, 'late');
  });

  test('each partition reads only its own entities (entity id mod partitions)', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant, 3);
    const lanes = await claim('parts', id);
    assert.equal(lanes.length, 3);
    await write(
      tenant,
      [1, 2, 3, 4, 5, 6].map((e) => change(e)),
    );
    for (const lane of lanes) {
      const entities = (await readLaneChanges(db, lane, lane.cursor, 100)).changes.map((c) => c.entityId);
      assert.ok(entities.length === 2 && entities.every((e) => e % 3 === lane.part), `part ${lane.part}`);
    }
    await releaseLanes(db, 'parts');
  });
});

describe('open rows', () => {
  test('a claim reads the first open row of each entity and the redeliveries; the rest per entity, in order', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    const v = await write(tenant, [change(1), change(1), change(1), change(2)]);
    const pending = { status: 'Pending' as const, attempt: null, attemptCount: 0 };
    await writeOutcomes(
      db,
      [
        outcome(id, v[0]!, { status: 'Failed', nextAttemptAt: Date.now() }),
        outcome(id, v[1]!, pending),
        outcome(id, v[2]!, pending),
        outcome(id, v[3]!, { ...pending, entityId: 2 }),
      ],
      [],
    );
    const lane = { webhookId: id, part: 0, partitions: 1 };
    const { heads, redeliveries } = await readLaneOpenHeads(db, lane, 100);
    assert.deepEqual(
      heads.map((r) => [r.entityId, r.version]),
      [
        [1, v[0]],
        [2, v[3]],
      ],
    );
    assert.deepEqual(redeliveries, []);
    assert.deepEqual(
      (await readEntityOpenRows(db, id, 1, v[0]!, 100)).map((r) => r.version),
      [v[1], v[2]],
    );
    assert.deepEqual(
      (await readEntityOpenRows(db, id, 1, v[1]!, 1)).map((r) => r.version),
      [v[2]],
    );
  });
});

describe('writing outcomes', () => {
  test('a failure keeps the body and the attempt; Delivered later is kept, and never undone', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    const [v] = await write(tenant, [change(1)]);
    const failed = outcome(id, v!, {
      status: 'Failed',
      nextAttemptAt: Date.now() + 5_000,
      attempt: { at: Date.now(), durationMs: 4, statusCode: 500, error: null, responseBody: 'down' },
    });
    const ids = await writeOutcomes(db, [failed], []);
    const deliveryId = ids.get(`${id}:${v}:0`)!;
    assert.equal((await rowOf(id, v!))?.status, 'Failed');
    const { heads } = await readLaneOpenHeads(db, { webhookId: id, part: 0, partitions: 1 }, 100);
    assert.equal(heads[0]?.body, failed.body);
    await writeOutcomes(db, [outcome(id, v!, { attemptCount: 2 })], []);
    await writeOutcomes(db, [{ ...failed, attemptCount: 1 }], []);
    const row = await rowOf(id, v!);
    assert.deepEqual([row?.status, row?.attempt_count], ['Delivered', 2]);
    const found = await findDelivery(db, id, deliveryId);
    assert.deepEqual(
      found?.attempts.map((a) => [a.attempt, a.statusCode]),
      [
        [1, 500],
        [2, 200],
      ],
    );
  });

  test('an abandoned event is not reopened by a late failure, but a late acknowledgement is recorded', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    const [a, b] = await write(tenant, [change(1), change(2)]);
    await writeOutcomes(db, [outcome(id, a!, { status: 'Failed', nextAttemptAt: Date.now() })], []);
    await abandonWebhook(db, id, [{ ...outcome(id, b!, { entityId: 2 }), attemptCount: 0 }]);
    assert.equal((await rowOf(id, a!))?.status, 'Abandoned');
    assert.equal((await rowOf(id, b!))?.status, 'Abandoned', 'an event held in memory is logged too');
    await writeOutcomes(
      db,
      [outcome(id, a!, { status: 'Failed', nextAttemptAt: Date.now(), attemptCount: 2 })],
      [],
    );
    assert.equal((await rowOf(id, a!))?.status, 'Abandoned');
    await writeOutcomes(db, [outcome(id, b!, { entityId: 2 })], []);
    assert.equal((await rowOf(id, b!))?.status, 'Delivered');
  });

  test('a cursor is only ever raised', async () => {
    const id = await newWebhook(newTenant());
    const cursor = async () =>
      Number(
        (
          await db.query<{ cursor: number }>('select cursor from delivery_lanes where webhook_id = $1', [id])
        )[0]!.cursor,
      );
    const start = await cursor();
    await writeOutcomes(db, [], [{ webhookId: id, part: 0, cursor: start + 10 }]);
    await writeOutcomes(db, [], [{ webhookId: id, part: 0, cursor: start + 5 }]);
    assert.equal(await cursor(), start + 10);
  });

  test('one event twice in a batch keeps its last outcome', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    const [v] = await write(tenant, [change(1)]);
    await writeOutcomes(
      db,
      [
        outcome(id, v!, { status: 'Failed', nextAttemptAt: Date.now() }),
        outcome(id, v!, { attemptCount: 2 }),
      ],
      [],
    );
    assert.equal((await rowOf(id, v!))?.status, 'Delivered');
  });
});

describe('the delivery log', () => {
  test('a redelivery is a new Pending row of the same change with the next seq, read as open', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    const [v] = await write(tenant, [change(7)]);
    const ids = await writeOutcomes(db, [outcome(id, v!, { entityId: 7 })], []);
    const original = ids.get(`${id}:${v}:0`)!;
    const first = await requestRedelivery(db, tenant, id, original);
    const second = await requestRedelivery(db, tenant, id, original);
    assert.ok(first.ok && second.ok);
    assert.deepEqual([first.delivery.status, first.delivery.redeliveryOf], ['Pending', original]);
    const open = await readRedeliveries(db, { webhookId: id, part: 0, partitions: 1 });
    assert.deepEqual(
      open.map((r) => [r.version, r.seq, r.entityId]),
      [
        [v, 1, 7],
        [v, 2, 7],
      ],
    );
    const log = await listDeliveries(db, id, { limit: 10 });
    assert.deepEqual(
      log.map((d) => d.id),
      [second.delivery.id, first.delivery.id, original],
      'newest first',
    );
    assert.deepEqual(
      (await listDeliveries(db, id, { limit: 10, status: 'Pending', entityId: 7 })).map((d) => d.id),
      [second.delivery.id, first.delivery.id],
    );
  });
});

describe('pruning the change log', () => {
  test('keeps changes above the lowest lane cursor of an enabled webhook', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    const versions = await write(tenant, [change(1), change(2), change(3)]);
    await db.query(`update changes set committed_at = now() - interval '2 days' where tenant_id = $1`, [
      tenant,
    ]);
    await writeOutcomes(db, [], [{ webhookId: id, part: 0, cursor: versions[0]! }]);
    await pruneAllChanges(db, new Date(Date.now() - HOUR), 100);
    const left = await db.query<{ version: number }>(
      'select version from changes where tenant_id = $1 order by version',
      [tenant],
    );
    assert.deepEqual(
      left.map((r) => Number(r.version)),
      versions.slice(1),
    );
  });
});

describe('workers', () => {
  test('a heartbeat counts live workers and the lanes of sendable webhooks', async () => {
    const census = await heartbeatWorker(db, { id: 'w-census', host: 'h', pid: 1 }, 60_000, HOUR);
    assert.ok(census.liveWorkers >= 1);
    const before = census.activeWebhooks;
    await newWebhook(newTenant(), 4);
    const after = await heartbeatWorker(db, { id: 'w-census', host: 'h', pid: 1 }, 60_000, HOUR);
    assert.equal(after.activeWebhooks, before + 4);
    await deregisterWorker(db, 'w-census');
  });
});
