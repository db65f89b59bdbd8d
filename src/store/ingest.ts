// Ingest (SPEC §1.4, §2): every write of a person, definition or absence is atomic, takes the tenant lock
// first, compares with the stored object (an identical write records nothing), appends the changes to the log
// and writes the rows with the versions the log handed out. A batch of absences whose links are ids is one
// statement (store/absences.ts writeAbsences); links by external reference are resolved in bulk first, in the
// same transaction.

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
  type IdLink,
  type LinkDraft,
  type ResourceBody,
  type ResourceCollection,
  type ResourceDraft,
  type Versioned,
} from '../domain/collections.ts';
import { formatChangeVersion } from '../domain/change-version.ts';
import { AppError, BodyValidationError, type ValidationIssue } from '../errors.ts';
import { queueAbsenceWrite } from './absence-write-queue.ts';
import { encodeAbsenceWrites, writeAbsences, type AbsenceWriteResult } from './absences.ts';
import { appendChanges } from './changes.ts';
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

type LabelledDraft = { draft: AbsenceDraft; label: string };

/** 400 UnknownLink listing, in batch and field order, each link for which `isUnknown` holds. */
function unknownLinkError(
  drafts: LabelledDraft[],
  isUnknown: (collection: ResourceCollection, link: LinkDraft) => boolean,
): AppError | undefined {
  const unknown: string[] = [];
  for (const { draft, label } of drafts) {
    for (const name of ABSENCE_LINK_NAMES) {
      const link = draft[name];
      const collection = ABSENCE_LINKS[name];
      if (link && isUnknown(collection, link)) {
        unknown.push(`${label}${name}: no ${SINGULAR[collection]} has ${describeLink(link)} in this tenant.`);
      }
    }
  }
  if (unknown.length === 0) return undefined;
  return new AppError(
    'UnknownLink',
    `${unknown.length === 1 ? 'A link names' : `${unknown.length} links name`} no object of this tenant; create the person or definition first.`,
    unknown,
  );
}

/** The draft's links when every one is by id (null for an absent optional link); undefined otherwise. */
function idsOf(draft: AbsenceDraft): Record<AbsenceLinkName, number | null> | undefined {
  const ids = {} as Record<AbsenceLinkName, number | null>;
  for (const name of ABSENCE_LINK_NAMES) {
    const link = draft[name];
    if (link && !('id' in link)) return undefined;
    ids[name] = link ? link.id : null;
  }
  return ids;
}

/** The absences of drafts whose links are all ids, or undefined when any draft links by reference. */
function resolveByIds(drafts: LabelledDraft[]): AbsenceBody[] | undefined {
  const bodies: AbsenceBody[] = [];
  for (const { draft } of drafts) {
    const ids = idsOf(draft);
    if (!ids) return undefined;
    bodies.push(resolveAbsence(draft, ids));
  }
  return bodies;
}

/**
 * Resolves every link of every draft with two statements (ids that exist; reference values to ids).
 * Throws 400 UnknownLink listing each link that names nothing in the tenant, and a validation error when a
 * request.id carries another person's id.
 */
async function resolveAbsenceLinks(
  tx: Queryable,
  tenant: string,
  drafts: LabelledDraft[],
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
  const idOf = (collection: ResourceCollection, link: LinkDraft): number | undefined =>
    'id' in link
      ? existing.has(`${collection}:${link.id}`)
        ? link.id
        : undefined
      : lookup({ collection, ...link.reference });
  const unknown = unknownLinkError(drafts, (collection, link) => idOf(collection, link) === undefined);
  if (unknown) throw unknown;
  const bodies = drafts.map(({ draft }) => {
    const ids = {} as Record<AbsenceLinkName, number | null>;
    for (const name of ABSENCE_LINK_NAMES) {
      const link = draft[name];
      ids[name] = link ? idOf(ABSENCE_LINKS[name], link)! : null;
    }
    return resolveAbsence(draft, ids);
  });
  const issues = requestIssues(drafts, bodies);
  if (issues.length > 0) throw new BodyValidationError(issues);
  return bodies;
}

/** The request.id of each absence must carry its person's id. */
function requestIssues(drafts: LabelledDraft[], bodies: AbsenceBody[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  bodies.forEach((body, i) => {
    const problem = requestPersonProblem(body);
    if (problem) issues.push({ property: `${drafts[i]!.label}request.id`, message: problem });
  });
  return issues;
}

interface AbsenceWrite extends AbsenceWriteResult {
  bodies: AbsenceBody[];
}

/**
 * The one absence write path: upserts (each labelled for error messages) and deletes, all or nothing. When
 * every link is an id (the common case) the batch is encoded before anything is locked and applied by one
 * autocommitted statement that also checks the links, together with other writes of the tenant queued at the
 * same time (store/absence-write-queue.ts); links by reference are resolved in a transaction under the tenant
 * lock first, with the same statement as its last step.
 */
async function writeAbsenceBatch(
  db: Db,
  tenant: string,
  upserts: LabelledDraft[],
  deletes: number[],
): Promise<AbsenceWrite> {
  const direct = resolveByIds(upserts);
  if (direct && requestIssues(upserts, direct).length === 0) {
    const result = await queueAbsenceWrite(db, tenant, encodeAbsenceWrites(direct, deletes));
    if (result.unknownLinks.length > 0) {
      const unknown = new Set(result.unknownLinks);
      throw unknownLinkError(upserts, (collection, link) =>
        unknown.has(`${collection}:${(link as IdLink).id}`),
      )!;
    }
    return { ...result, bodies: direct };
  }
  return db.transaction(async (tx) => {
    await lock(tx, tenant);
    const bodies = await resolveAbsenceLinks(tx, tenant, upserts);
    const result = await writeAbsences(tx, tenant, encodeAbsenceWrites(bodies, deletes));
    // Resolved under the lock the write holds too, so every link still names its object.
    if (result.unknownLinks.length > 0)
      throw new Error(`Links vanished under the tenant lock: ${result.unknownLinks.join(', ')}`);
    return { ...result, bodies };
  });
}

/** Upserts one absence (PUT /absences/{id}). */
export async function putAbsence(
  db: Db,
  tenant: string,
  draft: AbsenceDraft,
): Promise<PutResult<AbsenceBody>> {
  const write = await writeAbsenceBatch(db, tenant, [{ draft, label: '' }], []);
  const changed = write.upserted === 1;
  return {
    created: write.created === 1,
    changed,
    object: withChangeVersion(changed ? write.lastVersion! : write.unchangedVersion!, write.bodies[0]!),
  };
}

/** Deletes one absence, recording a Delete change with its date and person; false when it does not exist. */
export async function deleteAbsence(db: Db, tenant: string, id: number): Promise<boolean> {
  return (await writeAbsenceBatch(db, tenant, [], [id])).deleted === 1;
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
  const write = await writeAbsenceBatch(
    db,
    tenant,
    upserts.map((draft, i) => ({ draft, label: `upsert.${i}.` })),
    deletes,
  );
  return {
    upserted: write.upserted,
    unchanged: upserts.length - write.upserted,
    deleted: write.deleted,
    lastChangeVersion: write.lastVersion === null ? null : formatChangeVersion(write.lastVersion),
  };
}
