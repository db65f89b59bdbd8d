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
 * Deletes up to `limit` changes committed before `olderThan`, oldest first, and raises each tenant's
 * pruned_through_version, so delta tokens from before the pruned range answer 410. Returns the count.
 *
 * A change an Enabled webhook has not yet moved into its deliveries (its cursor is below it) is kept, so
 * pruning never loses an event of a webhook whose workers fell behind or were away.
 */
export async function pruneChanges(db: Queryable, olderThan: Date, limit: number): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `with kept_above as (
       -- Per tenant and collection, the lowest cursor of its enabled webhooks: changes above it wait.
       select tenant_id, collection,
              min(greatest(coalesce(delivery_cursor, created_version), created_version)) as version
         from webhooks where status = 'Enabled' and deleted_at is null
        group by tenant_id, collection
     ), doomed as (
       select c.tenant_id, c.version from changes c
         left join kept_above k on k.tenant_id = c.tenant_id and k.collection = c.collection
        where c.committed_at < $1 and (k.version is null or c.version <= k.version)
        order by c.committed_at limit $2
     ), deleted as (
       delete from changes c using doomed d where c.tenant_id = d.tenant_id and c.version = d.version
       returning c.tenant_id, c.version
     ), raised as (
       update tenants t set pruned_through_version = greatest(t.pruned_through_version, m.v)
         from (select tenant_id, max(version) as v from deleted group by tenant_id) m
        where t.id = m.tenant_id
       returning 1
     )
     select count(*)::int as n from deleted`,
    [olderThan, limit],
  );
  return rows[0]?.n ?? 0;
}
