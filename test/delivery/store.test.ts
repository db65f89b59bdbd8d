// The delivery store on a real database (PGlite, or PostgreSQL with DATABASE_URL): leases, the fan-out
// cursor, bookkeeping guards, abandoning and pruning, the delivery log by entity, and worker registration.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { appendChanges, type NewChange } from '../../src/store/changes.ts';
import {
  abandonStoppedDeliveries,
  findDelivery,
  loadEntityDeliveries,
  loadManyEntityDeliveries,
  stopWebhook,
  listDeliveries,
  pruneDeliveries,
  recordAttempts,
  requestRedelivery,
  syncDeliveries,
  syncManyDeliveries,
  type SyncParams,
  type SyncResult,
} from '../../src/store/deliveries.ts';
import {
  claimWebhookLeases,
  leaseKey,
  releaseWebhookLeases,
  renewWebhookLeases,
} from '../../src/store/delivery-leases.ts';
import { EntityLoader } from '../../src/delivery/entity-loader.ts';
import { SyncBatcher } from '../../src/delivery/sync-batcher.ts';
import { migrate } from '../../src/store/migrate.ts';
import { ensureTenant } from '../../src/store/tenants.ts';
import { createWebhook, deleteWebhook } from '../../src/store/webhooks.ts';
import { deregisterWorker, heartbeatWorker } from '../../src/store/workers.ts';
import { delivered, failed } from '../helpers/attempts.ts';
import { newTenant, openTestDb } from '../helpers/harness.ts';
import { pruneAllChanges } from '../helpers/prune.ts';

const { db, drop } = await openTestDb();
await migrate(db);
after(async () => {
  await db.close();
  await drop();
});

const HOUR = 3_600_000;
/** Tests of statements waiting for each other's locks. */
const WAITS_NEED_POSTGRES =
  !process.env.DATABASE_URL && 'PostgreSQL only: the embedded store has one session, so nothing waits';

async function newWebhook(tenant: string, collection = 'absences', partitions = 1): Promise<string> {
  await ensureTenant(db, tenant);
  const id = randomUUID();
  const created = await createWebhook(
    db,
    {
      id,
      tenantId: tenant,
      collection,
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

/** A plain sync of partition 0 of `webhookId` for `owner`: up to 100 changes fanned out, 100 rows loaded from 0. */
const plainSync = (webhookId: string, owner: string, more: Partial<SyncParams> = {}): SyncParams => ({
  webhookId,
  part: 0,
  owner,
  limit: 100,
  plain: true,
  afterId: 0,
  space: 100,
  ...more,
});

const absenceChange = (entityId: number, n = 0): NewChange => ({
  collection: 'absences',
  entityId,
  changeType: 'InsertOrUpdate',
  data: { id: entityId, n },
});

async function write(tenant: string, changes: NewChange[]): Promise<number[]> {
  return db.transaction((tx) => appendChanges(tx, tenant, changes));
}

/** A plain sync of one partition: fans out up to 100 changes and loads up to 100 open deliveries. */
const syncPart = (webhookId: string, part: number, owner: string, low = 0, afterId = 0) =>
  syncDeliveries(db, { webhookId, part, owner, limit: 100, plain: true, afterId, space: 100, low });

describe('leases', () => {
  test('two owners never hold the same webhook; an expired lease is claimed by the other', async () => {
    const tenant = newTenant();
    const ids = [await newWebhook(tenant), await newWebhook(tenant)];
    const [a, b] = await Promise.all([
      claimWebhookLeases(db, 'worker-a', 60_000, 1_000),
      claimWebhookLeases(db, 'worker-b', 60_000, 1_000),
    ]);
    const mine = (claimed: { id: string }[]) => claimed.map((w) => w.id).filter((id) => ids.includes(id));
    assert.equal(mine(a).length + mine(b).length, 2);
    assert.equal(new Set([...mine(a), ...mine(b)]).size, 2, 'a webhook was claimed twice');
    const holder = mine(a).length > 0 ? 'worker-a' : 'worker-b';
    const other = holder === 'worker-a' ? 'worker-b' : 'worker-a';
    const held = holder === 'worker-a' ? mine(a) : mine(b);

    // Renewal keeps them; the other worker cannot claim them meanwhile.
    assert.deepEqual((await renewWebhookLeases(db, holder, held, 60_000)).sort(), [...held].sort());
    assert.deepEqual(mine(await claimWebhookLeases(db, other, 60_000, 1_000)), []);

    // Let the holder's leases lapse (a ttl in the past): the other worker takes them over.
    await renewWebhookLeases(db, holder, held, -1_000);
    assert.deepEqual(mine(await claimWebhookLeases(db, other, 60_000, 1_000)).sort(), [...held].sort());
    assert.deepEqual(await renewWebhookLeases(db, holder, held, 60_000), [], 'the old holder lost them');

    await releaseWebhookLeases(db, other);
    assert.deepEqual(mine(await claimWebhookLeases(db, holder, 60_000, 1_000)).sort(), [...held].sort());
    await releaseWebhookLeases(db, holder);
  });

  test('disabled, deleted and expired webhooks are not claimed', async () => {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    assert.ok(await deleteWebhook(db, tenant, id, new Date()));
    const claimed = await claimWebhookLeases(db, 'worker-x', 60_000, 1_000);
    assert.ok(!claimed.some((w) => w.id === id));
    await releaseWebhookLeases(db, 'worker-x');
  });
});

describe('fan-out', () => {
  for (const plain of [true, false]) {
    test(`moves each change of the collection once, after created_version, and advances the cursor (${plain ? 'one statement' : 'transaction'})`, async () => {
      const tenant = newTenant();
      await ensureTenant(db, tenant);
      await write(tenant, [absenceChange(1)]); // before the webhook: never sent to it
      const id = await newWebhook(tenant);
      await claimWebhookLeases(db, 'fan', 60_000, 1_000);
      await write(tenant, [absenceChange(1, 1), absenceChange(2, 1)]);
      await write(tenant, [
        { collection: 'people', entityId: 9, changeType: 'InsertOrUpdate', data: { id: 9 } },
      ]);
      const versions = await write(tenant, [
        absenceChange(1, 2),
        { ...absenceChange(2, 2), changeType: 'Delete' },
      ]);

      const sync = (owner: string, space: number) =>
        syncDeliveries(db, { webhookId: id, part: 0, owner, limit: 3, plain, afterId: 0, space });
      const first = await sync('fan', 0);
      assert.ok(first.held);
      assert.equal(first.fannedOut, 3);
      assert.equal(first.caughtUp, false);
      assert.deepEqual(first.rows, []);
      // The load runs after the fan-out: it returns the rows made by the same call.
      const second = await sync('fan', 100);
      assert.ok(second.held);
      assert.equal(second.fannedOut, 1);
      assert.equal(second.caughtUp, true);
      const again = await sync('fan', 2);
      assert.ok(again.held && again.fannedOut === 0);
      assert.deepEqual(again.rows, second.rows.slice(0, 2));

      const loaded = await sync('fan', 100);
      assert.ok(loaded.held);
      const open = loaded.rows;
      assert.deepEqual(second.rows, open);
      assert.deepEqual(
        open.map((d) => [d.entityId, d.changeType]),
        [
          [1, 'InsertOrUpdate'],
          [2, 'InsertOrUpdate'],
          [1, 'InsertOrUpdate'],
          [2, 'Delete'],
        ],
      );
      assert.deepEqual(
        open.map((d) => d.id),
        [...open.map((d) => d.id)].sort((x, y) => x - y),
      );
      assert.equal(open.at(-1)!.changeVersion, versions[1]);
      const body = JSON.parse(open[0]!.body) as { changeType: string; data: { id: number; n: number } };
      assert.equal(body.changeType, 'InsertOrUpdate');
      assert.equal(body.data.n, 1);
      assert.equal(
        open[0]!.body.startsWith('{"changeType":"InsertOrUpdate","data":{"changeVersion":"'),
        true,
      );

      // Another owner is refused.
      assert.deepEqual(await sync('someone-else', 100), { held: false });
      await releaseWebhookLeases(db, 'fan');
    });
  }
});

describe('the syncs of many partitions in one statement', () => {
  /** `n` webhooks of one tenant held by `owner`, one more held by someone else; 3 changes written. */
  async function webhooks(owner: string, n: number) {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    const mine: string[] = [];
    for (let i = 0; i < n; i++) mine.push(await newWebhook(tenant));
    await claimWebhookLeases(db, owner, 60_000, 1_000);
    const other = await newWebhook(tenant);
    await claimWebhookLeases(db, `${owner}-other`, 60_000, 1_000);
    const versions = await write(tenant, [absenceChange(1), absenceChange(2), absenceChange(1, 1)]);
    const plain = (webhookId: string, limit = 100, space = 100): SyncParams =>
      plainSync(webhookId, owner, { limit, space });
    const release = async () => {
      await releaseWebhookLeases(db, owner);
      await releaseWebhookLeases(db, `${owner}-other`);
    };
    return { mine, other, versions, plain, release };
  }

  test('each request gets what its own sync would, in request order; others are refused', async () => {
    const { mine, other, versions, plain, release } = await webhooks('many', 2);
    const [a, b] = mine as [string, string];
    const results = await syncManyDeliveries(db, [
      plain(b, 1, 0),
      plain(randomUUID()),
      plain(a),
      plain(other),
    ]);
    assert.equal(results.length, 4);
    const [first, ghost, second, notHeld] = results;
    assert.ok(first?.held && second?.held);
    assert.deepEqual([first.target.id, first.fannedOut, first.caughtUp, first.rows], [b, 1, false, []]);
    assert.deepEqual(ghost, { held: false }, 'a webhook that does not exist');
    assert.deepEqual(notHeld, { held: false }, "another worker's lease");
    assert.deepEqual([second.target.id, second.fannedOut, second.caughtUp], [a, 3, true]);
    assert.deepEqual(
      second.rows.map((r) => [r.entityId, r.changeVersion]),
      [
        [1, versions[0]],
        [2, versions[1]],
        [1, versions[2]],
      ],
    );
    // What the call moved and loaded is what a sync of its own then finds.
    const again = await syncDeliveries(db, plain(a));
    assert.ok(again.held);
    assert.equal(again.fannedOut, 0);
    assert.deepEqual(again.rows, second.rows);
    const rest = await syncDeliveries(db, plain(b));
    assert.ok(rest.held);
    assert.equal(rest.fannedOut, 2, "the first call moved one of b's three changes");
    assert.equal(rest.rows.length, 3);
    await release();
  });

  test('two partitions of one webhook in one call: each gets what its own sync would, in partition order', async () => {
    const tenant = newTenant();
    const owner = 'many-parts';
    const id = await newWebhook(tenant, 'absences', 2);
    await claimWebhookLeases(db, owner, 60_000, 1_000);
    // Entities 1–6: the odd ones belong to partition 1, the even ones to partition 0.
    const versions = await write(
      tenant,
      [1, 2, 3, 4, 5, 6].map((e) => absenceChange(e)),
    );
    const part = (p: number, limit: number): SyncParams => plainSync(id, owner, { part: p, limit });
    const rows = (r: SyncResult) => (r.held ? r.rows.map((d) => [d.entityId, d.changeVersion]) : []);
    // Requests out of order: the statement runs them in partition order.
    const [one, zero] = await syncManyDeliveries(db, [part(1, 5), part(0, 4)]);
    assert.ok(zero?.held && one?.held);
    // Partition 0's sync moves its limit of 4 changes (entities 1–4) and loads its own of them; partition 1's
    // moves the 2 left and loads its own of all six.
    assert.deepEqual([zero.fannedOut, zero.caughtUp], [4, false]);
    assert.deepEqual(
      rows(zero),
      [2, 4].map((e) => [e, versions[e - 1]]),
    );
    assert.deepEqual([one.fannedOut, one.caughtUp], [2, true]);
    assert.deepEqual(
      rows(one),
      [1, 3, 5].map((e) => [e, versions[e - 1]]),
    );
    // Nothing is moved twice, and partition 0's next load finds entity 6.
    const again = await syncDeliveries(db, { ...part(0, 100), afterId: zero.rows.at(-1)!.id });
    assert.equal(again.held && again.fannedOut, 0);
    assert.deepEqual(rows(again), [[6, versions[5]]]);
    await releaseWebhookLeases(db, owner);
  });

  test('the batcher sends the plain syncs of one turn in two calls; a failing one fails alone', async () => {
    const { mine, plain, release } = await webhooks('batcher', 4);
    const calls: string[] = [];
    const batcher = new SyncBatcher({
      sync: (p) => {
        calls.push('one');
        return syncDeliveries(db, p);
      },
      syncMany: (ps) => {
        calls.push(`many:${ps.length}`);
        return syncManyDeliveries(db, ps);
      },
    });
    const results = await Promise.all(mine.map((id) => batcher.sync(plain(id))));
    assert.deepEqual(calls, ['many:2', 'many:2'], 'two statements side by side, two syncs each');
    assert.deepEqual(
      results.map((r) => r.held && [r.target.id, r.rows.length]),
      mine.map((id) => [id, 3]),
    );

    // A webhook id the store cannot even parse fails its batched call; the others of that call are synced
    // again one by one, and only the bad one reports the failure.
    calls.length = 0;
    const settled = await Promise.allSettled([
      batcher.sync(plain(mine[0]!)),
      batcher.sync(plain('not-a-uuid')),
      batcher.sync(plain(mine[1]!)),
      batcher.sync(plain(mine[2]!)),
    ]);
    assert.deepEqual(calls.sort(), ['many:2', 'many:2', 'one', 'one']);
    assert.deepEqual(
      settled.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    // A sync that is not plain (its webhook may want externalReferences) runs on its own at once.
    calls.length = 0;
    await batcher.sync({ ...plain(mine[0]!), plain: false });
    assert.deepEqual(calls, ['one']);
    await release();
  });
});

describe('refills of many entities', () => {
  /** A webhook with 12 open deliveries over entities 1–3 (4 each); returns them by entity. */
  async function openByEntity(owner: string) {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    const id = await newWebhook(tenant);
    await claimWebhookLeases(db, owner, 60_000, 1_000);
    await write(
      tenant,
      Array.from({ length: 12 }, (_, i) => absenceChange(1 + (i % 3), i)),
    );
    const synced = await syncDeliveries(db, plainSync(id, owner));
    assert.ok(synced.held);
    await releaseWebhookLeases(db, owner);
    const of = (entity: number) => synced.rows.filter((r) => r.entityId === entity);
    return { id, of, last: synced.rows.at(-1)!.id };
  }

  test('each load gets what its own refill would, in request order', async () => {
    const { id, of, last } = await openByEntity('refills');
    const loads = [
      { webhookId: id, entityId: 2, fromId: of(2)[1]!.id, throughId: last, limit: 2 },
      { webhookId: id, entityId: 1, fromId: 0, throughId: of(1)[2]!.id, limit: 100 },
      { webhookId: id, entityId: 9, fromId: 0, throughId: last, limit: 100 },
      { webhookId: id, entityId: 3, fromId: 0, throughId: last, limit: 100 },
    ];
    const many = await loadManyEntityDeliveries(db, loads);
    assert.deepEqual(many, [of(2).slice(1, 3), of(1).slice(0, 3), [], of(3)]);
    for (const [i, l] of loads.entries()) {
      assert.deepEqual(
        await loadEntityDeliveries(db, l.webhookId, l.entityId, l.fromId, l.throughId, l.limit),
        many[i],
      );
    }
  });

  test('refills asked for while one is in flight go together in the next call', async () => {
    const { id, of, last } = await openByEntity('loader');
    const calls: string[] = [];
    const loader = new EntityLoader({
      loadEntity: (...args) => {
        calls.push('one');
        return loadEntityDeliveries(db, ...args);
      },
      loadEntities: (loads) => {
        calls.push(`many:${loads.length}`);
        return loadManyEntityDeliveries(db, loads);
      },
    });
    const load = (entityId: number) =>
      loader.load({ webhookId: id, entityId, fromId: 0, throughId: last, limit: 100 });
    const first = load(1);
    await Promise.resolve(); // the first call is on its way
    const rest = [load(2), load(3), load(1)];
    assert.deepEqual(await Promise.all([first, ...rest]), [of(1), of(2), of(3), of(1)]);
    assert.deepEqual(calls, ['one', 'many:3']);
  });
});

test(
  'renewing leases locks partitions in (webhook, partition) order, as the batched sync does',
  { skip: WAITS_NEED_POSTGRES },
  async () => {
    const tenant = newTenant();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await newWebhook(tenant));
    await claimWebhookLeases(db, 'order', 60_000, 1_000);
    const [lowest, ...others] = [...ids].sort();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    let lockedLowest!: () => void;
    const lowestTaken = new Promise<void>((resolve) => (lockedLowest = resolve));
    // A batched sync holds the lowest webhook's partition and will want the higher ones next.
    const sync = db.transaction(async (tx) => {
      await tx.query('select 1 from delivery_partitions where webhook_id = $1::uuid for update', [lowest]);
      lockedLowest();
      await done;
      await tx.query(`set local lock_timeout = '2s'`);
      await tx.query('select 1 from delivery_partitions where webhook_id = any($1::uuid[]) for update', [
        others,
      ]);
    });
    await lowestTaken;
    // In whatever order the keys come and the plan visits them, the renewal must wait for the lowest
    // partition before it holds any other: else the sync above waits for it in a circle (lock_timeout).
    const renewal = renewWebhookLeases(db, 'order', [...ids].reverse(), 60_000);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the renewal now waits for the lowest one
    release();
    await sync;
    assert.deepEqual((await renewal).sort(), [...ids].sort());
    await releaseWebhookLeases(db, 'order');
  },
);

for (const batched of [false, true]) {
  test(
    `a sync that waited for the webhook lock loads a delivery committed during the wait${batched ? ' (batched, beside another webhook)' : ''}`,
    { skip: WAITS_NEED_POSTGRES },
    async () => {
      const owner = batched ? 'race-many' : 'race';
      const tenant = newTenant();
      const id = await newWebhook(tenant);
      // The batched statement also syncs another webhook of the tenant (its row locked before or after this one).
      const bystander = batched ? await newWebhook(tenant) : undefined;
      await claimWebhookLeases(db, owner, 60_000, 1_000);
      const sync = async (params: SyncParams) =>
        bystander === undefined
          ? syncDeliveries(db, params)
          : (await syncManyDeliveries(db, [params, { ...params, webhookId: bystander, afterId: 0 }]))[0]!;
      await write(tenant, [absenceChange(1)]);
      const first = await sync(plainSync(id, owner));
      assert.ok(first.held && first.rows.length === 1);
      await write(tenant, [absenceChange(2)]);

      // A redelivery holds the webhook's lock while the sync starts (as requestRedelivery does).
      let commit!: () => void;
      const held = new Promise<void>((resolve) => (commit = resolve));
      let locked!: () => void;
      const lockTaken = new Promise<void>((resolve) => (locked = resolve));
      const redelivery = db.transaction(async (tx) => {
        await tx.query('select 1 from webhooks where id = $1::uuid for update', [id]);
        const rows = await tx.query<{ id: number }>(
          `insert into deliveries (webhook_id, change_version, change_type, entity_id, body, committed_at, redelivery_of)
         select webhook_id, change_version, change_type, entity_id, body, now(), id from deliveries
          where id = $1::bigint returning id`,
          [first.rows[0]!.id],
        );
        locked();
        await held;
        return rows[0]!.id;
      });
      await lockTaken;
      const syncing = sync(plainSync(id, owner, { afterId: first.rows[0]!.id }));
      await new Promise((resolve) => setTimeout(resolve, 100)); // the sync is now waiting for the lock
      commit();
      const redeliveredId = await redelivery;
      const second = await syncing;
      assert.ok(second.held);
      assert.equal(second.fannedOut, 1);
      // The redelivery's id is below the new delivery's; a load from the sync's start snapshot would miss it.
      assert.deepEqual(
        second.rows.map((r) => [r.changeVersion, r.id > redeliveredId]),
        [
          [first.rows[0]!.changeVersion, false],
          [second.rows[1]!.changeVersion, true],
        ],
      );
      assert.equal(second.rows[0]!.id, redeliveredId);
      await releaseWebhookLeases(db, owner);
    },
  );
}

describe('bookkeeping', () => {
  async function openDeliveries(n: number) {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    const id = await newWebhook(tenant);
    await claimWebhookLeases(db, 'bk', 60_000, 1_000);
    await write(
      tenant,
      Array.from({ length: n }, (_, i) => absenceChange(i + 1)),
    );
    const synced = await syncDeliveries(db, plainSync(id, 'bk'));
    assert.ok(synced.held);
    await releaseWebhookLeases(db, 'bk');
    return { tenant, id, open: synced.rows };
  }

  test('records attempts in one batch: failed ones in the log, the successful one in the delivery', async () => {
    const { id, open } = await openDeliveries(2);
    const [a, b] = open as [(typeof open)[0], (typeof open)[0]];
    await recordAttempts(db, [failed(a.id, 1), delivered(b.id, 1), delivered(a.id, 2)]);
    const detailA = await findDelivery(db, id, a.id);
    assert.equal(detailA?.status, 'Delivered');
    assert.equal(detailA?.attemptCount, 2);
    assert.deepEqual(
      detailA?.attempts.map((x) => [x.attempt, x.statusCode, x.responseBody]),
      [
        [1, 500, 'boom'],
        [2, 200, 'ok'],
      ],
    );
    const detailB = await findDelivery(db, id, b.id);
    assert.deepEqual(
      detailB?.attempts.map((x) => [x.attempt, x.statusCode]),
      [[1, 200]],
    );
    assert.ok(detailB?.deliveredAt);
    assert.equal(detailB?.nextAttemptAt, null);
  });

  test('Delivered is never undone by a later Failed record, and is recorded over Abandoned', async () => {
    const { tenant, id, open } = await openDeliveries(2);
    const [a, b] = open as [(typeof open)[0], (typeof open)[0]];
    await recordAttempts(db, [delivered(a.id)]);
    await recordAttempts(db, [failed(a.id, 2)]);
    assert.equal((await findDelivery(db, id, a.id))?.status, 'Delivered');

    assert.ok(await deleteWebhook(db, tenant, id, new Date()));
    assert.ok((await abandonStoppedDeliveries(db, 1_000)) >= 1);
    assert.equal((await findDelivery(db, id, b.id))?.status, 'Abandoned');
    await recordAttempts(db, [failed(b.id)]);
    assert.equal((await findDelivery(db, id, b.id))?.status, 'Abandoned', 'a failure reopened it');
    await recordAttempts(db, [delivered(b.id)]);
    assert.equal((await findDelivery(db, id, b.id))?.status, 'Delivered');
  });

  test('a redelivery is a new Pending delivery after the others; pruning keeps open deliveries', async () => {
    const { tenant, id, open } = await openDeliveries(3);
    await recordAttempts(db, [delivered(open[0]!.id), delivered(open[1]!.id)]);
    const redelivery = await requestRedelivery(db, tenant, id, open[0]!.id);
    assert.ok(redelivery.ok);
    assert.equal(redelivery.delivery.status, 'Pending');
    assert.equal(redelivery.delivery.redeliveryOf, open[0]!.id);
    assert.ok(redelivery.delivery.id > open[2]!.id);
    assert.deepEqual(await requestRedelivery(db, newTenant(), id, open[0]!.id), {
      ok: false,
      reason: 'webhook-not-found',
    });

    let pruned = 0;
    for (let next: number | undefined = 0; next !== undefined;) {
      const step = await pruneDeliveries(db, new Date(Date.now() + HOUR), 2, next);
      pruned += step.deleted;
      next = step.next;
    }
    assert.ok(pruned >= 2);
    const left = await listDeliveries(db, id, { limit: 100 });
    assert.deepEqual(left.map((d) => d.status).sort(), ['Pending', 'Pending']);
    assert.equal(await findDelivery(db, id, open[0]!.id), undefined);
  });
});

describe('the low-water mark (open_from)', () => {
  const openFrom = async (id: string): Promise<number> =>
    (
      await db.query<{ open_from: number }>(
        'select open_from from delivery_partitions where webhook_id = $1::uuid and part = 0',
        [id],
      )
    )[0]!.open_from;

  async function webhookWith(n: number, owner: string) {
    const tenant = newTenant();
    const id = await newWebhook(tenant);
    await claimWebhookLeases(db, owner, 60_000, 1_000);
    await write(
      tenant,
      Array.from({ length: n }, (_, i) => absenceChange(i + 1)),
    );
    const sync = (low: number, afterId = 0) => syncPart(id, 0, owner, low, afterId);
    const first = await sync(0);
    assert.ok(first.held);
    return { tenant, id, ids: first.rows.map((r) => r.id), sync };
  }

  test('moves up only over settled deliveries, and a load from scratch starts there', async () => {
    const { id, ids, sync } = await webhookWith(5, 'lw1');
    const [d1, d2, d3, d4, d5] = ids as [number, number, number, number, number];
    await recordAttempts(db, [delivered(d1), delivered(d2), delivered(d4)]);
    // The runner believes everything up to d5 is done (say its records are not written yet): d3 stops it.
    let result = await sync(d5 + 1);
    assert.equal(await openFrom(id), d3);
    assert.ok(result.held);
    assert.deepEqual(
      result.rows.map((r) => r.id),
      [d3, d5],
    );
    // A failed delivery is still open.
    await recordAttempts(db, [failed(d3)]);
    await sync(d5 + 1);
    assert.equal(await openFrom(id), d3);
    await recordAttempts(db, [delivered(d3, 2)]);
    result = await sync(d5 + 1);
    assert.equal(await openFrom(id), d5);
    assert.deepEqual(result.held && result.rows.map((r) => r.id), [d5]);
    // A proposal below the mark never moves it back; 0 leaves it.
    await sync(d2);
    const fromScratch = await sync(0);
    assert.equal(await openFrom(id), d5);
    assert.deepEqual(fromScratch.held && fromScratch.rows.map((r) => r.id), [d5]);
  });

  test('a worker without the lease cannot move it', async () => {
    const { id, ids } = await webhookWith(2, 'lw2');
    await recordAttempts(db, [delivered(ids[0]!), delivered(ids[1]!)]);
    const stranger = await syncDeliveries(db, {
      webhookId: id,
      part: 0,
      owner: 'not-the-owner',
      limit: 100,
      plain: true,
      afterId: 0,
      space: 100,
      low: ids[1]! + 1,
    });
    assert.deepEqual(stranger, { held: false });
    assert.equal(await openFrom(id), 0);
  });

  test('a redelivery of a settled delivery is loaded above the mark', async () => {
    const { tenant, id, ids, sync } = await webhookWith(2, 'lw3');
    await recordAttempts(db, [delivered(ids[0]!), delivered(ids[1]!)]);
    await sync(ids[1]! + 1);
    assert.equal(await openFrom(id), ids[1]! + 1);
    const again = await requestRedelivery(db, tenant, id, ids[0]!);
    assert.ok(again.ok);
    const result = await sync(0);
    assert.deepEqual(result.held && result.rows.map((r) => r.id), [again.delivery.id]);
  });

  test('abandoning moves it past the last delivery; the Abandoned filter still finds them', async () => {
    const { tenant, id, ids } = await webhookWith(3, 'lw4');
    await recordAttempts(db, [delivered(ids[0]!)]);
    await releaseWebhookLeases(db, 'lw4');
    assert.ok(await deleteWebhook(db, tenant, id, new Date()));
    while ((await abandonStoppedDeliveries(db, 1)) > 0);
    assert.equal(await openFrom(id), ids[2]! + 1);
    const abandoned = await listDeliveries(db, id, { status: 'Abandoned', limit: 10 });
    assert.deepEqual(
      abandoned.map((r) => r.id),
      [ids[2]!, ids[1]!],
    );
    assert.deepEqual(await listDeliveries(db, id, { status: 'Pending', limit: 10 }), []);
    // Nothing left to sweep: the next sweep does not pick the webhook again.
    assert.equal(await abandonStoppedDeliveries(db, 1_000), 0);
  });

  test('acknowledgements are HOT updates: no index entry is written for them', async () => {
    const { ids } = await webhookWith(100, 'lw5');
    const hot = await db.transaction(async (tx) => {
      // The counters of this transaction (PGlite's single session may still hold earlier ones: a difference).
      const counters = async () =>
        (
          await tx.query<{ updated: number; hot: number }>(
            `select pg_stat_get_xact_tuples_updated('deliveries'::regclass)::int as updated,
                    pg_stat_get_xact_tuples_hot_updated('deliveries'::regclass)::int as hot`,
          )
        )[0]!;
      const before = await counters();
      await recordAttempts(
        tx,
        ids.map((d) => delivered(d)),
      );
      const after = await counters();
      return { updated: after.updated - before.updated, hot: after.hot - before.hot };
    });
    assert.equal(hot.updated, 100);
    // Each page keeps half its room for the new row versions.
    assert.ok(hot.hot >= 90, `only ${hot.hot} of 100 acknowledgements were HOT`);
  });
});

describe('partitions (migration 000007)', () => {
  const marks = async (id: string): Promise<number[]> =>
    (
      await db.query<{ open_from: number }>(
        'select open_from from delivery_partitions where webhook_id = $1::uuid order by part',
        [id],
      )
    ).map((r) => r.open_from);

  /** A webhook of 3 partitions whose leases went to three owners, and 30 changes over entities 1-10. */
  async function partitioned(prefix: string) {
    const tenant = newTenant();
    const id = await newWebhook(tenant, 'absences', 3);
    const owners = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
    const parts = new Map<string, number>();
    for (const owner of owners) {
      // Claims skip other tests' free webhooks only by luck: keep claiming until this webhook's part comes.
      for (;;) {
        const claimed = await claimWebhookLeases(db, owner, 60_000, 1);
        assert.equal(claimed.length, 1, 'a free partition');
        if (claimed[0]!.id === id) {
          assert.equal(claimed[0]!.partitions, 3);
          parts.set(owner, claimed[0]!.part);
          break;
        }
      }
    }
    assert.deepEqual([...parts.values()].sort(), [0, 1, 2], 'each owner holds one partition');
    await write(
      tenant,
      Array.from({ length: 30 }, (_, i) => absenceChange((i % 10) + 1, i)),
    );
    const sync = (owner: string, low = 0, afterId = 0) =>
      syncPart(id, parts.get(owner)!, owner, low, afterId);
    return { tenant, id, owners, parts, sync };
  }

  test('a webhook gets its partitions; each holder loads only its own, the fan-out runs once', async () => {
    const { id, owners, parts, sync } = await partitioned('pt1');
    const loaded = new Map<string, number[]>();
    let fanned = 0;
    for (const owner of owners) {
      const result = await sync(owner);
      assert.ok(result.held);
      assert.equal(result.target.partitions, 3);
      fanned += result.fannedOut;
      loaded.set(
        owner,
        result.rows.map((r) => r.entityId),
      );
      for (const row of result.rows)
        assert.equal(row.entityId % 3, parts.get(owner), `entity ${row.entityId}`);
    }
    assert.equal(fanned, 30, 'every change became one delivery, whichever holder synced first');
    assert.equal([...loaded.values()].flat().length, 30, 'the partitions together load every delivery');
    // Entity 3 (partition 0) has three events; its holder loads them in order, no other holder sees them.
    const holder0 = owners.find((o) => parts.get(o) === 0)!;
    assert.deepEqual(
      loaded.get(holder0)!.filter((e) => e === 3),
      [3, 3, 3],
    );
    // Another owner's lease does not let a worker sync this partition.
    const intruder = owners.find((o) => parts.get(o) !== 0)!;
    const stolen = await syncDeliveries(db, plainSync(id, intruder));
    assert.equal(stolen.held, false);
    for (const owner of owners) await releaseWebhookLeases(db, owner);
  });

  test('leases are renewed and released per partition, by key', async () => {
    const { id, owners, parts } = await partitioned('pt2');
    const [a, b] = owners as [string, string];
    const keyOf = (owner: string) => leaseKey(id, parts.get(owner)!);
    assert.deepEqual(await renewWebhookLeases(db, a, [keyOf(a), keyOf(b)], 60_000), [keyOf(a)]);
    await releaseWebhookLeases(db, b, [keyOf(b)]);
    const taken = (await claimWebhookLeases(db, a, 60_000, 1_000)).filter((w) => w.id === id);
    assert.deepEqual(
      taken.map((w) => w.part),
      [parts.get(b)],
      'the released partition is free; the held ones are not',
    );
    assert.deepEqual(
      (await renewWebhookLeases(db, a, [keyOf(a), keyOf(b)], 60_000)).sort(),
      [keyOf(a), keyOf(b)].sort(),
    );
    for (const owner of owners) await releaseWebhookLeases(db, owner);
  });

  test('each partition keeps its own low-water mark; disabling settles them all', async () => {
    const { id, owners, parts, sync } = await partitioned('pt3');
    const rows = new Map<string, number[]>();
    for (const owner of owners) {
      const result = await sync(owner);
      assert.ok(result.held);
      rows.set(
        owner,
        result.rows.map((r) => r.id),
      );
    }
    // The holder of partition 1 acknowledges all of its deliveries and proposes a mark past them.
    const holder1 = owners.find((o) => parts.get(o) === 1)!;
    const own = rows.get(holder1)!;
    await recordAttempts(
      db,
      own.map((d) => delivered(d)),
    );
    const last = Math.max(...[...rows.values()].flat());
    await sync(holder1, last + 1, last);
    const after = await marks(id);
    assert.equal(after[1], last + 1, 'partition 1 is settled through the last delivery');
    assert.equal(after[0], 0, 'the other partitions did not move');
    assert.equal(after[2], 0);
    // Its holder's load is now empty; the other partitions still load all of theirs.
    const empty = await sync(holder1);
    assert.deepEqual(empty.held && empty.rows, []);
    const holder2 = owners.find((o) => parts.get(o) === 2)!;
    const still = await sync(holder2);
    assert.deepEqual(still.held && still.rows.map((r) => r.id), rows.get(holder2));
    // The Pending filter of the log starts at the lowest mark: it still lists the other partitions' rows.
    const pending = await listDeliveries(db, id, { status: 'Pending', limit: 100 });
    assert.equal(pending.length, 30 - own.length);

    assert.ok(await stopWebhook(db, id, 'EndpointGone'));
    assert.deepEqual(await marks(id), [last + 1, last + 1, last + 1]);
    assert.equal((await listDeliveries(db, id, { status: 'Abandoned', limit: 100 })).length, 30 - own.length);
    for (const owner of owners) await releaseWebhookLeases(db, owner);
  });

  test('the census counts partitions', async () => {
    await db.query('delete from workers');
    const me = { id: 'census-p', host: 'h', pid: 1 };
    const before = (await heartbeatWorker(db, me, 60_000, 3_600_000)).activeWebhooks;
    await newWebhook(newTenant(), 'absences', 4);
    assert.equal((await heartbeatWorker(db, me, 60_000, 3_600_000)).activeWebhooks, before + 4);
    await deregisterWorker(db, 'census-p');
  });
});

describe('delivery log by entity', () => {
  test('pages through one entity exactly, with and without a status filter', async () => {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    const id = await newWebhook(tenant);
    await claimWebhookLeases(db, 'log', 60_000, 1_000);
    await write(
      tenant,
      Array.from({ length: 12 }, (_, i) => absenceChange(1 + (i % 3), i)),
    );
    await syncDeliveries(db, plainSync(id, 'log', { space: 0 }));
    await releaseWebhookLeases(db, 'log');
    const all = await listDeliveries(db, id, { limit: 100 });
    const expected = all.filter((d) => d.entityId === 2).map((d) => d.id);
    assert.equal(expected.length, 4);

    // Pages of 3 through the entity index, newest first, each exact.
    const seen: number[] = [];
    let beforeId: number | undefined;
    for (;;) {
      const page = await listDeliveries(db, id, { entityId: 2, beforeId, limit: 3 });
      seen.push(...page.map((d) => d.id));
      if (page.length < 3) break;
      beforeId = page.at(-1)!.id;
    }
    assert.deepEqual(seen, expected);
    // With a status filter too.
    await recordAttempts(db, [delivered(expected[1]!)]);
    assert.deepEqual(
      (await listDeliveries(db, id, { entityId: 2, status: 'Delivered', limit: 10 })).map((d) => d.id),
      [expected[1]],
    );
    assert.deepEqual(
      (await listDeliveries(db, id, { entityId: 2, status: 'Pending', limit: 10 })).map((d) => d.id),
      expected.filter((d) => d !== expected[1]),
    );
  });
});

describe('pruning the change log', () => {
  test('keeps changes an enabled webhook has not yet moved into its deliveries', async () => {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    const id = await newWebhook(tenant);
    await write(tenant, [absenceChange(1), absenceChange(2)]);
    await db.query(`update changes set committed_at = now() - interval '40 days' where tenant_id = $1`, [
      tenant,
    ]);
    const cutoff = new Date(Date.now() - 30 * 86_400_000);
    const left = async () =>
      (
        await db.query<{ n: number }>('select count(*)::int as n from changes where tenant_id = $1', [tenant])
      )[0]!.n;
    await pruneAllChanges(db, cutoff, 1_000);
    assert.equal(await left(), 2, 'not fanned out yet: kept');
    await claimWebhookLeases(db, 'prune', 60_000, 1_000);
    await syncDeliveries(db, plainSync(id, 'prune', { space: 0 }));
    await releaseWebhookLeases(db, 'prune');
    await pruneAllChanges(db, cutoff, 1_000);
    assert.equal(await left(), 0, 'in deliveries now: pruned');
  });
});

describe('workers', () => {
  test('a heartbeat registers the worker and counts live workers and sendable webhooks', async () => {
    await db.query('delete from workers');
    const tenant = newTenant();
    await newWebhook(tenant);
    const me = { id: 'census-a', host: 'h', pid: 1 };
    const first = await heartbeatWorker(db, me, 60_000, 3_600_000);
    assert.equal(first.liveWorkers, 1);
    assert.ok(first.activeWebhooks >= 1);
    await heartbeatWorker(db, { id: 'census-b', host: 'h', pid: 2 }, 60_000, 3_600_000);
    assert.equal((await heartbeatWorker(db, me, 60_000, 3_600_000)).liveWorkers, 2);
    // Silent for longer than the TTL: no longer live; for longer than forgetAfter: deleted.
    await db.query(`update workers set last_seen = now() - interval '2 minutes' where id = 'census-b'`);
    assert.equal((await heartbeatWorker(db, me, 60_000, 3_600_000)).liveWorkers, 1);
    assert.equal((await heartbeatWorker(db, me, 60_000, 60_000)).liveWorkers, 1);
    assert.deepEqual(
      (await db.query<{ id: string }>('select id from workers order by id')).map((r) => r.id),
      ['census-a'],
    );
    await deregisterWorker(db, 'census-a');
    assert.deepEqual(await db.query('select id from workers'), []);
  });
});
