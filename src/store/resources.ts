// Rows of people, absence definitions and shift definitions (table resources): the canonical body and the
// changeVersion it was written at. Writes run inside the ingest transaction (store/ingest.ts).

import { canonicalResource, type ResourceBody, type ResourceCollection } from '../domain/collections.ts';
import type { PeopleFilter } from '../domain/people-filter.ts';
import type { Queryable } from './db.ts';

export interface StoredResource {
  version: number;
  body: ResourceBody;
}

interface Row {
  change_version: number;
  body: ResourceBody;
}

const fromRow = (collection: ResourceCollection, row: Row): StoredResource => ({
  version: row.change_version,
  body: canonicalResource(collection, row.body),
});

export async function getResource(
  db: Queryable,
  tenant: string,
  collection: ResourceCollection,
  id: number,
): Promise<StoredResource | undefined> {
  const rows = await db.query<Row>(
    'select change_version, body from resources where tenant_id = $1 and collection = $2 and id = $3',
    [tenant, collection, id],
  );
  return rows[0] && fromRow(collection, rows[0]);
}

/**
 * One page of the collection in id order, after `afterId` (0 for the first page); for people, only those
 * the filter admits (each of its lists, when not null, must hold the person's value).
 */
export async function listResources(
  db: Queryable,
  tenant: string,
  collection: ResourceCollection,
  afterId: number,
  limit: number,
  filter: PeopleFilter | null = null,
): Promise<StoredResource[]> {
  const rows = await db.query<Row>(
    `select change_version, body from resources
      where tenant_id = $1 and collection = $2 and id > $3
        and ($5::bigint[] is null or id = any($5::bigint[]))
        and ($6::text[] is null or body->>'employeeNumber' = any($6::text[]))
        and ($7::text[] is null or body->>'badgeNumber' = any($7::text[]))
      order by id limit $4`,
    [
      tenant,
      collection,
      afterId,
      limit,
      filter?.ids ?? null,
      filter?.employeeNumbers ?? null,
      filter?.badgeNumbers ?? null,
    ],
  );
  return rows.map((r) => fromRow(collection, r));
}

export async function upsertResource(
  tx: Queryable,
  tenant: string,
  collection: ResourceCollection,
  version: number,
  body: ResourceBody,
): Promise<void> {
  await tx.query(
    `insert into resources (tenant_id, collection, id, change_version, body) values ($1, $2, $3, $4, $5::jsonb)
     on conflict (tenant_id, collection, id)
       do update set change_version = excluded.change_version, body = excluded.body`,
    [tenant, collection, body.id, version, JSON.stringify(body)],
  );
}

export async function deleteResourceRow(
  tx: Queryable,
  tenant: string,
  collection: ResourceCollection,
  id: number,
): Promise<void> {
  await tx.query('delete from resources where tenant_id = $1 and collection = $2 and id = $3', [
    tenant,
    collection,
    id,
  ]);
}

/** Which of the (collection, id) pairs exist, in one statement; the result holds "collection:id" keys. */
export async function existingResources(
  db: Queryable,
  tenant: string,
  pairs: { collection: ResourceCollection; id: number }[],
): Promise<Set<string>> {
  if (pairs.length === 0) return new Set();
  const unique = [...new Map(pairs.map((p) => [`${p.collection}:${p.id}`, p])).values()];
  const rows = await db.query<{ collection: string; id: number }>(
    `select r.collection, r.id from resources r
       join unnest($2::text[], $3::bigint[]) as k(collection, id) on r.collection = k.collection and r.id = k.id
      where r.tenant_id = $1`,
    [tenant, unique.map((p) => p.collection), unique.map((p) => p.id)],
  );
  return new Set(rows.map((r) => `${r.collection}:${r.id}`));
}

/** How many absences still link to the person or definition (a delete is refused while any do). */
export async function countAbsencesLinkingTo(
  db: Queryable,
  tenant: string,
  collection: ResourceCollection,
  id: number,
): Promise<number> {
  const condition =
    collection === 'people'
      ? 'person_id = $2'
      : collection === 'shift-definitions'
        ? 'shift_definition_id = $2'
        : '(resulting_absence_definition_id = $2 or requested_absence_definition_id = $2)';
  const rows = await db.query<{ n: number }>(
    `select count(*)::int as n from absences where tenant_id = $1 and ${condition}`,
    [tenant, id],
  );
  return rows[0]?.n ?? 0;
}
