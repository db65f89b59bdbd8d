// The connector plugin: every resource under /connector/protimeapi/api/v1 sits inside it, so its hooks
// guard all of them — User-Agent required, bearer token verified, tenant and Host matched, scopes checked,
// per-client rate limit (SPEC §1.1, §1.6). The token endpoint and health routes live outside it.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { InvalidTokenError, verifyAccessToken } from '../auth/tokens.ts';
import { findClient } from '../store/clients.ts';
import { AppError } from '../errors.ts';
import { requireScopes, unauthorized } from './scopes.ts';
import { collectionRoutes } from './collections.ts';
import type { ApiContext } from './context.ts';
import { deliveryRoutes } from './deliveries.ts';
import { deltaRoutes } from './delta.ts';
import { webhookRoutes } from './webhooks.ts';

const CLIENT_STATUS_TTL_MS = 10_000;

/** Remembers for a few seconds whether a client id is still active, so revocation takes effect quickly. */
class ClientStatusCache {
  readonly #entries = new Map<string, { active: boolean; tenant: string | undefined; at: number }>();

  constructor(private readonly ctx: ApiContext) {}

  async isActive(clientId: string, tenant: string): Promise<boolean> {
    let entry = this.#entries.get(clientId);
    if (!entry || Date.now() - entry.at > CLIENT_STATUS_TTL_MS) {
      const client = await findClient(this.ctx.db, clientId);
      entry = {
        active: client !== undefined && client.revokedAt === null,
        tenant: client?.tenantId,
        at: Date.now(),
      };
      if (this.#entries.size > 10_000) this.#entries.clear();
      this.#entries.set(clientId, entry);
    }
    return entry.active && entry.tenant === tenant;
  }
}

function hostTenant(request: FastifyRequest, baseDomain: string): string | undefined {
  const host = request.host.toLowerCase();
  const suffix = `.${baseDomain}`;
  return host.endsWith(suffix) ? host.slice(0, -suffix.length) : undefined;
}

export function connectorPlugin(ctx: ApiContext): FastifyPluginAsync {
  const clientStatus = new ClientStatusCache(ctx);
  return async (app) => {
    app.addHook('onRequest', async (request: FastifyRequest, _reply: FastifyReply) => {
      // Kept strict although some upstream examples omit the header: its general specs say every request
      // MUST send one, so a client that passes here also passes there.
      if (!request.headers['user-agent']) {
        throw new AppError(
          'UserAgentRequired',
          'A User-Agent header MUST be sent on every request, as the Protime API requires; use the recommended ' +
            'form "ServiceName/Version (Company Name)", for example "PayrollSync/1.0 (Acme Corp)".',
        );
      }
      const header = request.headers.authorization;
      const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
      if (!match)
        throw unauthorized('An Authorization: Bearer <access token> header is required.', 'invalid_token');
      try {
        request.principal = await verifyAccessToken(ctx.keyRing, match[1]!);
      } catch (error) {
        if (error instanceof InvalidTokenError) throw unauthorized(error.message, 'invalid_token');
        throw error;
      }
      const { tenant, clientId } = request.principal;
      if (ctx.config.baseDomain) {
        const fromHost = hostTenant(request, ctx.config.baseDomain);
        if (fromHost !== undefined && fromHost !== tenant) {
          throw unauthorized(
            `The access token was issued for tenant ${tenant}, not ${fromHost}.`,
            'invalid_token',
          );
        }
      }
      if (!(await clientStatus.isActive(clientId, tenant))) {
        throw unauthorized('The client of this access token has been revoked.', 'invalid_token');
      }
    });

    // Scopes are checked before body validation: a caller without the scope learns nothing about bodies.
    app.addHook('preValidation', async (request) => {
      const scopes = request.routeOptions.config.scopes;
      if (scopes) requireScopes(request, ...scopes);
    });

    if (ctx.config.rateLimit) {
      await app.register(rateLimit, {
        global: true,
        hook: 'preHandler',
        max: ctx.config.rateLimit.max,
        timeWindow: ctx.config.rateLimit.windowMs,
        keyGenerator: (request) => request.principal?.clientId ?? request.ip,
        errorResponseBuilder: (_request, context) =>
          new AppError(
            'TooManyRequests',
            `This client exceeded ${context.max} requests per ${context.after}; retry after ${Math.ceil(context.ttl / 1000)} s.`,
            undefined,
            { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
          ),
      });
    }

    await app.register(webhookRoutes(ctx));
    await app.register(deliveryRoutes(ctx));
    await app.register(collectionRoutes(ctx));
    await app.register(deltaRoutes(ctx));
  };
}
