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

/** The public origin for links and the token issuer: PUBLIC_BASE_URL, else the request's own. */
export function publicOrigin(config: Config, request: FastifyRequest): string {
  return config.publicBaseUrl ?? `${request.protocol}://${request.host}`;
}
