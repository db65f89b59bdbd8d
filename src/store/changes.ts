// The change log (SPEC §2): one tenant-wide counter, versions taken under the tenant row's lock so that
// commit order = version order, appended in one statement, and announced by NOTIFY on commit.

import { formatChangeVersion } from '../domain/change-version.ts';
import type { Queryable } from './db.ts';

export const CHANGES_CHANNEL = 'timehook_changes';

export type ChangeType = 'InsertOrUpdate' | 'Delete';

export interface NewChange {
  collection: string;
  entityId: number;
  changeType: ChangeType;
  /** The object as written, without changeVersion (it is put first in the stored data). */
  data: Record<string, unknown>;
  absenceDate?: string | null;
  personId?: number | null;
  /** For an absence update that changed its date or person: the values before it. */
  previousAbsenceDate?: string | null;
  previousPersonId?: number | null;
}

export interface ChangeRecord {
  version: number;
  collection: string;
  entityId: number;
  changeType: ChangeType;
  data: Record<string, unknown>;
  committedAt: Date;
}

/**
 * Takes the next `changes.length` versions of the tenant and appends the changes. Must run inside the
 * caller's transaction: the tenant row stays locked until it commits, so no later-committed change can
 * carry a lower version. Returns the versions in input order.
 */
export async function appendChanges(
  tx: Queryable,
  tenantId: string,
  changes: NewChange[],
): Promise<number[]> {
  if (changes.length === 0) return [];
  const rows = await tx.query<{ last_version: number }>(
    'update tenants set last_version = last_version + $2 where id = $1 returning last_version',
    [tenantId, changes.length],
  );
  const last = rows[0]?.last_version;
  if (last === undefined) throw new Error(`Tenant ${tenantId} does not exist.`);
  const first = last - changes.length + 1;
  const versions = changes.map((_, i) => first + i);
  // The data travels as one JSON array split by json_array_elements: each element keeps its text and key
  // order, and node escapes one string instead of thousands.
  await tx.query(
    `insert into changes (tenant_id, version, collection, entity_id, change_type, data,
                          absence_date, person_id, previous_absence_date, previous_person_id)
     select $1, u.v, u.c, u.e, u.t, j.d, u.ad, u.p, u.pad, u.pp
       from unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::date[], $7::bigint[], $8::date[], $9::bigint[])
              with ordinality as u(v, c, e, t, ad, p, pad, pp, n)
       join json_array_elements($10::json) with ordinality as j(d, n) using (n)`,
    [
      tenantId,
      versions,
      changes.map((c) => c.collection),
      changes.map((c) => c.entityId),
      changes.map((c) => c.changeType),
      changes.map((c) => c.absenceDate ?? null),
      changes.map((c) => c.personId ?? null),
      changes.map((c) => c.previousAbsenceDate ?? null),
      changes.map((c) => c.previousPersonId ?? null),
      `[${changes.map((c, i) => JSON.stringify({ changeVersion: formatChangeVersion(versions[i]!), ...c.data })).join(',')}]`,
    ],
  );
  await tx.query('select pg_notify($1, $2)', [CHANGES_CHANNEL, `${tenantId}:${last}`]);
  return versions;
}

/**
 * One step of pruning the change log: deletes up to `limit` changes committed before `olderThan` from the
 * front of one tenant's log (the first tenant after `afterTenant`, by id, that has such a change at its
 * front), in version order, and raises its pruned_through_version to the last one deleted, so delta tokens
 * from before it answer 410. Returns the tenant (undefined: no tenant after afterTenant has anything to
 * prune) and the count; a count below `limit` means that tenant is done for now, so the next step starts
 * after it.
 *
 * Only a prefix of a tenant's log is deleted: the walk stops at the first change that is younger than
 * olderThan or that an Enabled webhook still owes (its lowest lane cursor is below it), so
 * pruning never loses an event of a webhook whose workers fell behind or were away, and every version at
 * or below pruned_through_version is gone. The walk uses the primary key (tenant_id, version) from
 * pruned_through_version, so it reads only rows it deletes plus the one it stops at.
 */
export async function pruneChanges(
  db: Queryable,
  olderThan: Date,
  limit: number,
  afterTenant = '',
): Promise<{ tenant: string | undefined; deleted: number }> {
  const rows = await db.query<{ tenant: string | null; deleted: number }>(
    `with tenant as (
       select t.id, t.pruned_through_version as pruned, k.kept
         from tenants t
         -- The lowest lane cursor of the tenant's enabled webhooks: changes above it are still owed.
         cross join lateral (
           select min(l.cursor) as kept
             from webhooks w join delivery_lanes l on l.webhook_id = w.id
            where w.tenant_id = t.id and w.status = 'Enabled' and w.deleted_at is null) k
         cross join lateral (
           select c.version, c.committed_at from changes c
            where c.tenant_id = t.id and c.version > t.pruned_through_version
            order by c.version limit 1) front
        where t.id > $3 and front.committed_at < $1 and (k.kept is null or front.version <= k.kept)
        order by t.id limit 1
     ), win as (
       select c.version, c.committed_at < $1 and (t.kept is null or c.version <= t.kept) as old
         from tenant t
         cross join lateral (
           select c.version, c.committed_at from changes c
            where c.tenant_id = t.id and c.version > t.pruned
            order by c.version limit $2) c
     ), through as (
       select t.id, t.pruned,
              coalesce((select min(version) - 1 from win where not old), (select max(version) from win)) as v
         from tenant t
     ), deleted as (
       delete from changes c using through p
        where c.tenant_id = p.id and c.version > p.pruned and c.version <= p.v
       returning 1
     ), raised as (
       update tenants t set pruned_through_version = p.v
         from through p
        where t.id = p.id and p.v > t.pruned_through_version
       returning 1
     )
     select (select id from tenant) as tenant, (select count(*) from deleted)::int as deleted`,
    [olderThan, limit, afterTenant],
  );
  const row = rows[0]!;
  return { tenant: row.tenant ?? undefined, deleted: row.deleted };
}

/**
 * Prunes the change log through every tenant, one pruneChanges step of at most `batch` changes at a time.
 * `afterStep` runs after each step that leaves work to do (the maintenance loop pauses there) and ends the
 * walk by returning false. Returns how many changes were deleted.
 */
export async function pruneChangeLog(
  db: Queryable,
  olderThan: Date,
  batch: number,
  afterStep: (step: { tenant: string | undefined; deleted: number }) => boolean | Promise<boolean> = () =>
    true,
): Promise<number> {
  let deleted = 0;
  for (let after: string | undefined = ''; after !== undefined;) {
    const step = await pruneChanges(db, olderThan, batch, after);
    deleted += step.deleted;
    // A full batch: the same tenant may have more.
    if (step.deleted < batch) after = step.tenant;
    if (after !== undefined && !(await afterStep(step))) break;
  }
  return deleted;
}
