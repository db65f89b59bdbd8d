// The dispatcher driven through its seams: an in-memory store and a fake sender, no SQL and no HTTP. Lease
// handling (a lapsed lease claimed again, a lost lease) and per-entity order with concurrency.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  Dispatcher,
  partitionShare,
  type DispatcherOptions,
  type DispatcherStore,
} from '../../src/delivery/dispatcher.ts';
import type { SendRequest, SendResult } from '../../src/delivery/sender.ts';
import { createLogger } from '../../src/log.ts';
import type { AttemptRecord, OpenDelivery, SyncResult } from '../../src/store/deliveries.ts';
import { waitUntil } from '../helpers/receiver.ts';

const WEBHOOK = '11111111-2222-3333-4444-555555555555';
const KEY = `whsec_${randomBytes(32).toString('base64')}`;

/** A fake store's answer to a sync: an active webhook, nothing fanned out, the given rows loaded. */
const syncResult = (webhookId: string, rows: OpenDelivery[]): SyncResult => ({
  held: true,
  target: {
    id: webhookId,
    tenantId: 't',
    collection: 'absences',
    destinationUrl: 'http://receiver.test/hook',
    externalReferences: {},
    keyEncrypted: KEY,
    previousKeyEncrypted: null,
    previousKeyValidUntil: null,
    validUntil: new Date(Date.now() + 3_600_000),
    active: true,
    partitions: 1,
  },
  fannedOut: 0,
  caughtUp: true,
  rows,
});

interface Fake {
  store: DispatcherStore;
  rows: OpenDelivery[];
  records: AttemptRecord[];
  claims: number;
  renewals: number;
  /** What renew answers: the ids it still holds. */
  keepLease: boolean;
}

function fakeStore(entities: number, versionsPerEntity: number): Fake {
  const rows: OpenDelivery[] = [];
  let id = 0;
  for (let v = 0; v < versionsPerEntity; v++) {
    for (let e = 0; e < entities; e++) {
      id++;
      rows.push({
        id,
        entityId: 100 + e,
        changeVersion: id,
        changeType: 'InsertOrUpdate',
        body: JSON.stringify({ changeType: 'InsertOrUpdate', data: { id: 100 + e, v } }),
        attemptCount: 0,
        nextAttemptAt: new Date(0),
        committedAt: new Date(),
      });
    }
  }
  const fake: Fake = {
    rows,
    records: [],
    claims: 0,
    renewals: 0,
    keepLease: true,
    store: {
      claim: async () => {
        fake.claims++;
        return fake.keepLease ? [{ id: WEBHOOK, tenantId: 't', part: 0, partitions: 1 }] : [];
      },
      renew: async (_owner, ids) => {
        fake.renewals++;
        return fake.keepLease ? ids : [];
      },
      release: async () => undefined,
      sync: async ({ webhookId, afterId, space }) => {
        const open = new Set(fake.rows.map((r) => r.id));
        for (const r of fake.records) if (r.result === 'Delivered') open.delete(r.deliveryId);
        const loaded = fake.rows.filter((r) => r.id > afterId && open.has(r.id)).slice(0, space);
        return syncResult(webhookId, loaded);
      },
      loadEntity: async (_w, entityId, fromId, throughId, limit) => {
        const delivered = new Set(
          fake.records.filter((r) => r.result === 'Delivered').map((r) => r.deliveryId),
        );
        return fake.rows
          .filter(
            (r) => r.entityId === entityId && r.id >= fromId && r.id <= throughId && !delivered.has(r.id),
          )
          .slice(0, limit);
      },
      record: async (records) => {
        fake.records.push(...records);
      },
      stopWebhook: async () => true,
      abandonStopped: async () => 0,
    },
  };
  return fake;
}

function fakeSender(answer: (request: SendRequest, index: number) => number, delayMs = 1) {
  const sent: { request: SendRequest; at: number; done: number | undefined; status: number }[] = [];
  const send = async (request: SendRequest): Promise<SendResult> => {
    const entry = { request, at: Date.now(), done: undefined as number | undefined, status: 0 };
    sent.push(entry);
    entry.status = answer(request, sent.length - 1);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    entry.done = Date.now();
    return {
      statusCode: entry.status,
      retryAfter: undefined,
      error: undefined,
      durationMs: delayMs,
      responseBody: '',
    };
  };
  return { sent, send };
}

function dispatcher(
  fake: Fake,
  send: (r: SendRequest) => Promise<SendResult>,
  leaseTtlMs = 30_000,
  refillBatch = 2,
  retryScheduleMs: number[] = Array(20).fill(5),
) {
  return new Dispatcher({
    store: fake.store,
    send,
    decryptKey: (sealed) => sealed,
    logger: createLogger('silent'),
    observer: { attempt: () => undefined },
    options: {
      retryScheduleMs,
      maxInFlightPerWebhook: 4,
      leaseTtlMs,
      userAgent: 'Timehook/test',
      window: 10,
      refillBatch,
    },
    jitter: () => 0,
  });
}

/** The most attempts that were in flight at once. */
function peakInFlight(sent: { at: number; done: number | undefined }[]): number {
  let open = 0;
  let peak = 0;
  for (const ev of sent
    .flatMap((s) => [
      { t: s.at, d: 1 },
      { t: s.done!, d: -1 },
    ])
    .sort((a, b) => a.t - b.t || a.d - b.d)) {
    peak = Math.max(peak, (open += ev.d));
  }
  return peak;
}

const entityOf = (r: SendRequest) =>
  (JSON.parse(r.body.toString()) as { data: { id: number; v: number } }).data;

describe('Dispatcher', () => {
  test('sends every open delivery once, per entity in order, several entities at a time', async () => {
    const fake = fakeStore(6, 5);
    // Every third attempt fails once: retries interleave with fresh events.
    const { sent, send } = fakeSender((_r, i) => (i % 3 === 2 ? 500 : 200));
    const d = dispatcher(fake, send);
    await d.start();
    try {
      await waitUntil(() => sent.filter((s) => s.status === 200).length === 30, 10_000, 'all delivered');
      const delivered = sent.filter((s) => s.status === 200).map((s) => entityOf(s.request));
      assert.equal(new Set(delivered.map((e) => `${e.id}:${e.v}`)).size, 30);
      for (let e = 100; e < 106; e++) {
        const versions = sent.filter((s) => entityOf(s.request).id === e);
        for (let i = 1; i < versions.length; i++) {
          const previous = versions[i - 1]!;
          assert.ok(entityOf(versions[i]!.request).v >= entityOf(previous.request).v, 'versions in order');
          assert.ok(previous.done! <= versions[i]!.at, 'sent only after the previous answer');
        }
      }
      const peak = peakInFlight(sent);
      assert.ok(peak > 1 && peak <= 4, `peak ${peak}`);
    } finally {
      await d.stop();
    }
  });

  test("a webhook's partitions share its in-flight limit (SPEC §3: bounded per webhook)", async () => {
    const fake = fakeStore(12, 3);
    // This worker holds both partitions of the webhook; each loads only its own entities (id mod 2).
    fake.store = {
      ...fake.store,
      claim: async () => [0, 1].map((part) => ({ id: WEBHOOK, tenantId: 't', part, partitions: 2 })),
      sync: async ({ webhookId, part, afterId, space }) => {
        const delivered = new Set(
          fake.records.filter((r) => r.result === 'Delivered').map((r) => r.deliveryId),
        );
        const rows = fake.rows
          .filter((r) => r.id > afterId && r.entityId % 2 === part && !delivered.has(r.id))
          .slice(0, space);
        const result = syncResult(webhookId, rows);
        return result.held ? { ...result, target: { ...result.target, partitions: 2 } } : result;
      },
    };
    const { sent, send } = fakeSender(() => 200, 5);
    const d = dispatcher(fake, send);
    await d.start();
    try {
      await waitUntil(() => sent.length === 36, 10_000, 'all delivered');
      assert.deepEqual(d.webhookIds.sort(), [WEBHOOK, `${WEBHOOK}#1`]);
      const peak = peakInFlight(sent);
      // Each partition alone would keep 4 in flight (6 ready entities each): together they stay at 4.
      assert.ok(peak > 1 && peak <= 4, `peak ${peak}`);
    } finally {
      await d.stop();
    }
  });

  test('entities waiting for a retry beyond a window hold no rows; their heads are read back when due', async () => {
    const fake = fakeStore(40, 2);
    // The store's copy of a row as a refill reads it before the failed attempt's record is written: attempt
    // count 0. The runner must go on with the schedule from the count it had in memory.
    const loadEntity = fake.store.loadEntity.bind(fake.store);
    fake.store = {
      ...fake.store,
      loadEntity: async (...args) =>
        (await loadEntity(...args)).map((r) => ({ ...r, attemptCount: 0, nextAttemptAt: new Date(0) })),
    };
    // Every entity's first event fails three times, 60 ms apart: all 40 wait at once.
    const failures = new Map<number, number>();
    const { sent, send } = fakeSender((r) => {
      const { id, v } = entityOf(r);
      const failed = failures.get(id) ?? 0;
      if (v > 0 || failed >= 3) return 200;
      failures.set(id, failed + 1);
      return 500;
    });
    const d = dispatcher(fake, send, 30_000, 2, Array(10).fill(60));
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, d.eventsInMemory)), 1);
    await d.start();
    try {
      await waitUntil(() => sent.filter((s) => s.status === 200).length === 80, 10_000, 'all delivered');
      // A window of loaded rows plus a window of waiting heads; without the bound all 40 heads stay.
      assert.ok(peak <= 20, `${peak} events in memory at once, window 10`);
      assert.ok(peak >= 10, `peak ${peak}: the window was never full`);
      for (let e = 100; e < 140; e++) {
        const versions = sent.filter((s) => entityOf(s.request).id === e).map((s) => entityOf(s.request).v);
        assert.deepEqual(versions, [0, 0, 0, 0, 1], `entity ${e}: three failures, then in order`);
      }
      const attempts = new Map<number, number[]>();
      for (const r of fake.records)
        attempts.set(r.deliveryId, [...(attempts.get(r.deliveryId) ?? []), r.attempt]);
      for (const [deliveryId, numbers] of attempts) {
        assert.deepEqual(
          numbers,
          numbers.map((_, i) => i + 1),
          `delivery ${deliveryId}: attempts ${numbers.join(',')}`,
        );
      }
    } finally {
      clearInterval(sampler);
      await d.stop();
    }
  });

  test('a refill takes only the room the window has left, however large refillBatch is', async () => {
    const fake = fakeStore(2, 40);
    const limits: number[] = [];
    const loadEntity = fake.store.loadEntity.bind(fake.store);
    fake.store = {
      ...fake.store,
      loadEntity: (...args) => {
        limits.push(args[4]);
        return loadEntity(...args);
      },
    };
    // Entity 100 fails its first attempts: its tail is trimmed while it waits, then refilled.
    let failures = 0;
    const { sent, send } = fakeSender((r) => (entityOf(r).id === 100 && failures++ < 3 ? 500 : 200));
    const d = dispatcher(fake, send, 30_000, 100);
    await d.start();
    try {
      await waitUntil(() => sent.filter((s) => s.status === 200).length === 80, 10_000, 'all delivered');
      assert.ok(limits.length > 0, 'no refill happened');
      assert.ok(Math.max(...limits) <= 10, `refills of up to ${Math.max(...limits)} rows, window 10`);
    } finally {
      await d.stop();
    }
  });

  test('claiming its own lapsed lease again keeps one runner: nothing is sent twice', async () => {
    const fake = fakeStore(5, 20);
    const { sent, send } = fakeSender(() => 200, 3);
    // Leases are maintained every 20 ms and the fake store hands the webhook out on every claim.
    const d = dispatcher(fake, send, 60);
    await d.start();
    try {
      await waitUntil(() => sent.length >= 100, 10_000, 'all sent');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(fake.claims > 2, `claims ${fake.claims}`);
      const ids = sent.map((s) => s.request.headers['webhook-id']);
      assert.equal(new Set(ids).size, ids.length, 'a delivery was sent twice');
      assert.deepEqual(d.webhookIds, [WEBHOOK]);
    } finally {
      await d.stop();
    }
  });

  test('a lost lease stops sending', async () => {
    const fake = fakeStore(2, 200);
    const { sent, send } = fakeSender(() => 200, 5);
    const d = dispatcher(fake, send, 60);
    await d.start();
    try {
      await waitUntil(() => sent.length >= 5, 10_000, 'first sends');
      fake.keepLease = false; // another worker owns it now
      await waitUntil(() => d.webhookIds.length === 0, 10_000, 'the runner dropped');
      await new Promise((resolve) => setTimeout(resolve, 20));
      const before = sent.length;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(sent.length, before, 'attempts started after the lease was lost');
      assert.ok(before < 400);
    } finally {
      await d.stop();
    }
  });
});

describe('Dispatcher fair share', () => {
  /** A store of `webhooks` webhooks with `perWebhook` open deliveries each, and a census the test sets. */
  function sharedStore(webhooks: number, perWebhook: number) {
    const ids = Array.from(
      { length: webhooks },
      (_, i) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
    );
    const owner = new Map<string, string>();
    const delivered = new Set<number>();
    const events: string[] = [];
    const census = { liveWorkers: 1, activeWebhooks: webhooks };
    const rows = (webhookId: string): OpenDelivery[] =>
      Array.from({ length: perWebhook }, (_, n) => {
        const id = ids.indexOf(webhookId) * 1_000 + n + 1;
        return {
          id,
          entityId: n,
          changeVersion: id,
          changeType: 'InsertOrUpdate',
          body: JSON.stringify({ changeType: 'InsertOrUpdate', data: { id: n } }),
          attemptCount: 0,
          nextAttemptAt: new Date(0),
          committedAt: new Date(),
        };
      });
    const store: DispatcherStore = {
      heartbeat: async () => ({ ...census }),
      deregister: async () => undefined,
      claim: async (who, _ttl, limit) => {
        const free = ids.filter((id) => !owner.has(id)).slice(0, limit);
        for (const id of free) owner.set(id, who);
        return free.map((id) => ({ id, tenantId: 't', part: 0, partitions: 1 }));
      },
      renew: async (who, held) => held.filter((id) => owner.get(id) === who),
      release: async (who, released) => {
        for (const id of released ?? ids) {
          if (owner.get(id) !== who) continue;
          owner.delete(id);
          events.push(`release ${id}`);
        }
      },
      sync: async ({ webhookId, afterId, space }) =>
        syncResult(
          webhookId,
          rows(webhookId)
            .filter((r) => r.id > afterId && !delivered.has(r.id))
            .slice(0, space),
        ),
      loadEntity: async () => [],
      record: async (records) => {
        for (const r of records) {
          if (r.result === 'Delivered') delivered.add(r.deliveryId);
          events.push(`record ${r.deliveryId}`);
        }
      },
      stopWebhook: async () => true,
      abandonStopped: async () => 0,
    };
    return { store, owner, census, events, delivered, ids };
  }

  function fairShareDispatcher(
    store: DispatcherStore,
    send: (r: SendRequest) => Promise<SendResult>,
    options: Omit<DispatcherOptions, 'retryScheduleMs' | 'userAgent'>,
  ) {
    return new Dispatcher({
      store,
      send,
      decryptKey: (sealed) => sealed,
      logger: createLogger('silent'),
      observer: { attempt: () => undefined },
      options: { retryScheduleMs: [5], userAgent: 'Timehook/test', ...options },
    });
  }

  test('the runners share one in-memory window: each loads at most totalWindow / runners', async () => {
    const shared = sharedStore(4, 300);
    const spaces: number[] = [];
    const store = shared.store;
    const counting: DispatcherStore = {
      ...store,
      sync: (params) => {
        spaces.push(params.space);
        return store.sync(params);
      },
    };
    const { sent, send } = fakeSender(() => 200, 1);
    const d = fairShareDispatcher(counting, send, {
      maxInFlightPerWebhook: 4,
      leaseTtlMs: 30_000,
      window: 1_000,
      totalWindow: 400,
    });
    await d.start();
    try {
      await waitUntil(() => sent.length === 1_200, 10_000, 'every delivery sent');
      assert.equal(d.webhookIds.length, 4);
      // 400 / 4 runners = 100 rows each (a runner's first sync may come before all four exist), so each
      // webhook's 300 deliveries are loaded in several pieces.
      const later = spaces.slice(4).filter((space) => space > 0);
      assert.ok(later.length >= 4, `${later.length} later loads`);
      assert.ok(Math.max(...later) <= 100, `loads of ${Math.max(...later)} rows`);
    } finally {
      await d.stop();
    }
  });

  test('claims at most ceil(webhooks / live workers), and hands the surplus over only after its attempts are recorded', async () => {
    const shared = sharedStore(4, 30);
    shared.census.liveWorkers = 2;
    // Slow answers, so that attempts are in flight when the share shrinks.
    const { sent, send } = fakeSender(() => 200, 40);
    const d = fairShareDispatcher(shared.store, send, { maxInFlightPerWebhook: 2, leaseTtlMs: 120 });
    await d.start();
    try {
      assert.equal(d.webhookIds.length, 2, 'ceil(4 / 2)');
      await waitUntil(() => sent.length >= 4, 5_000, 'attempts in flight');
      shared.census.liveWorkers = 4; // two workers joined: the share is 1
      await waitUntil(
        () => d.webhookIds.length === 1 && shared.owner.size === 1,
        5_000,
        'one webhook handed over',
      );
      const handed = shared.ids.find((id) => shared.events.includes(`release ${id}`))!;
      const releasedAt = shared.events.indexOf(`release ${handed}`);
      // Every attempt sent for the handed-over webhook was recorded before its lease was released
      // (webhook-id is msg_<webhook without dashes>_<changeVersion>, and changeVersion = delivery id here).
      const prefix = `msg_${handed.replaceAll('-', '')}_`;
      const sentIds = sent
        .map((s) => String(s.request.headers['webhook-id']))
        .filter((id) => id.startsWith(prefix))
        .map((id) => parseInt(id.slice(prefix.length), 16));
      for (const id of sentIds) {
        const recorded = shared.events.indexOf(`record ${id}`);
        assert.ok(recorded !== -1 && recorded < releasedAt, `delivery ${id} recorded before the release`);
      }
      assert.ok(sentIds.length > 0, 'the handed-over webhook had attempts');
    } finally {
      await d.stop();
    }
  });
});

test("a webhook's in-flight limit is divided among its partitions without exceeding it", () => {
  const shares = (limit: number, partitions: number) =>
    Array.from({ length: partitions }, (_, part) => partitionShare(limit, part, partitions));
  assert.deepEqual(shares(16, 1), [16]);
  assert.deepEqual(shares(16, 2), [8, 8]);
  assert.deepEqual(shares(16, 3), [6, 5, 5]);
  for (const [limit, partitions] of [
    [16, 5],
    [16, 16],
    [1_024, 64],
    [7, 3],
  ] as const) {
    assert.equal(
      shares(limit, partitions).reduce((a, b) => a + b),
      limit,
    );
  }
  // More partitions than the limit: one each, the least that lets every partition send.
  assert.deepEqual(shares(2, 4), [1, 1, 1, 1]);
});
