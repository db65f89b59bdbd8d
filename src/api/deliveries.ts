// The delivery log (SPEC §1.3): a webhook's deliveries newest first (filterable by status and entity), one
// delivery with all its attempts, and redelivery. Readable after the webhook is soft-deleted; tenant-scoped
// (another tenant's webhook is 404). Reads through store functions only; never imports delivery/.
//
// Statuses: Pending — not yet attempted, or its first attempt is in flight. Failed — the last attempt failed
// and another is scheduled at nextAttemptAt. Delivered — a 2xx arrived (deliveredAt). Abandoned — it will
// never be sent: the webhook was disabled (RetriesExhausted, EndpointGone, Expired) or deleted first.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { formatChangeVersion } from '../domain/change-version.ts';
import { DELIVERY_STATUSES, parseDeliveryFilter, type DeliveryFilter } from '../domain/delivery-filter.ts';
import { scopeFor } from '../domain/scopes.ts';
import { AppError, notFound } from '../errors.ts';
import {
  findDelivery,
  listDeliveries,
  requestRedelivery,
  type AttemptView,
  type DeliveryRecord,
} from '../store/deliveries.ts';
import { isTenantWebhook } from '../store/webhooks.ts';
import { CONNECTOR_PREFIX, principalOf, type ApiContext } from './context.ts';
import { ErrorBody, NoQuery, WebhookIdParams } from './route-schemas.ts';

const TOKEN_PURPOSE = 'deliveries';

/** ISO 8601 in UTC with milliseconds and an explicit offset (attempts can be milliseconds apart). */
const formatInstant = (date: Date): string => date.toISOString().replace(/Z$/, '+00:00');

const Instant = Type.String({ format: 'date-time', examples: ['2026-03-02T10:15:00.123+00:00'] });
const NullableInstant = Type.Union([Instant, Type.Null()]);

const deliveryProperties = {
  id: Type.Integer({ description: 'The delivery id (unique in the installation).' }),
  changeVersion: Type.String({ description: 'The changeVersion of the event (20 hex digits).' }),
  changeType: Type.Enum(['InsertOrUpdate', 'Delete'], { type: 'string' }),
  entityId: Type.Integer({ description: 'The id of the object the event is about.' }),
  status: Type.Enum([...DELIVERY_STATUSES], {
    type: 'string',
    description:
      'Pending: waiting behind a failed event of the same entity, or a redelivery not yet attempted. Failed: ' +
      'the last attempt failed; another is scheduled at nextAttemptAt. Delivered: a 2xx arrived. Abandoned: ' +
      'never to be sent, because the webhook was disabled or deleted first. An event delivered at its first ' +
      'attempt appears once that attempt is recorded.',
  }),
  attemptCount: Type.Integer(),
  nextAttemptAt: Type.Union([Instant, Type.Null()], {
    description: 'Pending and Failed: when the next attempt is due (at the latest); otherwise null.',
  }),
  deliveredAt: NullableInstant,
  createdAt: Instant,
  redeliveryOf: Type.Union([Type.Integer(), Type.Null()], {
    description: 'For a manual redelivery: the delivery whose event it sends again.',
  }),
};

const Delivery = Type.Object(deliveryProperties, { description: 'One event of one webhook.' });

const Attempt = Type.Object({
  at: Instant,
  durationMs: Type.Integer(),
  statusCode: Type.Optional(Type.Integer({ description: 'The answer’s status, when one arrived.' })),
  error: Type.Optional(
    Type.String({ description: 'Why no answer arrived: timeout, connection refused, TLS, blocked address…' }),
  ),
  responseBody: Type.String({ description: 'The first 4 KiB of the answer’s body ("" without an answer).' }),
});

const DeliveryWithAttempts = Type.Object(
  { ...deliveryProperties, attempts: Type.Array(Attempt) },
  { description: 'One delivery with all its attempts, oldest first.' },
);

const DeliveryPage = Type.Object({
  value: Type.Array(Delivery),
  nextLink: Type.Optional(
    Type.String({
      description: 'The next (older) page, a relative path; only a missing nextLink ends the list.',
    }),
  ),
});

const DeliveryParams = Type.Object({
  ...WebhookIdParams.properties,
  deliveryId: Type.String({ description: 'The delivery id.' }),
});
// Unknown parameters are ignored (route-schemas.ts); nextLink carries only filter and continuationToken.
const ListQuery = Type.Object(
  {
    filter: Type.Optional(
      Type.String({
        description: `status eq 'Pending'|'Failed'|'Delivered'|'Abandoned' and/or entityId eq <id>, joined by and.`,
      }),
    ),
    continuationToken: Type.Optional(Type.String({ description: 'From nextLink; opaque.' })),
  },
  { additionalProperties: true },
);

function renderDelivery(d: DeliveryRecord): Static<typeof Delivery> {
  return {
    id: d.id,
    changeVersion: formatChangeVersion(d.changeVersion),
    changeType: d.changeType as 'InsertOrUpdate' | 'Delete',
    entityId: d.entityId,
    status: d.status,
    attemptCount: d.attemptCount,
    nextAttemptAt: d.nextAttemptAt ? formatInstant(d.nextAttemptAt) : null,
    deliveredAt: d.deliveredAt ? formatInstant(d.deliveredAt) : null,
    createdAt: formatInstant(d.createdAt),
    redeliveryOf: d.redeliveryOf,
  };
}

function renderAttempt(a: AttemptView): Static<typeof Attempt> {
  return {
    at: formatInstant(a.at),
    durationMs: a.durationMs,
    ...(a.statusCode !== null ? { statusCode: a.statusCode } : {}),
    ...(a.error !== null ? { error: a.error } : {}),
    responseBody: a.responseBody ?? '',
  };
}

const webhookNotFound = (id: string): AppError => notFound(`Webhook ${id}`);
const deliveryNotFound = (id: string, deliveryId: string): AppError =>
  notFound(`Delivery ${deliveryId} of webhook ${id}`);

/** The numeric delivery id of a path segment, or undefined (→ 404) for anything else. */
function parseDeliveryId(text: string): number | undefined {
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

interface PageToken {
  /** The webhook the list belongs to. */
  w: string;
  /** The filter text of the request. */
  f: string | null;
  /** The next page holds deliveries with id below this. */
  b: number;
}

export function deliveryRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const readScope = scopeFor('webhooks', 'read');
  const writeScope = scopeFor('webhooks', 'write');

  const requireWebhook = async (tenant: string, id: string): Promise<void> => {
    if (!(await isTenantWebhook(ctx.db, tenant, id, { includeDeleted: true }))) throw webhookNotFound(id);
  };

  return async (app) => {
    app.get(
      '/webhooks/:id/deliveries',
      {
        config: { scopes: [readScope] },
        schema: {
          tags: ['webhooks'],
          summary: "List a webhook's deliveries",
          description:
            'The delivery log, newest first, in pages with nextLink; also after the webhook was deleted. ' +
            `Filter by status (${DELIVERY_STATUSES.join(', ')}) and/or entityId.`,
          params: WebhookIdParams,
          querystring: ListQuery,
          response: { 200: DeliveryPage, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const { tenant } = principalOf(request);
        const { id } = request.params;
        const { filter: filterText, continuationToken } = request.query;
        let filter: DeliveryFilter = {};
        if (filterText !== undefined) {
          const parsed = parseDeliveryFilter(filterText);
          if (!parsed.ok) throw new AppError('InvalidFilter', parsed.reason, [parsed.reason]);
          filter = parsed.value;
        }
        await requireWebhook(tenant, id);
        let beforeId: number | undefined;
        if (continuationToken !== undefined) {
          const token = ctx.box.openToken(TOKEN_PURPOSE, continuationToken) as Partial<PageToken> | undefined;
          if (!token || token.w !== id || token.f !== (filterText ?? null) || typeof token.b !== 'number') {
            throw new AppError(
              'InvalidContinuationToken',
              'The continuationToken was not issued for this list and filter; follow nextLink exactly as given.',
            );
          }
          beforeId = token.b;
        }
        const pageSize = ctx.config.pageSize;
        const records = await listDeliveries(ctx.db, id, {
          ...filter,
          beforeId,
          limit: pageSize + 1,
        });
        const page = records.slice(0, pageSize);
        const result: Static<typeof DeliveryPage> = { value: page.map(renderDelivery) };
        if (records.length > pageSize) {
          const token = ctx.box.signToken(TOKEN_PURPOSE, {
            w: id,
            f: filterText ?? null,
            b: page.at(-1)!.id,
          } satisfies PageToken);
          const parts = filterText !== undefined ? [`filter=${encodeURIComponent(filterText)}`] : [];
          parts.push(`continuationToken=${encodeURIComponent(token)}`);
          result.nextLink = `${CONNECTOR_PREFIX}/webhooks/${id}/deliveries?${parts.join('&')}`;
        }
        return result;
      },
    );

    app.get(
      '/webhooks/:id/deliveries/:deliveryId',
      {
        config: { scopes: [readScope] },
        schema: {
          tags: ['webhooks'],
          summary: 'Get one delivery with its attempts',
          params: DeliveryParams,
          querystring: NoQuery,
          response: { 200: DeliveryWithAttempts, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const { tenant } = principalOf(request);
        const { id, deliveryId } = request.params;
        await requireWebhook(tenant, id);
        const numeric = parseDeliveryId(deliveryId);
        const delivery = numeric === undefined ? undefined : await findDelivery(ctx.db, id, numeric);
        if (!delivery) throw deliveryNotFound(id, deliveryId);
        return { ...renderDelivery(delivery), attempts: delivery.attempts.map(renderAttempt) };
      },
    );

    app.post(
      '/webhooks/:id/deliveries/:deliveryId/redeliver',
      {
        config: { scopes: [writeScope] },
        schema: {
          tags: ['webhooks'],
          summary: 'Send a delivery’s event again',
          description:
            'Queues the event again as a new delivery (same body and webhook-id), after any open deliveries of ' +
            'the same entity. The webhook must be Enabled (409 WebhookNotEnabled otherwise).',
          params: DeliveryParams,
          querystring: NoQuery,
          response: { 202: Delivery, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (request, reply) => {
        const { tenant } = principalOf(request);
        const { id, deliveryId } = request.params;
        await requireWebhook(tenant, id);
        const numeric = parseDeliveryId(deliveryId);
        if (numeric === undefined) throw deliveryNotFound(id, deliveryId);
        const result = await requestRedelivery(ctx.db, tenant, id, numeric);
        if (!result.ok) {
          if (result.reason === 'webhook-not-found') throw webhookNotFound(id);
          if (result.reason === 'delivery-not-found') throw deliveryNotFound(id, deliveryId);
          const state = result.deleted
            ? 'deleted'
            : `${result.status}${result.disabledReason ? `/${result.disabledReason}` : ''}`;
          throw new AppError(
            'WebhookNotEnabled',
            `Webhook ${id} is ${state}, so nothing is sent to it; resync and create a new webhook instead.`,
          );
        }
        request.log.info(
          { webhookId: id, deliveryId: result.delivery.id, redeliveryOf: numeric },
          'redelivery requested',
        );
        return reply.code(202).send(renderDelivery(result.delivery));
      },
    );
  };
}
