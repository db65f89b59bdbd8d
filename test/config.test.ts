import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  test('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.dataDir, './data');
    assert.equal(config.webhookTtlMs, 30 * 86_400_000);
    assert.deepEqual(
      config.retryScheduleMs,
      [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
    );
    assert.equal(config.deliveryTimeoutMs, 15_000);
    assert.equal(config.maxInFlightPerWebhook, 16);
    assert.equal(config.maxWebhooksPerTenant, 50);
    assert.equal(config.pageSize, 500);
    assert.equal(config.changeRetentionMs, 30 * 86_400_000);
    assert.equal(config.rateLimit, undefined);
    assert.equal(config.allowInsecureDestinations, false);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.leaseTtlMs, 30_000);
    assert.equal(config.pgPoolSize, 10);
    assert.equal(config.statementTimeoutMs, 30_000);
    assert.equal(config.lockTimeoutMs, 10_000);
    assert.equal(config.idleInTransactionTimeoutMs, 60_000);
  });

  test('parses durations, lists, booleans and rate limits', () => {
    const config = loadConfig({
      TIMEHOOK_WEBHOOK_TTL: '2h',
      TIMEHOOK_RETRY_SCHEDULE: '100ms, 1s,1m',
      TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
      TIMEHOOK_RATE_LIMIT: '600/m',
      DATABASE_URL: 'postgres://u@h:5432/db',
    });
    assert.equal(config.webhookTtlMs, 7_200_000);
    assert.deepEqual(config.retryScheduleMs, [100, 1000, 60_000]);
    assert.equal(config.allowInsecureDestinations, true);
    assert.deepEqual(config.rateLimit, { max: 600, windowMs: 60_000 });
    assert.equal(config.databaseUrl, 'postgres://u@h:5432/db');
  });

  const bad: [string, string, RegExp][] = [
    ['PORT', '80a', /PORT="80a" is not valid: expected a whole number/],
    ['PORT', '70000', /from 0 to 65535/],
    ['TIMEHOOK_WEBHOOK_TTL', '30 days', /TIMEHOOK_WEBHOOK_TTL.*positive duration/],
    ['TIMEHOOK_DELIVERY_TIMEOUT', '0s', /positive duration/],
    ['TIMEHOOK_RETRY_SCHEDULE', '5s,,5m', /comma-separated list/],
    ['TIMEHOOK_ALLOW_INSECURE_DESTINATIONS', 'yes', /true or false/],
    ['TIMEHOOK_RATE_LIMIT', 'fast', /requests per window/],
    ['DATABASE_URL', 'mysql://x', /postgres:\/\//],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL/],
    ['TIMEHOOK_LOCK_TIMEOUT', 'never', /TIMEHOOK_LOCK_TIMEOUT.*positive duration/],
    ['TIMEHOOK_IDLE_IN_TRANSACTION_TIMEOUT', '0s', /TIMEHOOK_IDLE_IN_TRANSACTION_TIMEOUT.*positive duration/],
    ['TIMEHOOK_ENCRYPTION_KEY', 'short', /32 random bytes/],
    ['TIMEHOOK_PAGE_SIZE', '0', /from 1 to/],
  ];
  for (const [name, value, message] of bad) {
    test(`rejects ${name}=${value} with one clear line`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          assert.doesNotMatch(error.message, /\n/);
          return true;
        },
      );
    });
  }

  test('never echoes the encryption key in its error', () => {
    assert.throws(
      () => loadConfig({ TIMEHOOK_ENCRYPTION_KEY: 'c2VjcmV0LXZhbHVl' }),
      (error: Error) => {
        assert.doesNotMatch(error.message, /c2VjcmV0LXZhbHVl/);
        return true;
      },
    );
  });
});
