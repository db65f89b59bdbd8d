// External references of people and definitions (SPEC §1.4, §1.5): predefined ones kept in step with the
// object's fields and custom ones set on PUT, one row per (collection, name, value) so that a value names at
// most one object. Also the batched resolution that adds `externalReferences` maps to objects for reads,
// delta and webhook event bodies.

import {
  ABSENCE_LINK_NAMES,
  ABSENCE_LINKS,
  predefinedReferencesOf,
  isResourceCollection,
  type ResourceBody,
} from '../domain/collections.ts';
import type { ReferenceSelection } from '../domain/external-references.ts';
import type { CollectionName } from '../domain/scopes.ts';
import type { Queryable } from './db.ts';

export interface ReferenceKey {
  collection: string;
  name: string;
  value: string;
}

export interface ReferenceOwner extends ReferenceKey {
  entityId: number;
}

const keyOf = (collection: string, name: string, value: string): string =>
  `${collection}\u0000${name}\u0000${value}`;

/** The custom references (names without @) of one object, sorted by name. */
export async function customReferencesOf(
  db: Queryable,
  tenant: string,
  collection: string,
  entityId: number,
): Promise<Record<string, string>> {
  const rows = await db.query<{ name: string; value: string }>(
    `select name, value from external_references
      where tenant_id = $1 and collection = $2 and entity_id = $3 and name not like '@%'`,
    [tenant, collection, entityId],
  );
  // Sorted in JS (code-unit order), as the domain sorts the maps it compares; SQL collation may differ.
  const entries = rows.map((r): [string, string] => [r.name, r.value]);
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The references among `refs` whose value already names another object of the collection. */
export async function findReferenceConflicts(
  db: Queryable,
  tenant: string,
  collection: string,
  entityId: number,
  refs: Record<string, string>,
): Promise<ReferenceOwner[]> {
  const entries = Object.entries(refs);
  if (entries.length === 0) return [];
  return db.query<ReferenceOwner>(
    `select r.collection, r.name, r.value, r.entity_id as "entityId"
       from external_references r
       join unnest($3::text[], $4::text[]) as k(name, value) on r.name = k.name and r.value = k.value
      where r.tenant_id = $1 and r.collection = $2 and r.entity_id <> $5
      order by r.name`,
    [tenant, collection, entries.map(([n]) => n), entries.map(([, v]) => v), entityId],
  );
}

/** Makes `refs` the complete set of references of one object. */
export async function replaceReferences(
  tx: Queryable,
  tenant: string,
  collection: string,
  entityId: number,
  refs: Record<string, string>,
): Promise<void> {
  await deleteReferences(tx, tenant, collection, [entityId]);
  const entries = Object.entries(refs);
  if (entries.length === 0) return;
  await tx.query(
    `insert into external_references (tenant_id, collection, name, value, entity_id)
     select $1, $2, k.name, k.value, $5 from unnest($3::text[], $4::text[]) as k(name, value)`,
    [tenant, collection, entries.map(([n]) => n), entries.map(([, v]) => v), entityId],
  );
}

export async function deleteReferences(
  tx: Queryable,
  tenant: string,
  collection: string,
  entityIds: number[],
): Promise<void> {
  if (entityIds.length === 0) return;
  await tx.query(
    'delete from external_references where tenant_id = $1 and collection = $2 and entity_id = any($3::bigint[])',
    [tenant, collection, entityIds],
  );
}

/** Resolves reference values to ids in one statement; the map is keyed by collection, name and value. */
export async function resolveReferences(
  db: Queryable,
  tenant: string,
  keys: ReferenceKey[],
): Promise<(key: ReferenceKey) => number | undefined> {
  const unique = [...new Map(keys.map((k) => [keyOf(k.collection, k.name, k.value), k])).values()];
  const found = new Map<string, number>();
  if (unique.length > 0) {
    const rows = await db.query<ReferenceOwner>(
      `select r.collection, r.name, r.value, r.entity_id as "entityId"
         from external_references r
         join unnest($2::text[], $3::text[], $4::text[]) as k(collection, name, value)
           on r.collection = k.collection and r.name = k.name and r.value = k.value
        where r.tenant_id = $1`,
      [tenant, unique.map((k) => k.collection), unique.map((k) => k.name), unique.map((k) => k.value)],
    );
    for (const r of rows) found.set(keyOf(r.collection, r.name, r.value), r.entityId);
  }
  return (key) => found.get(keyOf(key.collection, key.name, key.value));
}

/**
 * The object of `collection` that one of `names` (tried in order) gives the value `value`, for path lookups
 * such as /people/E042?externalReferences=(people,@employee-number).
 */
export async function findEntityByReference(
  db: Queryable,
  tenant: string,
  collection: string,
  names: string[],
  value: string,
): Promise<number | undefined> {
  if (names.length === 0) return undefined;
  const rows = await db.query<{ name: string; entityId: number }>(
    `select name, entity_id as "entityId" from external_references
      where tenant_id = $1 and collection = $2 and name = any($3::text[]) and value = $4`,
    [tenant, collection, names, value],
  );
  for (const name of names) {
    const row = rows.find((r) => r.name === name);
    if (row) return row.entityId;
  }
  return undefined;
}

/** For each (collection, entity id): the selected reference values, read in one statement. */
async function referenceValues(
  db: Queryable,
  tenant: string,
  wanted: Map<string, Set<number>>,
  selection: ReferenceSelection,
): Promise<Map<string, Record<string, string>>> {
  const collections: string[] = [];
  const ids: number[] = [];
  for (const [collection, set] of wanted) {
    for (const id of set) {
      collections.push(collection);
      ids.push(id);
    }
  }
  const names = Object.entries(selection).flatMap(([c, ns]) => ns.map((n) => [c, n] as const));
  const out = new Map<string, Record<string, string>>();
  if (ids.length === 0 || names.length === 0) return out;
  const rows = await db.query<ReferenceOwner>(
    `select r.collection, r.name, r.value, r.entity_id as "entityId"
       from external_references r
       join unnest($2::text[], $3::bigint[]) as e(collection, id)
         on r.collection = e.collection and r.entity_id = e.id
       join unnest($4::text[], $5::text[]) as n(collection, name)
         on r.collection = n.collection and r.name = n.name
      where r.tenant_id = $1`,
    [tenant, collections, ids, names.map(([c]) => c), names.map(([, n]) => n)],
  );
  const byEntity = new Map<string, Map<string, string>>();
  for (const r of rows) {
    const key = `${r.collection}:${r.entityId}`;
    let map = byEntity.get(key);
    if (!map) byEntity.set(key, (map = new Map<string, string>()));
    map.set(r.name, r.value);
  }
  // Maps keep the order the selection names them in.
  for (const [collection, set] of wanted) {
    for (const id of set) {
      const found = byEntity.get(`${collection}:${id}`);
      const refs: Record<string, string> = {};
      for (const name of selection[collection] ?? []) {
        const value = found?.get(name);
        if (value !== undefined) refs[name] = value;
      }
      out.set(`${collection}:${id}`, refs);
    }
  }
  return out;
}

/** A copy of obj with `externalReferences` placed right after its `id`. */
function withReferences(obj: Record<string, unknown>, refs: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let placed = false;
  for (const [key, value] of Object.entries(obj)) {
    if (key === 'externalReferences') continue;
    out[key] = value;
    if (key === 'id') {
      out.externalReferences = refs;
      placed = true;
    }
  }
  if (!placed) out.externalReferences = refs;
  return out;
}

const linkId = (value: unknown): number | undefined => {
  const id = (value as { id?: unknown } | null)?.id;
  return typeof id === 'number' ? id : undefined;
};

/**
 * Adds the requested external references (SPEC §1.5) to full objects of `collection` (InsertOrUpdate data,
 * list and item reads): for absences inside `person`, `resultingAbsenceDefinition`,
 * `requestedAbsenceDefinition` and `shiftDefinition` (null links stay null); for people and definitions on
 * the object itself. Each map sits next to the `id`, in selection order; a name with no value for that
 * object is left out. Predefined references of a person or definition object are taken from its own fields
 * (so they match the data even in an old change); everything else is read from the table in one statement.
 * Returns new objects; an empty selection returns the input unchanged. Never pass Delete data.
 */
export async function attachExternalReferences<T extends object>(
  db: Queryable,
  tenant: string,
  collection: CollectionName,
  objects: readonly T[],
  selection: ReferenceSelection | undefined,
): Promise<T[]> {
  if (!selection || Object.keys(selection).length === 0 || objects.length === 0) return [...objects];
  const records = objects as unknown as Record<string, unknown>[];
  const wanted = new Map<string, Set<number>>();
  const want = (c: string, id: number | undefined) => {
    if (id === undefined || !selection[c]) return;
    let set = wanted.get(c);
    if (!set) wanted.set(c, (set = new Set<number>()));
    set.add(id);
  };
  if (collection === 'absences') {
    for (const o of records)
      for (const link of ABSENCE_LINK_NAMES) want(ABSENCE_LINKS[link], linkId(o[link]));
  } else {
    for (const o of records) want(collection, linkId(o));
  }
  const values = await referenceValues(db, tenant, wanted, selection);
  const refsOf = (c: string, id: number): Record<string, string> => values.get(`${c}:${id}`) ?? {};

  if (collection === 'absences') {
    return records.map((o) => {
      const out: Record<string, unknown> = { ...o };
      for (const link of ABSENCE_LINK_NAMES) {
        const target = ABSENCE_LINKS[link];
        const id = linkId(o[link]);
        if (id !== undefined && selection[target]) {
          out[link] = withReferences(o[link] as Record<string, unknown>, refsOf(target, id));
        }
      }
      return out as T;
    });
  }
  const names = selection[collection] ?? [];
  return records.map((o) => {
    const id = linkId(o);
    if (id === undefined || !isResourceCollection(collection)) return o as T;
    const stored = refsOf(collection, id);
    const own = predefinedReferencesOf(collection, o as unknown as ResourceBody);
    const refs: Record<string, string> = {};
    for (const name of names) {
      const value = name.startsWith('@') ? own[name] : stored[name];
      if (value !== undefined) refs[name] = value;
    }
    return withReferences(o, refs) as T;
  });
}

/**
 * attachExternalReferences for change-log items ({changeType, data}), as the delta endpoint and webhook
 * event bodies need them: InsertOrUpdate data gains the references, Delete data ({changeVersion, id}) stays.
 */
export async function attachExternalReferencesToChanges<
  C extends { changeType: string; data: Record<string, unknown> },
>(
  db: Queryable,
  tenant: string,
  collection: CollectionName,
  changes: readonly C[],
  selection: ReferenceSelection | undefined,
): Promise<C[]> {
  if (!selection || Object.keys(selection).length === 0) return [...changes];
  const upserts = changes.filter((c) => c.changeType !== 'Delete');
  const decorated = await attachExternalReferences(
    db,
    tenant,
    collection,
    upserts.map((c) => c.data),
    selection,
  );
  const byChange = new Map(upserts.map((c, i) => [c, decorated[i]!]));
  return changes.map((c) => {
    const data = byChange.get(c);
    return data ? { ...c, data } : c;
  });
}
