// The collections API (SPEC §1.4, §1.5): paged reads with filter, external references and the delta initial
// load for absences, people, absence definitions and shift definitions; ingest by PUT/DELETE and the absences
// batch. Validation is schema first (structure) then domain (semantics); writes go through store/ingest.ts.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { filterKey, parseAbsenceFilter, type AbsenceFilter } from '../domain/absence-filter.ts';
import { parsePeopleFilter, peopleFilterKey, type PeopleFilter } from '../domain/people-filter.ts';
import {
  RESOURCE_COLLECTIONS,
  validateAbsence,
  validateAbsenceBatch,
  validateResource,
  withChangeVersion,
  type ResourceCollection,
} from '../domain/collections.ts';
import {
  formatExternalReferences,
  parseExternalReferences,
  type ReferenceSelection,
} from '../domain/external-references.ts';
import { scopeFor, type CollectionName } from '../domain/scopes.ts';
import { AppError, BodyValidationError, notFound } from '../errors.ts';
import { getAbsence, listAbsences } from '../store/absences.ts';
import { attachExternalReferences, findEntityByReference } from '../store/external-references.ts';
import {
  applyAbsenceBatch,
  deleteAbsence,
  deleteResource,
  putAbsence,
  putResource,
} from '../store/ingest.ts';
import { getResource, listResources } from '../store/resources.ts';
import { currentVersion } from '../store/tenants.ts';
import {
  AbsenceIn,
  AbsenceListQuery,
  AbsenceOut,
  BadRequest,
  BatchIn,
  BatchResult,
  DefinitionIn,
  DefinitionOut,
  ErrorBody,
  ItemQuery,
  ListOf,
  PersonIn,
  PersonOut,
  ReadParams,
  ResourceListQuery,
  WriteParams,
} from './collection-schemas.ts';
import {
  bindingOf,
  deltaLink,
  nextLink,
  openContinuation,
  signContinuation,
  signDelta,
  type PageKey,
} from './collection-tokens.ts';
import { CONNECTOR_PREFIX, principalOf, type ApiContext } from './context.ts';

/** The batch endpoint accepts larger bodies than the rest of the API (SPEC §1.6). */
export const BATCH_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

const SINGULAR: Record<CollectionName, string> = {
  absences: 'Absence',
  people: 'Person',
  'absence-definitions': 'Absence definition',
  'shift-definitions': 'Shift definition',
};

/** Parses the externalReferences query for `owner`; 400 InvalidExternalReference when malformed. */
export function parseSelection(
  text: string | undefined,
  owner: CollectionName,
): ReferenceSelection | undefined {
  if (text === undefined) return undefined;
  const parsed = parseExternalReferences(text, owner);
  if (!parsed.ok) throw new AppError('InvalidExternalReference', parsed.reason, [parsed.reason]);
  return parsed.value;
}

function parseWriteId(raw: string): number {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new AppError('BadRequest', `The id ${JSON.stringify(raw)} is not a positive integer id.`);
  }
  return id;
}

/**
 * The id a read path names. When the externalReferences query names references of the collection itself,
 * the path value is first looked up as a value of those references (in query order; a reference wins over an
 * id); when none has it and it is an id, it is the id — so /people/42?externalReferences=(people,HRMID) also
 * reads person 42 with its HRMID. Without such a query the value must be an id.
 */
async function resolveReadId(
  ctx: ApiContext,
  tenant: string,
  collection: CollectionName,
  raw: string,
  selection: ReferenceSelection | undefined,
): Promise<number | undefined> {
  const own = selection?.[collection];
  const isId = /^[1-9][0-9]{0,15}$/.test(raw) && Number.isSafeInteger(Number(raw));
  if (own && own.length > 0) {
    return (
      (await findEntityByReference(ctx.db, tenant, collection, own, raw)) ?? (isId ? Number(raw) : undefined)
    );
  }
  if (!isId) {
    throw new AppError(
      'BadRequest',
      `${JSON.stringify(raw)} is not an id; to look an object up by an external reference, name it in the query, e.g. ?externalReferences=(people,@employee-number).`,
    );
  }
  return Number(raw);
}

/**
 * The list filter of a collection (SPEC §1.4): required for absences (with &delta, upstream's delta rules
 * apply), optional for people, refused for definitions (upstream has none). 400 InvalidFilter with reasons.
 */
function parseListFilter(
  ctx: ApiContext,
  collection: CollectionName,
  query: ListQuery,
  delta: boolean,
): { absences: AbsenceFilter | null; people: PeopleFilter | null } {
  const text = query.filter;
  const invalid = (message: string, reasons: string[]) => new AppError('InvalidFilter', message, reasons);
  if (collection === 'absences') {
    // The earliest start of a delta is checked when the load starts, not again on its later pages.
    const today = query.continuationToken === undefined ? ctx.now().toISOString().slice(0, 10) : undefined;
    const parsed = parseAbsenceFilter(text ?? '', { delta, today });
    if (!parsed.ok) {
      throw invalid(
        text === undefined
          ? "The absences list needs a filter, e.g. filter=date ge '2026-01-01' and date le '2026-03-31'."
          : 'The filter is not valid.',
        parsed.reasons,
      );
    }
    return { absences: parsed.value, people: null };
  }
  if (text === undefined) return { absences: null, people: null };
  if (collection !== 'people') {
    const reason = `The ${collection} list takes no filter (as upstream); it returns every ${SINGULAR[collection].toLowerCase()}.`;
    throw invalid(reason, [reason]);
  }
  if (delta) {
    const reason =
      'The people delta takes no filter; start it without one and filter the changes on your side.';
    throw invalid(reason, [reason]);
  }
  const parsed = parsePeopleFilter(text);
  if (!parsed.ok) throw invalid('The filter is not valid.', parsed.reasons);
  return { absences: null, people: parsed.value };
}

interface ListQuery {
  filter?: string;
  externalReferences?: string;
  delta?: string;
  continuationToken?: string;
}

interface ListResponse {
  value: object[];
  nextLink?: string;
  deltaLink?: string;
}

/**
 * One page of a list (SPEC §1.4): pageSize objects in (date, id) or id order, a nextLink while more remain,
 * and with &delta a deltaLink on the last page that continues from the version captured when the initial
 * load started (so a change made during the load is reported by the delta at least once).
 */
async function listPage(
  ctx: ApiContext,
  request: FastifyRequest,
  collection: CollectionName,
  query: ListQuery,
): Promise<ListResponse> {
  const { tenant } = principalOf(request);
  const selection = parseSelection(query.externalReferences, collection);
  const delta = query.delta !== undefined;
  const { absences: filter, people: peopleFilter } = parseListFilter(ctx, collection, query, delta);
  const binding = bindingOf({
    tenant,
    collection,
    filter: filter ? filterKey(filter) : peopleFilter ? peopleFilterKey(peopleFilter) : '',
    references: selection ? JSON.stringify(selection) : '',
    delta,
  });
  let after: PageKey | undefined;
  let startVersion: number | undefined;
  if (query.continuationToken !== undefined) {
    const payload = openContinuation(ctx.box, query.continuationToken, binding);
    after = payload.k;
    startVersion = payload.v;
    if (delta && startVersion === undefined) {
      throw new AppError(
        'InvalidContinuationToken',
        'The continuationToken does not belong to a delta load.',
      );
    }
  } else if (delta) {
    startVersion = await currentVersion(ctx.db, tenant);
  }

  const pageSize = ctx.config.pageSize;
  let rows: { version: number; body: { id: number; date?: string } }[];
  if (filter) {
    if (after !== undefined && !Array.isArray(after))
      throw new AppError('InvalidContinuationToken', 'The continuationToken is not valid.');
    rows = await listAbsences(
      ctx.db,
      tenant,
      filter,
      after ? { date: after[0], id: after[1] } : undefined,
      pageSize + 1,
    );
  } else {
    if (Array.isArray(after))
      throw new AppError('InvalidContinuationToken', 'The continuationToken is not valid.');
    rows = await listResources(
      ctx.db,
      tenant,
      collection as ResourceCollection,
      after ?? 0,
      pageSize + 1,
      peopleFilter,
    );
  }
  const more = rows.length > pageSize;
  const page = more ? rows.slice(0, pageSize) : rows;
  const value = await attachExternalReferences(
    ctx.db,
    tenant,
    collection,
    page.map((r) => withChangeVersion(r.version, r.body)),
    selection,
  );
  const response: ListResponse = { value };
  if (more) {
    const last = page.at(-1)!.body;
    const token = signContinuation(ctx.box, {
      b: binding,
      k: filter ? [last.date!, last.id] : last.id,
      ...(startVersion !== undefined ? { v: startVersion } : {}),
    });
    response.nextLink = nextLink(
      collection,
      {
        filter: query.filter,
        externalReferences: selection ? formatExternalReferences(selection) : undefined,
        delta,
      },
      token,
    );
  } else if (delta) {
    response.deltaLink = deltaLink(
      collection,
      signDelta(ctx.box, {
        t: tenant,
        c: collection,
        f: filter,
        r: selection ?? null,
        v: startVersion!,
        i: ctx.now().getTime(),
      }),
    );
  }
  return response;
}

async function readItem(
  ctx: ApiContext,
  request: FastifyRequest,
  collection: CollectionName,
  rawId: string,
  references: string | undefined,
): Promise<object> {
  const { tenant } = principalOf(request);
  const selection = parseSelection(references, collection);
  const id = await resolveReadId(ctx, tenant, collection, rawId, selection);
  const stored =
    id === undefined
      ? undefined
      : collection === 'absences'
        ? await getAbsence(ctx.db, tenant, id)
        : await getResource(ctx.db, tenant, collection, id);
  if (!stored) throw notFound(`${SINGULAR[collection]} ${rawId}`);
  const [object] = await attachExternalReferences(
    ctx.db,
    tenant,
    collection,
    [withChangeVersion(stored.version, stored.body)],
    selection,
  );
  return object!;
}

const errorResponses = { 400: BadRequest, 401: ErrorBody, 404: ErrorBody };

export function collectionRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Responses are built in the spec's key order by the domain; fast-json-stringify would move required
    // properties first (and drop unlisted ones), so these routes serialize with JSON.stringify.
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));

    // ------------------------------------------------------------------------------------------ absences
    const absenceRead = { scopes: [scopeFor('absences', 'read')] };
    const absenceWrite = { scopes: [scopeFor('absences', 'write')] };

    app.get(
      '/absences',
      {
        config: absenceRead,
        schema: {
          tags: ['absences'],
          summary: 'List absences in a date range',
          description:
            "filter=date ge 'YYYY-MM-DD' [and date le 'YYYY-MM-DD'] [and person in (1,2)] is required (at most 366 days; " +
            'date le defaults to 365 days after date ge). Ordered by (date, id), paged by nextLink; add &delta for an ' +
            'initial load that ends with a deltaLink.',
          querystring: AbsenceListQuery,
          response: { 200: ListOf(AbsenceOut), ...errorResponses },
        },
      },
      async (request) => listPage(ctx, request, 'absences', request.query),
    );

    app.get(
      '/absences/:id',
      {
        config: absenceRead,
        schema: {
          tags: ['absences'],
          summary: 'Get one absence',
          params: ReadParams,
          querystring: ItemQuery,
          response: { 200: AbsenceOut, ...errorResponses },
        },
      },
      async (request) =>
        readItem(ctx, request, 'absences', request.params.id, request.query.externalReferences) as never,
    );

    app.put(
      '/absences/:id',
      {
        config: absenceWrite,
        schema: {
          tags: ['absences'],
          summary: 'Insert or replace an absence (Timehook ingest)',
          description:
            'person and resultingAbsenceDefinition are required; requestedAbsenceDefinition, shiftDefinition and request ' +
            'may be null. A link is {"id": n} or {"externalReferences": {"<name>": "<value>"}}. 201 when created, 200 ' +
            'when replaced or unchanged (an identical PUT records no change).',
          params: WriteParams,
          body: AbsenceIn,
          response: { 200: AbsenceOut, 201: AbsenceOut, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { tenant } = principalOf(request);
        const id = parseWriteId(request.params.id);
        const draft = validateAbsence(request.body, id);
        if (!draft.ok) throw new BodyValidationError(draft.issues);
        const result = await putAbsence(ctx.db, tenant, draft.value);
        if (result.created) void reply.code(201).header('location', `${CONNECTOR_PREFIX}/absences/${id}`);
        return result.object;
      },
    );

    app.delete(
      '/absences/:id',
      {
        config: absenceWrite,
        schema: {
          tags: ['absences'],
          summary: 'Delete an absence (Timehook ingest)',
          params: WriteParams,
          response: {
            204: Type.Null({ description: 'Deleted; a Delete change was recorded.' }),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const { tenant } = principalOf(request);
        const id = parseWriteId(request.params.id);
        if (!(await deleteAbsence(ctx.db, tenant, id))) throw notFound(`Absence ${id}`);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/absences/batch',
      {
        config: absenceWrite,
        bodyLimit: BATCH_BODY_LIMIT_BYTES,
        schema: {
          tags: ['absences'],
          summary: 'Upsert and delete many absences at once (Timehook ingest)',
          description:
            'All or nothing, in one transaction: any invalid item or unknown link rejects the whole batch. At most 10,000 ' +
            'items; deletes of ids that do not exist are skipped; upserts equal to the stored absence record nothing.',
          body: BatchIn,
          response: { 200: BatchResult, 400: BadRequest, 401: ErrorBody, 413: ErrorBody },
        },
      },
      async (request) => {
        const { tenant } = principalOf(request);
        const batch = validateAbsenceBatch(request.body);
        if (!batch.ok) throw new BodyValidationError(batch.issues);
        return applyAbsenceBatch(ctx.db, tenant, batch.value.upserts, batch.value.deletes);
      },
    );

    // ------------------------------------------------------------------------- people and definitions
    for (const collection of RESOURCE_COLLECTIONS) {
      const read = { scopes: [scopeFor(collection, 'read')] };
      const write = { scopes: [scopeFor(collection, 'write')] };
      const Out = collection === 'people' ? PersonOut : DefinitionOut[collection];
      const In = collection === 'people' ? PersonIn : DefinitionIn[collection];
      const noun = SINGULAR[collection].toLowerCase();

      app.get(
        `/${collection}`,
        {
          config: read,
          schema: {
            tags: [collection],
            summary: `List ${collection}`,
            description:
              'Ordered by id, paged by nextLink; add &delta for an initial load that ends with a deltaLink.',
            querystring: ResourceListQuery,
            response: { 200: ListOf(Out), ...errorResponses },
          },
        },
        async (request) => listPage(ctx, request, collection, request.query),
      );

      app.get(
        `/${collection}/:id`,
        {
          config: read,
          schema: {
            tags: [collection],
            summary: `Get one ${noun} by id or external reference`,
            params: ReadParams,
            querystring: ItemQuery,
            response: { 200: Out, ...errorResponses },
          },
        },
        async (request) =>
          readItem(ctx, request, collection, request.params.id, request.query.externalReferences) as never,
      );

      app.put(
        `/${collection}/:id`,
        {
          config: write,
          schema: {
            tags: [collection],
            summary: `Insert or replace a ${noun} (Timehook ingest)`,
            description:
              '201 when created, 200 when replaced or unchanged (an identical PUT records no change). ' +
              'externalReferences sets the custom references; a value another object holds is 409 ExternalReferenceInUse.',
            params: WriteParams,
            body: In,
            response: { 200: Out, 201: Out, ...errorResponses, 409: ErrorBody },
          },
        },
        async (request, reply) => {
          const { tenant } = principalOf(request);
          const id = parseWriteId(request.params.id);
          const draft = validateResource(collection, request.body, id);
          if (!draft.ok) throw new BodyValidationError(draft.issues);
          const result = await putResource(ctx.db, tenant, collection, draft.value);
          if (result.created)
            void reply.code(201).header('location', `${CONNECTOR_PREFIX}/${collection}/${id}`);
          return result.object;
        },
      );

      app.delete(
        `/${collection}/:id`,
        {
          config: write,
          schema: {
            tags: [collection],
            summary: `Delete a ${noun} (Timehook ingest)`,
            description: '409 EntityInUse while absences still link to it.',
            params: WriteParams,
            response: {
              204: Type.Null({ description: 'Deleted; a Delete change was recorded.' }),
              ...errorResponses,
              409: ErrorBody,
            },
          },
        },
        async (request, reply) => {
          const { tenant } = principalOf(request);
          const id = parseWriteId(request.params.id);
          if (!(await deleteResource(ctx.db, tenant, collection, id)))
            throw notFound(`${SINGULAR[collection]} ${id}`);
          return reply.code(204).send(null);
        },
      );
    }
  };
}
