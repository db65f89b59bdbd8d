// Per-entity ordering under failure (SPEC §3.2): many entities updated many times while the receiver fails
// and delays requests at random. For every entity, no version is sent before the previous one was
// acknowledged, every version is acknowledged exactly once, and every final version arrives.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { absence, putOk, seed } from '../helpers/collections.ts';
import { useDeliveryHarness } from '../helpers/delivery-harness.ts';
import { newTenant } from '../helpers/harness.ts';
import { reply, startReceiver, type ReceivedRequest } from '../helpers/receiver.ts';

const MAX_IN_FLIGHT = 8;
const env = {
  // Short retries, and enough of them that a random failure never exhausts the schedule.
  TIMEHOOK_RETRY_SCHEDULE: Array(30).fill('30ms').join(','),
  // Generous, so a loaded machine never turns a late 200 into a timeout (and a legitimate duplicate).
  TIMEHOOK_DELIVERY_TIMEOUT: '10s',
  TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK: String(MAX_IN_FLIGHT),
};
const roomy = await useDeliveryHarness({ env });
/** A window far smaller than the backlog: tails are dropped behind failing entities and refilled in pieces. */
const cramped = await useDeliveryHarness({ env, tuning: { window: 12 } });

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ENTITIES = 40;
const ROUNDS = 8;

for (const [name, h] of [
  ['', roomy],
  [' (with a small in-memory window)', cramped],
] as const) {
  test(`per entity, no version is sent before the previous one was acknowledged, and every final version arrives${name}`, async () => {
    const seedValue = Number(process.env.ORDERING_SEED ?? Date.now() % 100_000);
    const random = prng(seedValue);
    const failuresPerMessage = new Map<string, number>();
    const receiver = await startReceiver((req) => {
      const id = String(req.headers['webhook-id']);
      const failures = failuresPerMessage.get(id) ?? 0;
      const roll = random();
      if (failures < 5 && roll < 0.25) {
        failuresPerMessage.set(id, failures + 1);
        return roll < 0.05 ? reply.delayed(Math.floor(random() * 40), 503) : reply.status(500);
      }
      if (roll < 0.45) return reply.delayed(Math.floor(random() * 40));
      return reply.ok();
    });
    try {
      const token = await h.token(newTenant());
      await seed(h, token);
      await h.createWebhook(token, receiver.url());

      /** entity id → the versions written, in order; the last is the final one. */
      const written = new Map<number, string[]>();
      const ids = Array.from({ length: ENTITIES }, (_, i) => 5000 + i);
      for (let round = 1; round <= ROUNDS; round++) {
        const order = [...ids].sort(() => random() - 0.5);
        for (const id of order) {
          const stored = await putOk(h, token, `/absences/${id}`, absence({ durationInMinutes: round }));
          written.set(id, [...(written.get(id) ?? []), stored.changeVersion]);
        }
      }
      // Delete every fifth entity: its final event is the Delete.
      for (const id of ids.filter((_, i) => i % 5 === 0)) {
        const res = await h.request({ method: 'DELETE', path: `/absences/${id}`, token });
        assert.equal(res.statusCode, 204);
      }
      const finals = new Map<number, string>();

      const eventOf = (r: ReceivedRequest) => {
        const body = JSON.parse(r.body) as {
          changeType: string;
          data: { id: number; changeVersion: string };
        };
        return { entity: body.data.id, version: body.data.changeVersion, type: body.changeType };
      };
      const acknowledged = (r: ReceivedRequest) =>
        r.status !== undefined && r.status >= 200 && r.status < 300;
      const deleted = new Set(ids.filter((_, i) => i % 5 === 0));
      await receiver.waitFor(
        (rs) => {
          const finalAcks = new Set<number>();
          for (const r of rs) {
            if (!acknowledged(r)) continue;
            const e = eventOf(r);
            if (deleted.has(e.entity) ? e.type === 'Delete' : e.version === written.get(e.entity)!.at(-1)) {
              finalAcks.add(e.entity);
            }
          }
          return finalAcks.size === ENTITIES;
        },
        90_000,
        'every final version acknowledged',
      );
      await new Promise((resolve) => setTimeout(resolve, 200));

      // Reconstruct each entity's version list including the Delete versions from the events themselves.
      const byEntity = new Map<number, ReceivedRequest[]>();
      for (const r of receiver.requests) {
        const e = eventOf(r);
        byEntity.set(e.entity, [...(byEntity.get(e.entity) ?? []), r]);
        if (e.type === 'Delete') finals.set(e.entity, e.version);
      }
      for (const id of ids) {
        const versions = [...written.get(id)!, ...(finals.has(id) ? [finals.get(id)!] : [])];
        const requests = (byEntity.get(id) ?? []).sort(
          (a, b) => a.arrivedAt - b.arrivedAt || a.index - b.index,
        );
        const acks = new Map<string, ReceivedRequest[]>();
        for (const r of requests)
          if (acknowledged(r)) acks.set(eventOf(r).version, [...(acks.get(eventOf(r).version) ?? []), r]);
        for (const r of requests) {
          const { version } = eventOf(r);
          const position = versions.indexOf(version);
          assert.ok(position >= 0, `entity ${id}: unknown version ${version} (seed ${seedValue})`);
          if (position === 0) continue;
          const previous = versions[position - 1]!;
          const ackOfPrevious = (acks.get(previous) ?? []).find((a) => a.answeredAt! <= r.arrivedAt);
          assert.ok(
            ackOfPrevious,
            `entity ${id}: version ${version} was sent before ${previous} was acknowledged (seed ${seedValue})`,
          );
        }
        for (const version of versions) {
          assert.equal(
            acks.get(version)?.length,
            1,
            `entity ${id}: version ${version} acknowledged once (seed ${seedValue}): ${requests
              .filter((r) => eventOf(r).version === version)
              .map(
                (r) =>
                  `#${r.index} at ${r.arrivedAt} answered ${r.answeredAt ?? '-'} with ${r.status ?? '-'}`,
              )
              .join('; ')}`,
          );
        }
      }

      // Different entities went concurrently, within the per-webhook bound.
      const events = receiver.requests.flatMap((r) => [
        { at: r.arrivedAt, delta: 1 },
        { at: r.answeredAt ?? r.arrivedAt, delta: -1 },
      ]);
      events.sort((a, b) => a.at - b.at || a.delta - b.delta);
      let open = 0;
      let peak = 0;
      for (const e of events) peak = Math.max(peak, (open += e.delta));
      assert.ok(peak > 1, `entities were delivered one at a time (seed ${seedValue})`);
      assert.ok(
        peak <= MAX_IN_FLIGHT,
        `${peak} requests in flight, above ${MAX_IN_FLIGHT} (seed ${seedValue})`,
      );
    } finally {
      await receiver.close();
    }
  });
}

/** A tiny window and slower retries: one failing entity's backlog fills the window many times over. */
const blocked = await useDeliveryHarness({
  env: { TIMEHOOK_RETRY_SCHEDULE: Array(50).fill('100ms').join(',') },
  tuning: { window: 12 },
});

test('a failing entity with more queued events than the window holds does not block the others', async () => {
  const FAILING = 7001;
  const OTHERS = Array.from({ length: 20 }, (_, i) => 7100 + i);
  const eventOf = (r: ReceivedRequest) =>
    JSON.parse(r.body) as { data: { id: number; changeVersion: string } };
  const othersDone = (rs: ReceivedRequest[]) =>
    new Set(
      rs.filter((r) => r.status === 200 && eventOf(r).data.id !== FAILING).map((r) => eventOf(r).data.id),
    ).size === OTHERS.length;
  // The failing entity is refused until every other entity was acknowledged.
  const receiver = await startReceiver((req) =>
    eventOf(req).data.id === FAILING && !othersDone(receiver.requests) ? reply.status(500) : reply.ok(),
  );
  try {
    const token = await blocked.token(newTenant());
    await seed(blocked, token);
    await blocked.createWebhook(token, receiver.url());
    const versions: string[] = [];
    for (let i = 1; i <= 30; i++) {
      versions.push(
        (await putOk(blocked, token, `/absences/${FAILING}`, absence({ durationInMinutes: i })))
          .changeVersion,
      );
    }
    for (const id of OTHERS) await putOk(blocked, token, `/absences/${id}`, absence());
    await receiver.waitFor(
      (rs) => rs.filter((r) => r.status === 200 && eventOf(r).data.id === FAILING).length === versions.length,
      60_000,
      'every version of the failing entity',
    );
    const acked = receiver.requests.filter((r) => r.status === 200);
    const firstFailingAck = acked.findIndex((r) => eventOf(r).data.id === FAILING);
    const othersAcked = new Set(acked.slice(0, firstFailingAck).map((r) => eventOf(r).data.id));
    assert.equal(othersAcked.size, OTHERS.length, 'the other entities waited for the failing one');
    assert.deepEqual(
      acked.filter((r) => eventOf(r).data.id === FAILING).map((r) => eventOf(r).data.changeVersion),
      versions,
    );
  } finally {
    await receiver.close();
  }
});
