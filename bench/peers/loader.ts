// A peer's loader: writes the plan's batches through the peer's enqueue (the job inserts are the peer's ingest),
// numbering the changes in write order, and records when each batch's insert was sent and when it returned.

import type { PeerWritePlan, PeerWriteResult } from '../protocol.ts';
import type { Change, Peer } from './peer.ts';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes every batch, at most `maxInFlight` inserts open (and, for a steady stream, none before its due time).
 * A batch waits while an earlier batch with one of its entities is still in flight: an entity's next change is
 * inserted after its previous one committed, as an application writes one record's changes, so the write
 * order of an entity is its commit order and its jobs' order. (Timehook gets the same from its commit-order
 * lock, and the loader of the Timehook workloads needs no such wait.)
 */
export async function load(peer: Peer, plan: PeerWritePlan): Promise<PeerWriteResult> {
  const total = plan.batches.reduce((sum, b) => sum + b.length, 0);
  const result: PeerWriteResult = {
    startedAt: now(),
    endedAt: 0,
    batches: 0,
    changes: 0,
    maxLateMs: 0,
    entities: new Float64Array(total),
    versions: new Float64Array(total),
    sentAt: new Float64Array(total),
    committedAt: new Float64Array(total),
  };
  const inFlight = new Set<Promise<void>>();
  /** entity → the in-flight insert that holds its latest change. */
  const holders = new Map<number, Promise<void>>();
  let failure: Error | undefined;
  let offset = 0;
  for (let k = 0; k < plan.batches.length && !failure; k++) {
    const items = plan.batches[k]!;
    const due = plan.intervalMs === undefined ? undefined : result.startedAt + k * plan.intervalMs;
    if (due !== undefined && due - now() > 1) await sleep(due - now());
    while (inFlight.size >= plan.maxInFlight) await Promise.race(inFlight);
    for (;;) {
      const waits = new Set(items.map(([entity]) => holders.get(entity)).filter((p) => p !== undefined));
      if (waits.size === 0) break;
      await Promise.all(waits);
    }
    if (due !== undefined) result.maxLateMs = Math.max(result.maxLateMs, now() - due);
    const first = offset;
    offset += items.length;
    const changes: Change[] = items.map(([entity, round], i) => ({
      entity,
      round,
      version: plan.firstVersion + first + i,
    }));
    const insert = async () => {
      const sentAt = now();
      await peer.enqueue(changes);
      const committedAt = now();
      changes.forEach((change, i) => {
        result.entities[first + i] = change.entity;
        result.versions[first + i] = change.version;
        result.sentAt[first + i] = sentAt;
        result.committedAt[first + i] = committedAt;
      });
      result.batches++;
      result.changes += changes.length;
    };
    const tracked: Promise<void> = insert()
      .catch((error: Error) => {
        failure ??= error;
      })
      .finally(() => {
        inFlight.delete(tracked);
        for (const [entity] of items) if (holders.get(entity) === tracked) holders.delete(entity);
      });
    inFlight.add(tracked);
    for (const [entity] of items) holders.set(entity, tracked);
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  result.endedAt = now();
  return result;
}
