// Leases on webhook partitions for the delivery workers (SPEC §4): a worker owns a partition's sending while
// its lease lives, renews it while it runs, and releases it on a graceful stop; an expired lease is claimed by
// any worker. Claims skip rows other transactions hold (FOR UPDATE SKIP LOCKED). Times are the store's clock.

import type { Queryable } from './db.ts';
import { WEBHOOKS_CHANNEL } from './deliveries.ts';

/**
 * One lease: a partition of a webhook (migration 000007). A webhook has 1 to 64 partitions; an entity's events
 * all belong to one of them, so a partition's holder sends them in order on its own.
 */
export interface LeasedWebhook {
  id: string;
  tenantId: string;
  part: number;
  partitions: number;
}

/**
 * The key of a lease in the lease statements and in a worker's maps: the webhook id for partition 0, and
 * `<id>#<part>` for the others (so a webhook of one partition is keyed by its id, as before partitions).
 */
export const leaseKey = (id: string, part: number): string => (part === 0 ? id : `${id}#${part}`);

/**
 * Locks the partition rows matching `where` in (webhook id, partition) order, the order of the batched sync
 * (migration 000008): a statement that locks several rows in whatever order its scan finds them could wait
 * for a sync that waits for it.
 */
const LOCK_IN_ORDER = (where: string): string =>
  `select webhook_id, part from delivery_partitions where ${where} order by webhook_id, part for update`;

function parseLeaseKeys(keys: readonly string[]): { ids: string[]; parts: number[] } {
  const ids: string[] = [];
  const parts: number[] = [];
  for (const key of keys) {
    const hash = key.indexOf('#');
    ids.push(hash < 0 ? key : key.slice(0, hash));
    parts.push(hash < 0 ? 0 : Number(key.slice(hash + 1)));
  }
  return { ids, parts };
}

/**
 * Claims up to `limit` partitions of Enabled, undeleted, unexpired webhooks whose lease is free or expired, for
 * `owner`, until now + ttlMs. Returns the claimed partitions. Partitions already held by `owner` are not
 * returned.
 */
export async function claimWebhookLeases(
  db: Queryable,
  owner: string,
  ttlMs: number,
  limit: number,
): Promise<LeasedWebhook[]> {
  const rows = await db.query<{ id: string; tenant_id: string; part: number; partitions: number }>(
    `update delivery_partitions p
        set lease_owner = $1, lease_until = now() + $2::double precision * interval '1 millisecond'
       from webhooks w
      where w.id = p.webhook_id
        and (p.webhook_id, p.part) in (
          select f.webhook_id, f.part from delivery_partitions f join webhooks fw on fw.id = f.webhook_id
           where fw.status = 'Enabled' and fw.deleted_at is null and fw.valid_until > now()
             and (f.lease_until is null or f.lease_until < now())
           order by f.lease_until nulls first, fw.created_at, f.webhook_id, f.part
           limit $3
           for update of f skip locked)
      returning w.id, w.tenant_id, p.part, w.partitions`,
    [owner, ttlMs, limit],
  );
  return rows.map((r) => ({ id: r.id, tenantId: r.tenant_id, part: r.part, partitions: r.partitions }));
}

/**
 * Extends `owner`'s leases (keys, see leaseKey) to now + ttlMs; returns the keys it still holds (the others are
 * lost).
 */
export async function renewWebhookLeases(
  db: Queryable,
  owner: string,
  keys: readonly string[],
  ttlMs: number,
): Promise<string[]> {
  if (keys.length === 0) return [];
  const { ids, parts } = parseLeaseKeys(keys);
  const rows = await db.query<{ id: string; part: number }>(
    `with mine as (
       ${LOCK_IN_ORDER('lease_owner = $1 and (webhook_id, part) in (select * from unnest($2::uuid[], $3::int[]))')}
     )
     update delivery_partitions p set lease_until = now() + $4::double precision * interval '1 millisecond'
       from mine where p.webhook_id = mine.webhook_id and p.part = mine.part
     returning p.webhook_id as id, p.part`,
    [owner, ids, parts, ttlMs],
  );
  return rows.map((r) => leaseKey(r.id, r.part));
}

/**
 * Gives up `owner`'s leases (keys, see leaseKey; or all of them) and announces each webhook with a released
 * partition on WEBHOOKS_CHANNEL, so another worker claims it at once instead of at its next lease round.
 */
export async function releaseWebhookLeases(
  db: Queryable,
  owner: string,
  keys?: readonly string[],
): Promise<void> {
  const { ids, parts } = parseLeaseKeys(keys ?? []);
  await db.query(
    `with mine as (
       ${LOCK_IN_ORDER('lease_owner = $1 and ($2::boolean or (webhook_id, part) in (select * from unnest($3::uuid[], $4::int[])))')}
     ), released as (
       update delivery_partitions p set lease_owner = null, lease_until = null
         from mine where p.webhook_id = mine.webhook_id and p.part = mine.part
       returning p.webhook_id
     )
     select pg_notify($5, id::text) from (select distinct webhook_id as id from released) r`,
    [owner, keys === undefined, ids, parts, WEBHOOKS_CHANNEL],
  );
}

/**
 * Clears every lease. Only for the embedded store, where the data directory lock proves no other worker
 * exists: leases left by a killed process would otherwise delay delivery until they expire.
 */
export async function clearAllWebhookLeases(db: Queryable): Promise<void> {
  await db.query(
    'update delivery_partitions set lease_owner = null, lease_until = null where lease_owner is not null',
  );
}
