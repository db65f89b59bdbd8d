// Registration of delivery workers (SPEC §4): each live worker refreshes its row while it runs, and the number
// of live workers and of sendable webhook partitions gives every worker its fair share of the leases.

import type { Queryable } from './db.ts';

export interface WorkerIdentity {
  id: string;
  host: string;
  pid: number;
}

/** What a worker needs to size its share: live workers (itself included) and leases to share. */
export interface WorkerCensus {
  liveWorkers: number;
  /** Partitions of the sendable webhooks: the leases (the webhooks themselves when each has one partition). */
  activeWebhooks: number;
}

/**
 * Records that `worker` is alive now (registering it on first call), forgets workers silent for longer than
 * forgetAfterMs, and counts the live workers — seen within ttlMs, this one included — and the partitions of
 * the webhooks that can be delivered (Enabled, not deleted, not past valid_until). One statement; times are
 * the store's clock.
 */
export async function heartbeatWorker(
  db: Queryable,
  worker: WorkerIdentity,
  ttlMs: number,
  forgetAfterMs: number,
): Promise<WorkerCensus> {
  // The CTEs' writes are invisible to the outer select (one snapshot), so this worker is counted as 1 + others.
  const rows = await db.query<{ live_workers: number; active_webhooks: number }>(
    `with beat as (
       insert into workers (id, host, pid) values ($1, $2, $3)
       on conflict (id) do update set last_seen = now()
     ), forgotten as (
       delete from workers
        where id <> $1 and last_seen < now() - $5::double precision * interval '1 millisecond'
     )
     select 1 + (select count(*) from workers
                  where id <> $1 and last_seen >= now() - $4::double precision * interval '1 millisecond')::int
              as live_workers,
            (select coalesce(sum(partitions), 0) from webhooks
              where status = 'Enabled' and deleted_at is null and valid_until > now())::int as active_webhooks`,
    [worker.id, worker.host, worker.pid, ttlMs, forgetAfterMs],
  );
  const row = rows[0]!;
  return { liveWorkers: row.live_workers, activeWebhooks: row.active_webhooks };
}

/** Removes a worker that stops gracefully, so the others' shares grow at once. */
export async function deregisterWorker(db: Queryable, workerId: string): Promise<void> {
  await db.query('delete from workers where id = $1', [workerId]);
}

/**
 * Forgets every worker. Only for the embedded store, where the data directory lock proves this process is the
 * only worker: a row left by a killed process would otherwise halve its share until it ages out.
 */
export async function clearWorkers(db: Queryable): Promise<void> {
  await db.query('delete from workers');
}
