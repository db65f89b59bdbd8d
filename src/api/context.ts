// What the API's plugins are built from: the store, the configuration and the auth services.
// Also augments fastify's request and route config with the principal and the scope a route needs.

import type { FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import type { Principal } from '../auth/tokens.ts';
import type { KeyRing } from '../auth/key-ring.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { SecretBox } from '../security/secret-box.ts';
import type { Db } from '../store/db.ts';

export interface ApiContext {
  db: Db;
  box: SecretBox;
  config: Config;
  keyRing: KeyRing;
  logger: Logger;
  metrics: Registry;
  /** The clock, injectable for tests of expiry. */
  now: () => Date;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** Scopes the route needs (all of them); checked by the connector plugin before the handler. */
    scopes?: string[];
  }
}

export const CONNECTOR_PREFIX = '/connector/protimeapi/api/v1';

/** The principal of an authenticated connector request (the bearer hook guarantees it is set). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principalOf called outside the connector plugin.');
  return request.principal;
}

/** The stand-in for a wildcard listen address: the loopback address of the same family. */
const WILDCARD_STAND_INS: Record<string, string> = { '0.0.0.0': '127.0.0.1', '::': '::1' };

/**
 * The origin of the token issuer and of the discovery document's URLs (SPEC §1.1). Never the bare Host header,
 * so a request cannot make Timehook publish another host's token endpoint. In order:
 * - `authentication.<TIMEHOOK_BASE_DOMAIN>` when the request came to exactly that host, the scheme being
 *   PUBLIC_BASE_URL's (http when it is unset): a host the configuration vouches for, as upstream's issuer;
 * - PUBLIC_BASE_URL;
 * - the address the server listens on, `http://<HOST>:<bound port>` (127.0.0.1 or [::1] for a wildcard HOST;
 *   the configured PORT until the server listens, as under inject).
 */
export function issuerOrigin(config: Config, request: FastifyRequest): string {
  if (config.baseDomain !== undefined) {
    const authenticationHost = `authentication.${config.baseDomain}`;
    if (request.host.toLowerCase() === authenticationHost) {
      const scheme = config.publicBaseUrl ? new URL(config.publicBaseUrl).protocol : 'http:';
      return `${scheme}//${authenticationHost}`;
    }
  }
  if (config.publicBaseUrl !== undefined) return config.publicBaseUrl;
  const bound = request.server.server.address();
  const port = bound !== null && typeof bound === 'object' ? bound.port : config.port;
  const host = WILDCARD_STAND_INS[config.host] ?? config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
