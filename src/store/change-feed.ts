// Reading the change log for delta (SPEC §1.4, §2): the changes of one collection after a version, in
// version order, with the absences date/person filter applied to the stored absence_date/person_id (so
// deletes are filtered too) — or to where an updated absence was before, so a consumer learns it moved away.
// A filter without an end date follows every later date. Delivery reads the same log through its own claims.

import type { AbsenceFilter } from '../domain/absence-filter.ts';
import type { Queryable } from './db.ts';
import type { ChangeType } from './changes.ts';

export interface FeedChange {
  version: number;
  changeType: ChangeType;
  /** The object as written, changeVersion first; {changeVersion, id} for a Delete. */
  data: Record<string, unknown>;
}

/**
 * Up to `limit` changes of `collection` with after < version <= through, in version order. `through` must
 * be a version the caller read as committed (tenants.last_version) before this call: commit order = version
 * order, so nothing at or below it can still appear later.
 */
export async function readChanges(
  db: Queryable,
  tenant: string,
  collection: string,
  after: number,
  through: number,
  filter: AbsenceFilter | null,
  limit: number,
): Promise<FeedChange[]> {
  if (through <= after) return [];
  const rows = await db.query<{
    version: number;
    change_type: ChangeType;
    data: Record<string, unknown> | string;
  }>(
    `select version, change_type, data from changes
      where tenant_id = $1 and collection = $2 and version > $3 and version <= $4
        and ((($5::date is null or (absence_date >= $5::date and ($6::date is null or absence_date <= $6::date)))
              and ($7::bigint[] is null or person_id = any($7::bigint[])))
          or (previous_absence_date is not null
              and ($5::date is null
                or (previous_absence_date >= $5::date and ($6::date is null or previous_absence_date <= $6::date)))
              and ($7::bigint[] is null or previous_person_id = any($7::bigint[]))))
      order by version
      limit $8`,
    [
      tenant,
      collection,
      after,
      through,
      filter?.from ?? null,
      filter?.to ?? null,
      filter?.personIds ?? null,
      limit,
    ],
  );
  return rows.map((r) => ({
    version: r.version,
    changeType: r.change_type,
    data: typeof r.data === 'string' ? (JSON.parse(r.data) as Record<string, unknown>) : r.data,
  }));
}
