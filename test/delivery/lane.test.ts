// The lane of delivery engine v2 (docs/design/delivery.md) driven with a manual clock: per-entity order, the
// release of an entity's next event only once the previous outcome is durable, the in-flight bound, retries,
// the window, the cursor, and a model check of order under random outcomes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  Lane,
  type AttemptDecision,
  type Clock,
  type LaneDeps,
  type LaneEvent,
  type LaneRecord,
} from '../../src/delivery/lane.ts';

class ManualClock implements Clock {
  time = 1_000_000;
  #timers: { at: number; fn: () => void; live: boolean }[] = [];

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.time + ms, fn, live: true };
    this.#timers.push(timer);
    return () => {
      timer.live = false;
    };
  }

  /** Moves time on, running the timers that fall due, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.time = Math.max(this.time, due.at);
      due.fn();
      await settle();
    }
    this.time = end;
  }
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Pending<T> {
  event: LaneEvent;
  resolve(value: T): void;
}

/** A lane whose attempts and records wait until the test answers them. */
function harness(options: Partial<Pick<LaneDeps, 'limit' | 'window'>> = {}, through = 0) {
  const clock = new ManualClock();
  const attempts: Pending<AttemptDecision>[] = [];
  const records: { records: LaneRecord[]; resolve(): void }[] = [];
  /** The rows the store holds, as the records made them durable. */
  const rows = new Map<string, { event: LaneEvent; status: string }>();
  const log: string[] = [];
  const stops: string[] = [];
  let leaseGood = true;
  const lane = new Lane(
    {
      limit: options.limit ?? 4,
      window: options.window ?? 100,
      attempt: (event) =>
        new Promise((resolve) => {
          log.push(`send ${event.entityId}@${event.version}`);
          attempts.push({ event, resolve: (decision) => resolve({ decision, report: { status: 0 } }) });
        }),
      record: (batch) =>
        new Promise<void>((resolve) => {
          records.push({ records: batch, resolve });
        }),
      loadEntity: async (entityId, after, limit) =>
        [...rows.values()]
          .filter(
            (r) =>
              r.event.entityId === entityId &&
              r.event.seq === 0 &&
              r.event.version > after.version &&
              (r.status === 'Pending' || r.status === 'Failed'),
          )
          .sort((a, b) => a.event.version - b.event.version)
          .slice(0, limit)
          .map((r) => ({ ...r.event, hasRow: true })),
      canStart: () => leaseGood,
      stop: (reason) => stops.push(reason),
      clock,
    },
    through,
  );
  return {
    lane,
    clock,
    attempts,
    records,
    log,
    stops,
    setLease(good: boolean) {
      leaseGood = good;
    },
    /** Answers the oldest open attempt of an entity. */
    async answer(entityId: number, decision: AttemptDecision) {
      const i = attempts.findIndex((a) => a.event.entityId === entityId);
      assert.ok(i >= 0, `no attempt of entity ${entityId} in flight`);
      attempts.splice(i, 1)[0]!.resolve(decision);
      await settle();
    },
    rows,
    /** Makes every queued record durable. */
    async persist() {
      for (const r of records.splice(0)) {
        for (const rec of r.records)
          rows.set(`${rec.event.version}:${rec.event.seq}`, { event: { ...rec.event }, status: rec.status });
        r.resolve();
      }
      await settle();
    },
  };
}

let nextVersion = 1;
const event = (entityId: number, version = nextVersion++): LaneEvent => ({
  version,
  seq: 0,
  entityId,
  changeType: 'InsertOrUpdate',
  body: `{"v":${version}}`,
  committedAt: 0,
  attempts: 0,
  dueAt: 0,
  hasRow: false,
});

describe('a lane', () => {
  test('sends one event per entity at a time, in version order, and different entities at once', async () => {
    const h = harness();
    h.lane.offer([event(1, 1), event(1, 2), event(2, 3)], 3);
    await settle();
    assert.deepEqual(h.log, ['send 1@1', 'send 2@3']);
    await h.answer(1, { type: 'delivered' });
    assert.deepEqual(h.log, ['send 1@1', 'send 2@3'], 'the next event waits for the record');
    await h.persist();
    assert.deepEqual(h.log, ['send 1@1', 'send 2@3', 'send 1@2']);
  });

  test('never has more attempts in flight than its limit', async () => {
    const h = harness({ limit: 2 });
    h.lane.offer([event(1, 1), event(2, 2), event(3, 3)], 3);
    await settle();
    assert.equal(h.attempts.length, 2);
    await h.answer(1, { type: 'delivered' });
    assert.equal(h.attempts.length, 2, 'a slot frees at the answer, before the record');
    assert.equal(h.lane.inFlight, 2);
  });

  test('retries a failed head when due while its followers wait and other entities go on', async () => {
    const h = harness();
    h.lane.offer([event(1, 1), event(1, 2)], 2);
    await settle();
    await h.answer(1, { type: 'retry', atMs: h.clock.time + 5000 });
    await h.persist();
    await h.persist();
    assert.equal(h.records.length, 0, 'the failure and the spilled follower are recorded');
    h.lane.offer([event(2, 3)], 3);
    await settle();
    assert.deepEqual(h.log, ['send 1@1', 'send 2@3']);
    await h.clock.advance(4999);
    assert.equal(h.log.length, 2);
    await h.clock.advance(1);
    assert.deepEqual(h.log, ['send 1@1', 'send 2@3', 'send 1@1']);
    await h.answer(1, { type: 'delivered' });
    await h.persist();
    assert.deepEqual(h.log.at(-1), 'send 1@2');
  });

  test('records a failure with the event, so the body of every attempt is the one recorded', async () => {
    const h = harness();
    const first = event(1, 1);
    h.lane.offer([first], 1);
    await settle();
    await h.answer(1, { type: 'retry', atMs: h.clock.time + 10 });
    assert.equal(h.records[0]!.records[0]!.status, 'Failed');
    assert.equal(h.records[0]!.records[0]!.event.body, first.body);
    assert.equal(h.records[0]!.records[0]!.event.attempts, 1);
  });

  test('its cursor stands below the lowest version without a durable row', async () => {
    const h = harness({}, 10);
    assert.equal(h.lane.cursor, 10);
    h.lane.offer([event(1, 11), event(2, 12), event(3, 13)], 15);
    await settle();
    assert.equal(h.lane.cursor, 10);
    await h.answer(2, { type: 'delivered' });
    await h.persist();
    assert.equal(h.lane.cursor, 10, 'version 11 has no row yet');
    await h.answer(1, { type: 'retry', atMs: h.clock.time + 1000 });
    assert.equal(h.lane.cursor, 10, 'not before the failure is durable');
    await h.persist();
    assert.equal(h.lane.cursor, 12, 'a Failed row counts: 11 and 12 have rows');
    await h.answer(3, { type: 'delivered' });
    await h.persist();
    assert.equal(h.lane.cursor, 15, 'everything has a row: the cursor reaches through');
  });

  test('takes nothing when the events do not fit in its window', async () => {
    const h = harness({ window: 2 });
    assert.equal(h.lane.offer([event(1, 1), event(2, 2), event(3, 3)], 3), false);
    assert.equal(h.lane.through, 0);
    assert.equal(h.lane.offer([event(1, 1), event(2, 2)], 2), true);
    assert.equal(h.lane.room, 0);
  });

  test('skips versions it already took', async () => {
    const h = harness({}, 5);
    h.lane.offer([event(1, 4), event(1, 6)], 6);
    await settle();
    assert.deepEqual(h.log, ['send 1@6']);
  });

  test('gives due retries at most half the slots while fresh events wait', async () => {
    const h = harness({ limit: 4 });
    h.lane.offer(
      [1, 2, 3, 4].map((e) => event(e, e)),
      4,
    );
    await settle();
    for (const e of [1, 2, 3, 4]) await h.answer(e, { type: 'retry', atMs: h.clock.time + 100 });
    await h.persist();
    h.lane.offer(
      [5, 6, 7, 8, 9, 10, 11, 12].map((e) => event(e, e)),
      12,
    );
    await settle();
    await h.clock.advance(100);
    assert.equal(h.attempts.filter((a) => a.event.attempts > 0).length, 0, 'no slot was free');
    for (const e of [5, 6, 7, 8]) await h.answer(e, { type: 'delivered' });
    await h.persist();
    assert.equal(h.attempts.length, 4);
    const retrying = h.attempts.filter((a) => a.event.attempts > 0).length;
    assert.equal(retrying, 2, 'two slots for the four due retries, two for the four waiting fresh events');
  });

  test("spills a failing entity's followers to the store and reads them back in order once it is delivered", async () => {
    const h = harness({ window: 10 });
    h.lane.offer([event(1, 1), event(1, 2), event(1, 3), event(2, 4)], 4);
    await settle();
    await h.answer(1, { type: 'retry', atMs: h.clock.time + 100 });
    await h.persist();
    assert.equal(h.lane.held, 2, 'the failing head and entity 2 are in memory, the followers are not');
    await h.persist();
    assert.deepEqual(
      [...h.rows.values()].filter((r) => r.status === 'Pending').map((r) => r.event.version),
      [2, 3],
    );
    h.lane.offer([event(1, 5)], 5);
    await settle();
    await h.persist();
    assert.equal(h.lane.held, 2, 'a later event of a spilled entity goes to the store too');
    assert.equal(h.lane.cursor, 3, 'spilled rows count as rows; entity 2 is still owed');
    await h.clock.advance(100);
    await h.answer(1, { type: 'delivered' });
    await h.persist();
    await settle();
    assert.deepEqual(h.log.slice(-2), ['send 1@1', 'send 1@2']);
    for (const v of [2, 3]) {
      await h.answer(1, { type: 'delivered' });
      await h.persist();
      await settle();
      assert.equal(h.log.at(-1), `send 1@${v + 1 === 4 ? 5 : v + 1}`);
    }
  });

  test('an event that arrives while its entity waits for a retry goes to the store too', async () => {
    const h = harness();
    h.lane.offer([event(1, 1)], 1);
    await settle();
    await h.answer(1, { type: 'retry', atMs: h.clock.time + 10 });
    await h.persist();
    h.lane.offer([event(1, 2)], 2);
    await settle();
    await h.persist();
    assert.equal(h.lane.held, 1);
    assert.equal(h.rows.get('2:0')?.status, 'Pending');
    await h.clock.advance(10);
    await h.answer(1, { type: 'delivered' });
    await h.persist();
    await settle();
    assert.equal(h.log.at(-1), 'send 1@2');
  });

  test('a redelivery queued behind a failing head stays in memory when the followers are spilled', async () => {
    const h = harness();
    h.lane.offer([event(1, 1), event(1, 2)], 2);
    h.lane.restore([{ ...event(1, 1), seq: 1 }]);
    await settle();
    await h.answer(1, { type: 'retry', atMs: h.clock.time + 10 });
    await h.persist();
    await h.persist();
    assert.equal(h.lane.held, 2, 'the head and the redelivery');
    await h.clock.advance(10);
    await h.answer(1, { type: 'delivered' });
    await h.persist();
    await settle();
    assert.deepEqual(
      h.attempts.map((a) => [a.event.version, a.event.seq]),
      [[1, 1]],
    );
  });

  test('stops the webhook after recording an exhausted or gone attempt', async () => {
    for (const type of ['exhausted', 'gone'] as const) {
      const h = harness();
      h.lane.offer([event(1, 1)], 1);
      await settle();
      await h.answer(1, { type });
      assert.deepEqual(h.stops, [], 'not before the record is durable');
      await h.persist();
      assert.deepEqual(h.stops, [type === 'gone' ? 'EndpointGone' : 'RetriesExhausted']);
    }
  });

  test('starts no attempt while the lease cannot cover one, and resumes when poked', async () => {
    const h = harness();
    h.setLease(false);
    h.lane.offer([event(1, 1)], 1);
    await settle();
    assert.equal(h.attempts.length, 0);
    h.setLease(true);
    h.lane.poke();
    await settle();
    assert.equal(h.attempts.length, 1);
  });

  test('restored events (open rows) do not hold the cursor back and go before later ones', async () => {
    const h = harness({}, 20);
    h.lane.restore([{ ...event(1, 15), attempts: 2, hasRow: true }]);
    h.lane.offer([event(1, 21)], 21);
    await settle();
    assert.equal(h.lane.cursor, 20);
    assert.deepEqual(h.log, ['send 1@15']);
  });

  test('stop hands back the events not in flight, and still records the attempts in flight', async () => {
    const h = harness();
    h.lane.offer([event(1, 1), event(1, 2), event(2, 3)], 3);
    await settle();
    const left = h.lane.stop();
    assert.deepEqual(
      left.map((e) => e.version),
      [2],
    );
    assert.equal(h.lane.offer([event(3, 4)], 4), false);
    let idle = false;
    void h.lane.idle().then(() => (idle = true));
    await h.answer(1, { type: 'delivered' });
    await h.answer(2, { type: 'retry', atMs: h.clock.time + 10 });
    await h.persist();
    assert.equal(idle, true);
    assert.equal(h.attempts.length, 0, 'nothing new was sent');
  });
});

describe('a lane under random outcomes', () => {
  test('never sends an event before the previous event of its entity was delivered and recorded', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.constantFrom('delivered', 'retry', 'persist', 'tick'), { maxLength: 200 }),
        async (entities, script) => {
          const h = harness({ limit: 3 });
          const events = entities.map((entityId, i) => event(entityId, i + 1));
          h.lane.offer(events, events.length);
          await settle();
          // Per entity: the versions delivered and recorded, and each attempt's version.
          const recorded = new Map<number, number[]>();
          const check = () => {
            for (const a of h.attempts) {
              const earlier = events.filter(
                (e) => e.entityId === a.event.entityId && e.version < a.event.version,
              );
              const done = recorded.get(a.event.entityId) ?? [];
              for (const e of earlier)
                assert.ok(done.includes(e.version), `${a.event.version} overtook ${e.version}`);
            }
          };
          const noteRecords = () => {
            for (const r of h.records)
              for (const rec of r.records)
                if (rec.status === 'Delivered') {
                  const list = recorded.get(rec.event.entityId) ?? [];
                  list.push(rec.event.version);
                  recorded.set(rec.event.entityId, list);
                }
          };
          for (const step of script) {
            check();
            if (step === 'persist') {
              noteRecords();
              await h.persist();
            } else if (step === 'tick') {
              await h.clock.advance(50);
            } else if (h.attempts.length > 0) {
              const a = h.attempts[0]!;
              await h.answer(
                a.event.entityId,
                step === 'delivered' ? { type: 'delivered' } : { type: 'retry', atMs: h.clock.time + 30 },
              );
            }
          }
          check();
        },
      ),
      { numRuns: 300 },
    );
  });
});
