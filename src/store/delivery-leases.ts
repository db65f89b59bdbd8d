// Leases on webhooks for the delivery workers (SPEC §4): a worker owns a webhook's sending while its lease
// lives, renews it while it runs, and releases it on a graceful stop; an expired lease is claimed by any
// worker. Claims skip rows other transactions hold (FOR UPDATE SKIP LOCKED). Times are the store's clock.

import type { Queryable } from './db.ts';
import { WEBHOOKS_CHANNEL } from './deliveries.ts';

export interface LeasedWebhook {
  id: string;
  tenantId: string;
}

/**
 * Claims up to `limit` Enabled, undeleted, unexpired webhooks whose lease is free or expired, for `owner`,
 * until now + ttlMs. Returns the claimed webhooks. Webhooks already held by `owner` are not returned.
 */
export async function claimWebhookLeases(
  db: Queryable,
  owner: string,
  ttlMs: number,
  limit: number,
): Promise<LeasedWebhook[]> {
  const rows = await db.query<{ id: string; tenant_id: string }>(
    `update webhooks w
        set lease_owner = $1, lease_until = now() + $2::double precision * interval '1 millisecond'
      where w.id in (
        select id from webhooks
         where status = 'Enabled' and deleted_at is null and valid_until > now()
           and (lease_until is null or lease_until < now())
         order by lease_until nulls first, created_at
         limit $3
         for update skip locked)
      returning w.id, w.tenant_id`,
    [owner, ttlMs, limit],
  );
  return rows.map((r) => ({ id: r.id, tenantId: r.tenant_id }));
}

/** Extends `owner`'s leases on `ids` to now + ttlMs; returns the ids it still holds (the others are lost). */
export async function renewWebhookLeases(
  db: Queryable,
  owner: string,
  ids: readonly string[],
  ttlMs: number,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db.query<{ id: string }>(
    `update webhooks set lease_until = now() + $3::double precision * interval '1 millisecond'
      where id = any($2::uuid[]) and lease_owner = $1
      returning id`,
    [owner, ids, ttlMs],
  );
  return rows.map((r) => r.id);
}

/**
 * Gives up `owner`'s leases (on `ids`, or all of them) and announces each released webhook on
 * WEBHOOKS_CHANNEL, so another worker claims it at once instead of at its next lease round.
 */
export async function releaseWebhookLeases(
  db: Queryable,
  owner: string,
  ids?: readonly string[],
): Promise<void> {
  await db.query(
    `with released as (
       update webhooks set lease_owner = null, lease_until = null
        where lease_owner = $1 and ($2::uuid[] is null or id = any($2::uuid[]))
        returning id
     )
     select pg_notify($3, id::text) from released`,
    [owner, ids ?? null, WEBHOOKS_CHANNEL],
  );
}

/**
 * Clears every lease. Only for the embedded store, where the data directory lock proves no other worker
 * exists: leases left by a killed process would otherwise delay delivery until they expire.
 */
export async function clearAllWebhookLeases(db: Queryable): Promise<void> {
  await db.query('update webhooks set lease_owner = null, lease_until = null where lease_owner is not null');
}
