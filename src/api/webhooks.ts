// The webhook subscription API (SPEC §1.2): create, list, get, soft delete and key rotation. The key is shown
// once, in the 201 of the create, and never logged; it is stored only encrypted. The delivery log routes
// (§1.3) live elsewhere.

import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { formatTimestamp } from '../domain/timestamps.ts';
import { Type, type Static } from 'typebox';
import { parseExternalReferences } from '../domain/external-references.ts';
import { COLLECTIONS, isCollectionName, scopeFor } from '../domain/scopes.ts';
import { parseWebhookFilter } from '../domain/webhook-filter.ts';
import { AppError, notFound } from '../errors.ts';
import { checkDestinationUrl } from '../net/destination-guard.ts';
import {
  createWebhook,
  deleteWebhook,
  findWebhook,
  listWebhooks,
  rotateWebhookKey,
  type WebhookRecord,
} from '../store/webhooks.ts';
import { CONNECTOR_PREFIX, principalOf, type ApiContext } from './context.ts';
import { BadRequest, ErrorBody, NoQuery, WebhookIdParams } from './route-schemas.ts';

/** How long the replaced key keeps signing beside the new one after a rotation (Timehook's own rule). */
export const PREVIOUS_KEY_OVERLAP_MS = 24 * 60 * 60 * 1000;
const KEY_BYTES = 32;
const KEY_PREFIX = 'whsec_';

/** Rounds down to the whole second, so a stored time equals the one rendered by formatTimestamp. */
const toSecond = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

const newWebhookKey = (): string => `${KEY_PREFIX}${randomBytes(KEY_BYTES).toString('base64')}`;

const Timestamp = Type.String({ format: 'date-time', examples: ['2026-12-28T10:15:00+00:00'] });
const Status = Type.Enum(['Enabled', 'Disabled'], { type: 'string' });
const DisabledReason = Type.Enum(['Expired', 'RetriesExhausted', 'EndpointGone'], { type: 'string' });
const ExternalReferences = Type.Unsafe<Record<string, string[]>>({
  type: 'object',
  additionalProperties: { type: 'array', items: { type: 'string' } },
  description:
    'The external references requested at creation, per collection, e.g. {"people":["@employee-number"]}.',
});

const webhookProperties = {
  id: Type.String({ format: 'uuid' }),
  validUntil: Timestamp,
  status: Status,
  destinationUrl: Type.String(),
  collectionName: Type.String(),
  externalReferences: ExternalReferences,
  createdAt: Timestamp,
};

const Webhook = Type.Object(
  {
    ...webhookProperties,
    disabledReason: Type.Optional(DisabledReason),
  },
  { description: 'A webhook subscription; disabledReason is present when status is Disabled.' },
);
type WebhookBody = Static<typeof Webhook>;

const { id: webhookId, ...webhookRest } = webhookProperties;
const CreatedWebhook = Type.Object(
  { id: webhookId, key: Type.String({ description: 'whsec_ + base64 of 32 random bytes.' }), ...webhookRest },
  { description: 'The new webhook with its signing key: the only time the key is ever shown.' },
);

const CreateBody = Type.Object(
  {
    destinationUrl: Type.String({
      description: 'An absolute https URL of a public host, at most 2,048 characters.',
    }),
    collectionName: Type.String({ description: `One of ${COLLECTIONS.join(', ')}.` }),
  },
  { additionalProperties: false },
);

const CreateQuery = Type.Object(
  {
    externalReferences: Type.Optional(
      Type.String({ description: '(collection,reference) groups, e.g. (people,@employee-number).' }),
    ),
  },
  { additionalProperties: true },
);

const ListQuery = Type.Object(
  {
    filter: Type.Optional(
      Type.String({
        description:
          "status eq 'Enabled'|'Disabled' and/or collectionName eq '<name>' (or collection-name), joined by and.",
      }),
    ),
  },
  { additionalProperties: true },
);

const WebhookList = Type.Object({ value: Type.Array(Webhook) }, { description: "The tenant's webhooks." });

const KeyRotated = Type.Object(
  {
    key: Type.String({ description: 'The new signing key; shown only here.' }),
    previousKeyValidUntil: Type.String({
      format: 'date-time',
      description:
        'Until then the replaced key keeps signing beside the new one (two signatures per request).',
    }),
  },
  { description: 'The new key.' },
);

function renderWebhook(webhook: WebhookRecord): WebhookBody {
  return {
    id: webhook.id,
    validUntil: formatTimestamp(webhook.validUntil),
    status: webhook.status,
    destinationUrl: webhook.destinationUrl,
    collectionName: webhook.collection,
    externalReferences: webhook.externalReferences,
    createdAt: formatTimestamp(webhook.createdAt),
    ...(webhook.status === 'Disabled' && webhook.disabledReason
      ? { disabledReason: webhook.disabledReason }
      : {}),
  };
}

const webhookNotFound = (id: string): AppError => notFound(`Webhook ${id}`);

export function webhookRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const readScope = scopeFor('webhooks', 'read');
  const writeScope = scopeFor('webhooks', 'write');

  return async (app) => {
    app.post(
      '/webhooks',
      {
        config: { scopes: [writeScope] },
        schema: {
          tags: ['webhooks'],
          summary: 'Create a webhook',
          description:
            'Subscribes destinationUrl to the changes of one collection. Needs connector-protimeapi-webhooks.write ' +
            'only, as the upstream seed page says. The response is the only time the signing key is shown.',
          querystring: CreateQuery,
          body: CreateBody,
          response: { 201: CreatedWebhook, 400: BadRequest, 401: ErrorBody, 409: ErrorBody },
        },
      },
      async (request, reply) => {
        const { tenant } = principalOf(request);
        const { destinationUrl, collectionName } = request.body;
        if (!isCollectionName(collectionName)) {
          throw new AppError(
            'UnknownCollection',
            `collectionName ${JSON.stringify(collectionName)} is not a collection; use one of ${COLLECTIONS.join(', ')}.`,
          );
        }
        let externalReferences: Record<string, string[]> = {};
        if (request.query.externalReferences !== undefined) {
          const parsed = parseExternalReferences(request.query.externalReferences, collectionName);
          if (!parsed.ok) throw new AppError('InvalidExternalReference', parsed.reason, [parsed.reason]);
          externalReferences = parsed.value;
        }

        const destination = await checkDestinationUrl(destinationUrl, {
          allowInsecure: ctx.config.allowInsecureDestinations,
        });
        if (!destination.ok)
          throw new AppError('InvalidDestinationUrl', destination.reason, [destination.reason]);

        const now = ctx.now();
        const key = newWebhookKey();
        const created = await createWebhook(
          ctx.db,
          {
            id: randomUUID(),
            tenantId: tenant,
            collection: collectionName,
            destinationUrl,
            externalReferences,
            keyEncrypted: ctx.box.encrypt(key),
            createdAt: now,
            validUntil: toSecond(now.getTime() + ctx.config.webhookTtlMs),
            partitions: ctx.config.deliveryPartitions,
          },
          ctx.config.maxWebhooksPerTenant,
        );
        if (!created.ok) {
          throw new AppError(
            'WebhookLimitReached',
            `This tenant already has ${created.enabledCount} enabled webhooks, the limit ` +
              `(TIMEHOOK_MAX_WEBHOOKS_PER_TENANT=${ctx.config.maxWebhooksPerTenant}); delete one you no longer need first.`,
          );
        }
        const { webhook } = created;
        request.log.info(
          { webhookId: webhook.id, tenant, collection: webhook.collection, host: destination.url.host },
          'webhook created',
        );
        return reply
          .code(201)
          .header('location', `${ctx.config.publicBaseUrl ?? ''}${CONNECTOR_PREFIX}/webhooks/${webhook.id}`)
          .send({ key, ...renderWebhook(webhook) });
      },
    );

    app.get(
      '/webhooks',
      {
        config: { scopes: [readScope] },
        schema: {
          tags: ['webhooks'],
          summary: 'List webhooks',
          description: "The tenant's webhooks, oldest first, optionally filtered; never with their keys.",
          querystring: ListQuery,
          response: { 200: WebhookList, 400: BadRequest, 401: ErrorBody },
        },
      },
      async (request) => {
        const { tenant } = principalOf(request);
        let filter = {};
        if (request.query.filter !== undefined) {
          const parsed = parseWebhookFilter(request.query.filter);
          if (!parsed.ok) throw new AppError('InvalidFilter', parsed.reason, [parsed.reason]);
          filter = { status: parsed.value.status, collection: parsed.value.collectionName };
        }
        const webhooks = await listWebhooks(ctx.db, tenant, ctx.now(), filter);
        return { value: webhooks.map(renderWebhook) };
      },
    );

    app.get(
      '/webhooks/:id',
      {
        config: { scopes: [readScope] },
        schema: {
          tags: ['webhooks'],
          summary: 'Get a webhook',
          querystring: NoQuery,
          params: WebhookIdParams,
          response: { 200: Webhook, 400: BadRequest, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const { tenant } = principalOf(request);
        const webhook = await findWebhook(ctx.db, tenant, request.params.id, ctx.now());
        if (!webhook) throw webhookNotFound(request.params.id);
        return renderWebhook(webhook);
      },
    );

    app.delete(
      '/webhooks/:id',
      {
        config: { scopes: [writeScope] },
        schema: {
          tags: ['webhooks'],
          summary: 'Delete a webhook',
          description:
            'Soft delete: delivery stops at once and the webhook leaves list and get, while its delivery log stays readable.',
          querystring: NoQuery,
          params: WebhookIdParams,
          response: {
            204: Type.Null({ description: 'Deleted.' }),
            400: BadRequest,
            401: ErrorBody,
            404: ErrorBody,
          },
        },
      },
      async (request, reply) => {
        const { tenant } = principalOf(request);
        if (!(await deleteWebhook(ctx.db, tenant, request.params.id, ctx.now()))) {
          throw webhookNotFound(request.params.id);
        }
        request.log.info({ webhookId: request.params.id, tenant }, 'webhook deleted');
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/webhooks/:id/key',
      {
        config: { scopes: [writeScope] },
        schema: {
          tags: ['webhooks'],
          summary: 'Rotate the signing key of a webhook',
          description:
            'Issues a new key. The replaced key keeps signing beside it for 24 hours, so requests carry two ' +
            'signatures meanwhile. A Disabled webhook may rotate too.',
          querystring: NoQuery,
          params: WebhookIdParams,
          response: { 200: KeyRotated, 400: BadRequest, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const { tenant } = principalOf(request);
        const key = newWebhookKey();
        const previousKeyValidUntil = toSecond(ctx.now().getTime() + PREVIOUS_KEY_OVERLAP_MS);
        const rotated = await rotateWebhookKey(
          ctx.db,
          tenant,
          request.params.id,
          ctx.box.encrypt(key),
          previousKeyValidUntil,
        );
        if (!rotated) throw webhookNotFound(request.params.id);
        request.log.info({ webhookId: request.params.id, tenant }, 'webhook key rotated');
        return { key, previousKeyValidUntil: formatTimestamp(previousKeyValidUntil) };
      },
    );
  };
}
