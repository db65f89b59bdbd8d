// The OAuth 2.0 token endpoint (client credentials, form body or HTTP Basic) and the discovery and JWKS
// documents (SPEC §1.1). Errors follow RFC 6749 §5.2, not the connector's error format. Registered at the root
// (as upstream's authentication host) and under the connector prefix (an alias); each place is its own issuer.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { FailureLimiter } from '../auth/failure-limiter.ts';
import { TOKEN_TTL_SECONDS } from '../auth/key-ring.ts';
import { issueAccessToken } from '../auth/tokens.ts';
import { ALL_SCOPES, parseScopes } from '../domain/scopes.ts';
import { verifyAgainstDummy, verifySecret } from '../security/password.ts';
import { findClient } from '../store/clients.ts';
import { issuerOrigin, type ApiContext } from './context.ts';

const TenantParams = Type.Object({ tenant: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }) });

type OAuthError =
  | 'invalid_request'
  | 'invalid_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'temporarily_unavailable';

function oauthError(
  reply: FastifyReply,
  status: number,
  error: OAuthError,
  description: string,
): FastifyReply {
  return reply
    .code(status)
    .headers({ 'cache-control': 'no-store', pragma: 'no-cache' })
    .send({ error, error_description: description });
}

/** Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded id and secret) or the form body. */
function readCredentials(
  request: FastifyRequest,
  form: Record<string, string>,
): { id: string; secret: string; basic: boolean } | { problem: string } | undefined {
  const header = request.headers.authorization;
  const hasBodyCredentials = form.client_id !== undefined || form.client_secret !== undefined;
  if (header?.toLowerCase().startsWith('basic ')) {
    if (hasBodyCredentials)
      return { problem: 'Send client credentials either by HTTP Basic or in the body, not both.' };
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { problem: 'The Basic authorization header is malformed.' };
    try {
      return {
        id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
        secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
        basic: true,
      };
    } catch {
      return { problem: 'The Basic authorization header is malformed.' };
    }
  }
  if (!hasBodyCredentials) return undefined;
  return { id: form.client_id ?? '', secret: form.client_secret ?? '', basic: false };
}

/**
 * The auth routes, to be registered at each prefix they are served under; every registration shares one
 * failure limiter. The issuer is `<origin><prefix>/tenants/{tenant}`: a token's `iss` and a discovery
 * document name the place they came from, so an OIDC client's strict issuer check passes at either.
 */
export function authRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const limiter = new FailureLimiter();
  return async (app) => {
    const issuerFor = (request: FastifyRequest, tenant: string) =>
      `${issuerOrigin(ctx.config, request)}${app.prefix}/tenants/${tenant}`;

    app.post('/tenants/:tenant/connect/token', { schema: { hide: true } }, async (request, reply) => {
      const tenant = (request.params as { tenant: string }).tenant;
      const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (
        type !== 'application/x-www-form-urlencoded' ||
        typeof request.body !== 'object' ||
        request.body === null
      ) {
        return oauthError(
          reply,
          400,
          'invalid_request',
          'Send the token request as application/x-www-form-urlencoded.',
        );
      }
      const form = request.body as Record<string, string>;
      if (form.grant_type === undefined)
        return oauthError(reply, 400, 'invalid_request', 'grant_type is required.');
      if (form.grant_type !== 'client_credentials') {
        return oauthError(
          reply,
          400,
          'unsupported_grant_type',
          'Only grant_type=client_credentials is supported.',
        );
      }
      const credentials = readCredentials(request, form);
      if (credentials && 'problem' in credentials)
        return oauthError(reply, 400, 'invalid_request', credentials.problem);
      if (!credentials || credentials.id === '') {
        return oauthError(
          reply,
          401,
          'invalid_client',
          'Client authentication is required (client_id and client_secret).',
        );
      }
      const wait = limiter.retryAfterSeconds(credentials.id);
      if (wait > 0) {
        void reply.header('retry-after', String(wait));
        return oauthError(
          reply,
          429,
          'temporarily_unavailable',
          `Too many failed attempts for this client; retry in ${wait} s.`,
        );
      }
      const client = await findClient(ctx.db, credentials.id);
      const valid =
        client && client.revokedAt === null && client.tenantId === tenant
          ? await verifySecret(credentials.secret, client.secretHash)
          : await verifyAgainstDummy(credentials.secret);
      if (!client || !valid) {
        limiter.recordFailure(credentials.id);
        if (credentials.basic) void reply.header('www-authenticate', `Basic realm="${tenant}"`);
        return oauthError(
          reply,
          401,
          'invalid_client',
          'The client is unknown, revoked, or the secret is wrong.',
        );
      }
      limiter.recordSuccess(credentials.id);
      let scopes = client.scopes;
      if (form.scope !== undefined && form.scope.trim() !== '') {
        const requested = parseScopes(form.scope);
        const notGranted = requested.scopes.filter((s) => !client.scopes.includes(s));
        if (requested.unknown.length > 0 || notGranted.length > 0) {
          const bad = [...requested.unknown, ...notGranted].join(' ');
          return oauthError(
            reply,
            400,
            'invalid_scope',
            `These scopes are unknown or not granted to this client: ${bad}.`,
          );
        }
        scopes = requested.scopes;
      }
      const accessToken = await issueAccessToken(ctx.keyRing, issuerFor(request, tenant), {
        tenant,
        clientId: client.id,
        scopes,
      });
      return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send({
        access_token: accessToken,
        expires_in: TOKEN_TTL_SECONDS,
        token_type: 'Bearer',
        scope: scopes.join(' '),
      });
    });

    app.get(
      '/tenants/:tenant/.well-known/openid-configuration',
      { schema: { params: TenantParams, hide: true } },
      async (request) => {
        const issuer = issuerFor(request, request.params.tenant);
        return {
          issuer,
          token_endpoint: `${issuer}/connect/token`,
          jwks_uri: `${issuer}/.well-known/jwks.json`,
          grant_types_supported: ['client_credentials'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
          scopes_supported: ALL_SCOPES,
          id_token_signing_alg_values_supported: ['ES256'],
          response_types_supported: ['token'],
        };
      },
    );

    app.get(
      '/tenants/:tenant/.well-known/jwks.json',
      { schema: { params: TenantParams, hide: true } },
      async () => ctx.keyRing.jwks(),
    );
  };
}
