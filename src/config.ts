// The only reader of process.env: every setting typed, validated and frozen at start (SPEC §5).
// A bad value stops the process with one line naming the variable, the value and what is accepted.

import { parseDurationList, parseDurationMs } from './domain/duration.ts';

export type Role = 'api' | 'worker' | 'all';

export interface RateLimit {
  readonly max: number;
  readonly windowMs: number;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly publicBaseUrl: string | undefined;
  readonly baseDomain: string | undefined;
  readonly allowInsecureDestinations: boolean;
  readonly webhookTtlMs: number;
  readonly retryScheduleMs: readonly number[];
  readonly deliveryTimeoutMs: number;
  readonly maxInFlightPerWebhook: number;
  /** Partitions a new webhook's deliveries are split into, each leased on its own (1: one worker per webhook). */
  readonly deliveryPartitions: number;
  readonly maxWebhooksPerTenant: number;
  readonly pageSize: number;
  readonly changeRetentionMs: number;
  readonly rateLimit: RateLimit | undefined;
  readonly encryptionKey: string | undefined;
  readonly logLevel: string;
  readonly leaseTtlMs: number;
  readonly pgPoolSize: number;
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionTimeoutMs: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function fail(name: string, value: string, expected: string): never {
  throw new ConfigError(`${name}=${JSON.stringify(value)} is not valid: expected ${expected}.`);
}

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(name, raw, `a whole number from ${min} to ${max}`);
  }
  return value;
}

function readDuration(env: Env, name: string, fallback: string): number {
  const raw = env[name] ?? fallback;
  const value = parseDurationMs(raw);
  if (value === undefined || value <= 0)
    fail(name, raw, 'a positive duration such as 500ms, 15s, 5m, 2h or 30d');
  return value;
}

function readBool(env: Env, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return false;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  return fail(name, raw, 'true or false');
}

function readRateLimit(env: Env): RateLimit | undefined {
  const raw = env.TIMEHOOK_RATE_LIMIT;
  if (raw === undefined || raw === '' || raw === 'off') return undefined;
  const match = /^(\d+)\/(\d*)(ms|s|m|h|d)$/.exec(raw.trim());
  const windowMs = match ? parseDurationMs(`${match[2] || '1'}${match[3]}`) : undefined;
  const max = match ? Number(match[1]) : 0;
  if (!match || windowMs === undefined || windowMs <= 0 || max < 1) {
    fail('TIMEHOOK_RATE_LIMIT', raw, 'requests per window such as 100/s, 6000/m or 500/10s, or off');
  }
  return { max, windowMs };
}

function readUrl(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  try {
    const url = new URL(raw);
    if (protocols.includes(url.protocol)) return raw.replace(/\/+$/, '');
  } catch {
    // fall through to the error below
  }
  return fail(name, raw, `a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);
}

/** Reads and validates the environment; throws ConfigError with one clear line on the first bad value. */
export function loadConfig(env: Env = process.env): Config {
  const schedule = env.TIMEHOOK_RETRY_SCHEDULE ?? '5s,5m,30m,2h,5h,10h,10h';
  const retryScheduleMs = parseDurationList(schedule);
  if (!retryScheduleMs || retryScheduleMs.some((v) => v <= 0)) {
    fail(
      'TIMEHOOK_RETRY_SCHEDULE',
      schedule,
      'a comma-separated list of positive durations such as 5s,5m,30m',
    );
  }
  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) fail('LOG_LEVEL', logLevel, LOG_LEVELS.join(', '));
  const encryptionKey = env.TIMEHOOK_ENCRYPTION_KEY || undefined;
  if (encryptionKey !== undefined && Buffer.from(encryptionKey, 'base64').length !== 32) {
    fail('TIMEHOOK_ENCRYPTION_KEY', '<hidden>', '32 random bytes in base64 (openssl rand -base64 32)');
  }
  // Each partition of a webhook sends at least one event at a time: more partitions than the webhook's
  // in-flight limit would exceed it.
  const maxInFlightPerWebhook = readInt(env, 'TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK', 16, 1, 1024);
  const deliveryPartitions = readInt(env, 'TIMEHOOK_DELIVERY_PARTITIONS', 1, 1, 64);
  if (deliveryPartitions > maxInFlightPerWebhook) {
    fail(
      'TIMEHOOK_DELIVERY_PARTITIONS',
      String(deliveryPartitions),
      `at most TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK (${maxInFlightPerWebhook}): each partition sends at least one event at a time`,
    );
  }
  const baseDomain = env.TIMEHOOK_BASE_DOMAIN?.trim().toLowerCase() || undefined;
  if (baseDomain !== undefined && !/^[a-z0-9.-]+(:\d+)?$/.test(baseDomain)) {
    fail('TIMEHOOK_BASE_DOMAIN', baseDomain, 'a domain name such as timehook.example.com');
  }
  return Object.freeze({
    port: readInt(env, 'PORT', 8080, 0, 65535),
    host: env.HOST || '127.0.0.1',
    databaseUrl: readUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: env.DATA_DIR || './data',
    publicBaseUrl: readUrl(env, 'PUBLIC_BASE_URL', ['http:', 'https:']),
    baseDomain,
    allowInsecureDestinations: readBool(env, 'TIMEHOOK_ALLOW_INSECURE_DESTINATIONS'),
    webhookTtlMs: readDuration(env, 'TIMEHOOK_WEBHOOK_TTL', '30d'),
    retryScheduleMs: Object.freeze(retryScheduleMs),
    deliveryTimeoutMs: readDuration(env, 'TIMEHOOK_DELIVERY_TIMEOUT', '15s'),
    maxInFlightPerWebhook,
    deliveryPartitions,
    maxWebhooksPerTenant: readInt(env, 'TIMEHOOK_MAX_WEBHOOKS_PER_TENANT', 50, 1, 100_000),
    pageSize: readInt(env, 'TIMEHOOK_PAGE_SIZE', 500, 1, 10_000),
    changeRetentionMs: readDuration(env, 'TIMEHOOK_CHANGE_RETENTION', '30d'),
    rateLimit: readRateLimit(env),
    encryptionKey,
    logLevel,
    leaseTtlMs: readDuration(env, 'TIMEHOOK_LEASE_TTL', '30s'),
    pgPoolSize: readInt(env, 'TIMEHOOK_PG_POOL_SIZE', 10, 1, 1000),
    statementTimeoutMs: readDuration(env, 'TIMEHOOK_STATEMENT_TIMEOUT', '30s'),
    lockTimeoutMs: readDuration(env, 'TIMEHOOK_LOCK_TIMEOUT', '10s'),
    idleInTransactionTimeoutMs: readDuration(env, 'TIMEHOOK_IDLE_IN_TRANSACTION_TIMEOUT', '60s'),
  });
}
