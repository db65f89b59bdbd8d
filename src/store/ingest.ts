// Ingest (SPEC §1.4, §2): every write of a person, definition or absence is one transaction that takes the
// tenant lock first, compares with the stored object (an identical write records nothing), appends the
// changes to the log and writes the rows with the versions the log handed out. Links and external references
// are resolved in bulk, so a batch of 10,000 absences costs a handful of statements.

import {
  ABSENCE_LINK_NAMES,
  ABSENCE_LINKS,
  canonicalResource,
  predefinedReferencesOf,
  requestPersonProblem,
  resolveAbsence,
  sameObject,
  withChangeVersion,
  type AbsenceBody,
  type AbsenceDraft,
  type AbsenceLinkName,
  type LinkDraft,
  type ResourceBody,
  type ResourceCollection,
  type ResourceDraft,
  type Versioned,
} from '../domain/collections.ts';
import { formatChangeVersion } from '../domain/change-version.ts';
import { AppError, BodyValidationError, type ValidationIssue } from '../errors.ts';
import { deleteAbsenceRows, getAbsences, upsertAbsences } from './absences.ts';
import { appendChanges, type NewChange } from './changes.ts';
import type { Db, Queryable } from './db.ts';
import {
  customReferencesOf,
  deleteReferences,
  findReferenceConflicts,
  replaceReferences,
  resolveReferences,
} from './external-references.ts';
import {
  countAbsencesLinkingTo,
  deleteResourceRow,
  existingResources,
  getResource,
  upsertResource,
} from './resources.ts';
import { lockTenant } from './tenants.ts';

export interface PutResult<T> {
  /** True when the object did not exist before. */
  created: boolean;
  /** False when the write equalled the stored object: no change was recorded. */
  changed: boolean;
  object: Versioned<T>;
}

export interface BatchResult {
  upserted: number;
  unchanged: number;
  deleted: number;
  /** The changeVersion of the batch's last change, or null when it recorded none. */
  lastChangeVersion: string | null;
}

const SINGULAR: Record<ResourceCollection, string> = {
  people: 'person',
  'absence-definitions': 'absence definition',
  'shift-definitions': 'shift definition',
};

async function lock(tx: Queryable, tenant: string): Promise<void> {
  if (!(await lockTenant(tx, tenant))) throw new Error(`Tenant ${tenant} does not exist.`);
}

/**
 * Upserts a person or definition with its references: the predefined ones follow the fields, the custom
 * ones are replaced by `draft.customReferences` when given and kept otherwise. A reference value that
 * another object of the collection holds → 409 ExternalReferenceInUse. A change in the custom references
 * alone is a change too (the object is re-recorded with a new changeVersion).
 */
export async function putResource(
  db: Db,
  tenant: string,
  collection: ResourceCollection,
  draft: ResourceDraft,
): Promise<PutResult<ResourceBody>> {
  const body = canonicalResource(collection, draft.body);
  return db.transaction(async (tx) => {
    await lock(tx, tenant);
    const existing = await getResource(tx, tenant, collection, body.id);
    const storedCustom = existing ? await customReferencesOf(tx, tenant, collection, body.id) : {};
    const custom = draft.customReferences ?? storedCustom;
    if (existing && sameObject(existing.body, body) && sameObject(storedCustom, custom)) {
      return { created: false, changed: false, object: withChangeVersion(existing.version, existing.body) };
    }
    const refs = { ...predefinedReferencesOf(collection, body), ...custom };
    const conflicts = await findReferenceConflicts(tx, tenant, collection, body.id, refs);
    if (conflicts.length > 0) {
      throw new AppError(
        'ExternalReferenceInUse',
        `Another ${SINGULAR[collection]} already has ${conflicts.length === 1 ? 'this external reference' : 'these external references'}; reference values must be unique within ${collection}.`,
        conflicts.map(
          (c) => `${c.name} ${JSON.stringify(c.value)} belongs to ${SINGULAR[collection]} ${c.entityId}.`,
        ),
      );
    }
    const [version] = await appendChanges(tx, tenant, [
      {
        collection,
        entityId: body.id,
        changeType: 'InsertOrUpdate',
        data: body as unknown as Record<string, unknown>,
      },
    ]);
    await upsertResource(tx, tenant, collection, version!, body);
    await replaceReferences(tx, tenant, collection, body.id, refs);
    return { created: !existing, changed: true, object: withChangeVersion(version!, body) };
  });
}

/**
 * Deletes a person or definition and its references, recording a Delete change. Returns false when it does
 * not exist; throws 409 EntityInUse while absences still link to it.
 */
export async function deleteResource(
  db: Db,
  tenant: string,
  collection: ResourceCollection,
  id: number,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    await lock(tx, tenant);
    if (!(await getResource(tx, tenant, collection, id))) return false;
    const users = await countAbsencesLinkingTo(tx, tenant, collection, id);
    if (users > 0) {
      throw new AppError(
        'EntityInUse',
        `${SINGULAR[collection][0]!.toUpperCase()}${SINGULAR[collection].slice(1)} ${id} is still linked from ${users} absence${users === 1 ? '' : 's'}; delete or relink ${users === 1 ? 'it' : 'them'} first.`,
      );
    }
    await appendChanges(tx, tenant, [{ collection, entityId: id, changeType: 'Delete', data: { id } }]);
    await deleteResourceRow(tx, tenant, collection, id);
    await deleteReferences(tx, tenant, collection, [id]);
    return true;
  });
}

const describeLink = (link: LinkDraft): string =>
  'id' in link ? `id ${link.id}` : `${link.reference.name} ${JSON.stringify(link.reference.value)}`;

/**
 * Resolves every link of every draft with two statements (ids that exist; reference values to ids).
 * Throws 400 UnknownLink listing each link that names nothing in the tenant, and a validation error when a
 * request.id carries another person's id.
 */
async function resolveAbsenceLinks(
  tx: Queryable,
  tenant: string,
  drafts: { draft: AbsenceDraft; label: string }[],
): Promise<AbsenceBody[]> {
  const byId: { collection: ResourceCollection; id: number }[] = [];
  const byReference: { collection: string; name: string; value: string }[] = [];
  for (const { draft } of drafts) {
    for (const name of ABSENCE_LINK_NAMES) {
      const link = draft[name];
      if (!link) continue;
      if ('id' in link) byId.push({ collection: ABSENCE_LINKS[name], id: link.id });
      else byReference.push({ collection: ABSENCE_LINKS[name], ...link.reference });
    }
  }
  const existing = await existingResources(tx, tenant, byId);
  const lookup = await resolveReferences(tx, tenant, byReference);
  const unknown: string[] = [];
  const issues: ValidationIssue[] = [];
  const bodies: AbsenceBody[] = [];
  for (const { draft, label } of drafts) {
    const ids = {} as Record<AbsenceLinkName, number | null>;
    for (const name of ABSENCE_LINK_NAMES) {
      const link = draft[name];
      const collection = ABSENCE_LINKS[name];
      if (!link) {
        ids[name] = null;
        continue;
      }
      const id =
        'id' in link
          ? existing.has(`${collection}:${link.id}`)
            ? link.id
            : undefined
          : lookup({ collection, ...link.reference });
      if (id === undefined) {
        unknown.push(`${label}${name}: no ${SINGULAR[collection]} has ${describeLink(link)} in this tenant.`);
      }
      ids[name] = id ?? null;
    }
    if (unknown.length > 0) continue;
    const body = resolveAbsence(draft, ids);
    const problem = requestPersonProblem(body);
    if (problem) issues.push({ property: `${label}request.id`, message: problem });
    bodies.push(body);
  }
  if (unknown.length > 0) {
    throw new AppError(
      'UnknownLink',
      `${unknown.length === 1 ? 'A link names' : `${unknown.length} links name`} no object of this tenant; create the person or definition first.`,
      unknown,
    );
  }
  if (issues.length > 0) throw new BodyValidationError(issues);
  return bodies;
}

interface AbsenceWrite {
  results: PutResult<AbsenceBody>[];
  deleted: number;
  lastVersion: number | null;
}

/** The one absence write path: upserts (each labelled for error messages) and deletes in one transaction. */
async function writeAbsences(
  db: Db,
  tenant: string,
  upserts: { draft: AbsenceDraft; label: string }[],
  deletes: number[],
): Promise<AbsenceWrite> {
  return db.transaction(async (tx) => {
    await lock(tx, tenant);
    const bodies = await resolveAbsenceLinks(tx, tenant, upserts);
    const stored = await getAbsences(tx, tenant, [...bodies.map((b) => b.id), ...deletes]);
    const changes: NewChange[] = [];
    const changedBodies: AbsenceBody[] = [];
    for (const body of bodies) {
      const before = stored.get(body.id);
      if (before && sameObject(before.body, body)) continue;
      changedBodies.push(body);
      changes.push({
        collection: 'absences',
        entityId: body.id,
        changeType: 'InsertOrUpdate',
        data: body as unknown as Record<string, unknown>,
        absenceDate: body.date,
        personId: body.person.id,
        ...(before && (before.body.date !== body.date || before.body.person.id !== body.person.id)
          ? { previousAbsenceDate: before.body.date, previousPersonId: before.body.person.id }
          : {}),
      });
    }
    const deletedIds = deletes.filter((id) => stored.has(id));
    for (const id of deletedIds) {
      const before = stored.get(id)!.body;
      changes.push({
        collection: 'absences',
        entityId: id,
        changeType: 'Delete',
        data: { id },
        absenceDate: before.date,
        personId: before.person.id,
      });
    }
    const versions = await appendChanges(tx, tenant, changes);
    const versionOf = new Map(changes.map((c, i) => [`${c.changeType}:${c.entityId}`, versions[i]!]));
    await upsertAbsences(
      tx,
      tenant,
      changedBodies.map((body) => ({ version: versionOf.get(`InsertOrUpdate:${body.id}`)!, body })),
    );
    await deleteAbsenceRows(tx, tenant, deletedIds);
    const results = bodies.map((body): PutResult<AbsenceBody> => {
      const version = versionOf.get(`InsertOrUpdate:${body.id}`);
      const before = stored.get(body.id);
      return version === undefined
        ? { created: false, changed: false, object: withChangeVersion(before!.version, before!.body) }
        : { created: !before, changed: true, object: withChangeVersion(version, body) };
    });
    return { results, deleted: deletedIds.length, lastVersion: versions.at(-1) ?? null };
  });
}

/** Upserts one absence (PUT /absences/{id}). */
export async function putAbsence(
  db: Db,
  tenant: string,
  draft: AbsenceDraft,
): Promise<PutResult<AbsenceBody>> {
  const { results } = await writeAbsences(db, tenant, [{ draft, label: '' }], []);
  return results[0]!;
}

/** Deletes one absence, recording a Delete change with its date and person; false when it does not exist. */
export async function deleteAbsence(db: Db, tenant: string, id: number): Promise<boolean> {
  return (await writeAbsences(db, tenant, [], [id])).deleted === 1;
}

/**
 * Applies a batch all-or-nothing in one transaction. Upserts equal to the stored absence count as unchanged
 * and record nothing; deletes of ids that do not exist are skipped (so a retried batch succeeds).
 */
export async function applyAbsenceBatch(
  db: Db,
  tenant: string,
  upserts: AbsenceDraft[],
  deletes: number[],
): Promise<BatchResult> {
  const write = await writeAbsences(
    db,
    tenant,
    upserts.map((draft, i) => ({ draft, label: `upsert.${i}.` })),
    deletes,
  );
  const upserted = write.results.filter((r) => r.changed).length;
  return {
    upserted,
    unchanged: write.results.length - upserted,
    deleted: write.deleted,
    lastChangeVersion: write.lastVersion === null ? null : formatChangeVersion(write.lastVersion),
  };
}
