// A real app on a real store for one test file: PGlite in memory, or — when DATABASE_URL is set — a fresh
// PostgreSQL schema that is dropped afterwards. Requests go through fastify's inject (no socket).

import { randomBytes, randomUUID } from 'node:crypto';
import { after } from 'node:test';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/app.ts';
import { KeyRing } from '../../src/auth/key-ring.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { ALL_SCOPES } from '../../src/domain/scopes.ts';
import { createLogger } from '../../src/log.ts';
import { hashSecret } from '../../src/security/password.ts';
import type { SecretBox } from '../../src/security/secret-box.ts';
import { insertClient } from '../../src/store/clients.ts';
import type { Db } from '../../src/store/db.ts';
import { prepareStore } from '../../src/store/open.ts';
import { openPgDb } from '../../src/store/pg-db.ts';
import { openPgliteDb } from '../../src/store/pglite-db.ts';
import { ensureTenant } from '../../src/store/tenants.ts';

export const PREFIX = '/connector/protimeapi/api/v1';
export const USER_AGENT = 'TimehookTests/1.0 (Timehook)';

export interface Harness {
  app: FastifyInstance;
  db: Db;
  box: SecretBox;
  config: Config;
  keyRing: KeyRing;
  /** The clock the app sees: the real time while `fixed` is undefined. */
  clock: { fixed: Date | undefined };
  /** Creates a client in the tenant (creating the tenant) and returns its credentials. */
  createClient(
    tenant: string,
    scopes?: readonly string[],
  ): Promise<{ clientId: string; clientSecret: string }>;
  /** A bearer token for a new client of the tenant with the given scopes (all by default). */
  token(tenant: string, scopes?: readonly string[]): Promise<string>;
  /** An injected connector request with User-Agent and, when given, the bearer token. */
  request(options: {
    method: InjectOptions['method'];
    path: string;
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
  }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** A unique tenant name for one test, so tests of a file never see each other's data. */
export const newTenant = (): string => `t-${randomBytes(5).toString('hex')}`;

export const usingPostgres = (): boolean => Boolean(process.env.DATABASE_URL);

/** Opens a fresh store: a new in-memory PGlite, or a new schema on DATABASE_URL. */
export async function openTestDb(): Promise<{ db: Db; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const db = await openPgliteDb(undefined);
    return { db, drop: async () => undefined };
  }
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const db = await openPgDb({ connectionString: url, poolSize: 8, statementTimeoutMs: 30_000, schema });
  return {
    db,
    drop: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`drop schema ${schema} cascade`);
      await client.end();
    },
  };
}

export async function createHarness(env: Record<string, string> = {}): Promise<Harness> {
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    TIMEHOOK_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ...env,
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
  });
  const { db, drop } = await openTestDb();
  const store = await prepareStore(db, config);
  const keyRing = new KeyRing(db, store.box);
  await keyRing.init();
  const clock: { fixed: Date | undefined } = { fixed: undefined };
  const app = await buildApp({
    db,
    box: store.box,
    config,
    keyRing,
    logger: createLogger(config.logLevel),
    metrics: new Registry(),
    now: () => clock.fixed ?? new Date(),
  });
  await app.ready();

  const harness: Harness = {
    app,
    db,
    box: store.box,
    config,
    keyRing,
    clock,
    async createClient(tenant, scopes = ALL_SCOPES) {
      const clientId = randomUUID();
      const clientSecret = randomBytes(24).toString('base64url');
      await ensureTenant(db, tenant);
      await insertClient(db, {
        id: clientId,
        tenantId: tenant,
        name: 'test',
        secretHash: await hashSecret(clientSecret),
        scopes: [...scopes],
      });
      return { clientId, clientSecret };
    },
    async token(tenant, scopes = ALL_SCOPES) {
      const { clientId, clientSecret } = await harness.createClient(tenant, scopes);
      const response = await app.inject({
        method: 'POST',
        url: `/tenants/${tenant}/connect/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: clientId,
          client_secret: clientSecret,
        }).toString(),
      });
      if (response.statusCode !== 200)
        throw new Error(`token request failed: ${response.statusCode} ${response.body}`);
      return response.json<{ access_token: string }>().access_token;
    },
    request({ method, path, token, body, headers }) {
      return app.inject({
        method,
        url:
          path.startsWith('/') &&
          !path.startsWith(PREFIX) &&
          !path.startsWith('/swagger') &&
          !/^\/(healthz|readyz|metrics)/.test(path)
            ? `${PREFIX}${path}`
            : path,
        headers: {
          'user-agent': USER_AGENT,
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
    },
    async close() {
      await app.close();
      await db.close();
      await drop();
    },
  };
  return harness;
}

/**
 * Another app on the harness's store, keys and clock, built with further settings; for settings that need no store
 * of their own (a fresh store costs seconds). Closed automatically after the file's tests.
 */
export async function useAppWith(harness: Harness, env: Record<string, string>): Promise<FastifyInstance> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env });
  const app = await buildApp({
    db: harness.db,
    box: harness.box,
    config,
    keyRing: harness.keyRing,
    logger: createLogger(config.logLevel),
    metrics: new Registry(),
    now: () => harness.clock.fixed ?? new Date(),
  });
  await app.ready();
  after(() => app.close());
  return app;
}

/** createHarness, closed automatically after the file's tests. */
export async function useHarness(env: Record<string, string> = {}): Promise<Harness> {
  const harness = await createHarness(env);
  after(() => harness.close());
  return harness;
}
