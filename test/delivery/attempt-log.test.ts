// The log line of every delivery attempt (SPEC §5), from a real `timehook serve` process at the default
// LOG_LEVEL=info: one pino JSON line per attempt with the webhook, delivery, change version, entity, attempt
// number, status, duration and outcome (and the next attempt of a retry). The line is written by a child
// logger without the redaction pass (dispatcher.ts): this test holds its fields in place.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { absence, definition, person } from '../helpers/collections.ts';
import {
  connectorOk,
  createCliClient,
  createProcessStore,
  fetchToken,
  startServerProcess,
  type ServerProcess,
} from '../helpers/processes.ts';
import { reply, startReceiver, waitUntil } from '../helpers/receiver.ts';

interface AttemptLine {
  level: number;
  msg: string;
  webhookId: string;
  deliveryId: number;
  changeVersion: string;
  entityId: number;
  attempt: number;
  statusCode?: number;
  error?: string;
  durationMs: number;
  outcome: string;
  nextAttemptAt?: string;
}

const attemptLines = (server: ServerProcess): AttemptLine[] =>
  server
    .output()
    .split('\n')
    .filter((line) => line.includes('"msg":"delivery attempt"'))
    .map((line) => JSON.parse(line) as AttemptLine);

test(
  'each attempt logs one line with its webhook, delivery, version, entity, attempt, status and outcome',
  { timeout: 120_000 },
  async () => {
    const store = await createProcessStore();
    // The first attempt is answered 503, the second 200.
    const receiver = await startReceiver((r) => (r.index === 0 ? reply.status(503, 'busy') : reply.ok()));
    const env = {
      ...store.env,
      TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
      TIMEHOOK_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      TIMEHOOK_RETRY_SCHEDULE: '100ms',
    };
    let server: ServerProcess | undefined;
    try {
      const credentials = await createCliClient(env, 'logs');
      server = await startServerProcess(env);
      const token = await fetchToken(server.url, 'logs', credentials);
      const ok = connectorOk(server.url, token, 'TimehookLogTest/1.0');
      await ok('PUT', '/people/1', person(1));
      await ok('PUT', '/absence-definitions/10', definition(10));
      await ok('PUT', '/shift-definitions/20', definition(20));
      const webhook = (await ok('POST', '/webhooks', {
        destinationUrl: receiver.url('/logged'),
        collectionName: 'absences',
      })) as { id: string };
      const stored = (await ok('PUT', '/absences/4242', absence())) as { changeVersion: string };

      const running = server;
      await waitUntil(() => attemptLines(running).length >= 2, 30_000, 'two attempt lines');
      const [failed, delivered] = attemptLines(running);
      assert.ok(failed && delivered);
      for (const line of [failed, delivered]) {
        assert.equal(line.level, 30, 'logged at info');
        assert.equal(line.webhookId, webhook.id);
        assert.equal(line.changeVersion, stored.changeVersion);
        assert.equal(line.entityId, 4242);
        assert.equal(typeof line.deliveryId, 'number');
        assert.equal(typeof line.durationMs, 'number');
      }
      assert.equal(delivered.deliveryId, failed.deliveryId, 'both attempts are of one delivery');
      assert.deepEqual(
        [failed.attempt, failed.statusCode, failed.outcome, typeof failed.nextAttemptAt],
        [1, 503, 'retry', 'string'],
      );
      assert.ok(!Number.isNaN(Date.parse(failed.nextAttemptAt!)), 'nextAttemptAt is a timestamp');
      assert.deepEqual(
        [delivered.attempt, delivered.statusCode, delivered.outcome, delivered.nextAttemptAt],
        [2, 200, 'delivered', undefined],
      );
    } finally {
      if (server && server.child.exitCode === null && server.child.signalCode === null) await server.stop();
      await receiver.close();
      await store.remove();
    }
  },
);
