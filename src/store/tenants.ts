// Tenants and the tenant-wide change counter.

import type { Queryable } from './db.ts';

export async function ensureTenant(db: Queryable, tenantId: string): Promise<void> {
  await db.query('insert into tenants (id) values ($1) on conflict (id) do nothing', [tenantId]);
}

export async function tenantExists(db: Queryable, tenantId: string): Promise<boolean> {
  return (await db.query('select 1 from tenants where id = $1', [tenantId])).length > 0;
}

/**
 * Locks the tenant row for the rest of the transaction. Every write transaction takes it first: writes of
 * one tenant are serialized, so "is this PUT a no-op?" checks and version order cannot race (SPEC §2).
 * Returns false when the tenant does not exist.
 */
export async function lockTenant(tx: Queryable, tenantId: string): Promise<boolean> {
  return (await tx.query('select 1 from tenants where id = $1 for update', [tenantId])).length > 0;
}

/** The tenant's latest committed version (0 when nothing was written). */
export async function currentVersion(db: Queryable, tenantId: string): Promise<number> {
  const rows = await db.query<{ last_version: number }>('select last_version from tenants where id = $1', [
    tenantId,
  ]);
  return rows[0]?.last_version ?? 0;
}

export async function prunedThroughVersion(db: Queryable, tenantId: string): Promise<number> {
  const rows = await db.query<{ v: number }>(
    'select pruned_through_version as v from tenants where id = $1',
    [tenantId],
  );
  return rows[0]?.v ?? 0;
}
