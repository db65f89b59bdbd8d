// The delta endpoints (SPEC §1.4, §2): GET /delta/<collection>?deltaToken=… returns the changes after the
// token's version in version order — the absences date/person filter and the token's external references
// applied — and always a fresh deltaLink. A page holds at most TIMEHOOK_PAGE_SIZE changes; when more remain,
// its deltaLink continues right after the last change returned.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { COLLECTIONS, scopeFor, type CollectionName } from '../domain/scopes.ts';
import { AppError } from '../errors.ts';
import { readChanges } from '../store/change-feed.ts';
import { attachExternalReferencesToChanges } from '../store/external-references.ts';
import { currentVersion, prunedThroughVersion } from '../store/tenants.ts';
import { BadRequest, DeltaPage, DeltaQuery, ErrorBody } from './collection-schemas.ts';
import { deltaLink, openDelta, signDelta } from './collection-tokens.ts';
import { principalOf, type ApiContext } from './context.ts';

export function deltaRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    // The data is the object exactly as the change log holds it (key order included).
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    for (const collection of COLLECTIONS) {
      app.get(
        `/delta/${collection}`,
        {
          config: { scopes: [scopeFor(collection, 'read')] },
          schema: {
            tags: ['delta'],
            summary: `Changes to ${collection} since a deltaToken`,
            description:
              'Start with &delta on the list request and follow its deltaLink. Each response holds the changes after the ' +
              `token in changeVersion order (at most the page size; the deltaLink continues after the last one) and a fresh ` +
              'deltaLink, even when empty. A token expires 72 h after it was issued, or when the change log it needs has ' +
              'been pruned: 410 Gone, reload with &delta.',
            querystring: DeltaQuery,
            response: { 200: DeltaPage, 400: BadRequest, 401: ErrorBody, 410: ErrorBody },
          },
        },
        async (request) => deltaPage(ctx, principalOf(request).tenant, collection, request.query.deltaToken),
      );
    }
  };
}

async function deltaPage(
  ctx: ApiContext,
  tenant: string,
  collection: CollectionName,
  token: string | undefined,
) {
  const now = ctx.now();
  const payload = openDelta(ctx.box, token, tenant, collection, now);
  // Read the committed version before the changes: nothing at or below it can commit later (SPEC §2).
  const through = await currentVersion(ctx.db, tenant);
  const pageSize = ctx.config.pageSize;
  const changes = await readChanges(ctx.db, tenant, collection, payload.v, through, payload.f, pageSize + 1);
  // Checked after the read: pruning raises the mark in the statement that deletes, so a mark still at or below
  // the token's version means the read above saw every change after it.
  if (payload.v < (await prunedThroughVersion(ctx.db, tenant))) {
    throw new AppError(
      'Gone',
      'The change log no longer holds every change since this deltaToken (it is kept for TIMEHOOK_CHANGE_RETENTION); reload the collection with &delta to start again.',
    );
  }
  const page = changes.slice(0, pageSize);
  const nextVersion = changes.length > pageSize ? page.at(-1)!.version : Math.max(through, payload.v);
  const value = await attachExternalReferencesToChanges(
    ctx.db,
    tenant,
    collection,
    page.map((c) => ({ changeType: c.changeType, data: c.data })),
    payload.r ?? undefined,
  );
  return {
    value: value as {
      changeType: 'InsertOrUpdate' | 'Delete';
      data: { changeVersion: string; id: number };
    }[],
    deltaLink: deltaLink(collection, signDelta(ctx.box, { ...payload, v: nextVersion, i: now.getTime() })),
  };
}
