// Fairness across tenants on one destination (issue 22): twenty webhooks of one tenant whose endpoint hangs do
// not delay another tenant's webhook on the same host:port beyond its own round trip — each webhook sends over
// connections of its own.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { absence, putOk, seed } from '../helpers/collections.ts';
import { useDeliveryHarness } from '../helpers/delivery-harness.ts';
import { newTenant } from '../helpers/harness.ts';
import { reply, startReceiver, waitUntil } from '../helpers/receiver.ts';

const HANG_MS = 20_000;
const h = await useDeliveryHarness({
  env: { TIMEHOOK_DELIVERY_TIMEOUT: `${HANG_MS}ms`, TIMEHOOK_RETRY_SCHEDULE: '1m' },
});

test("twenty hanging webhooks of one tenant do not delay another tenant's webhook on the same origin", async () => {
  const receiver = await startReceiver((req) => (req.path === '/hang' ? reply.hang() : reply.ok()));
  try {
    const noisy = await h.token(newTenant());
    await seed(h, noisy);
    for (let i = 0; i < 20; i++) await h.createWebhook(noisy, receiver.url('/hang'));
    const upsert = Array.from({ length: 20 }, (_, i) => ({
      ...absence({ request: null }),
      id: 5000 + i,
    }));
    const batch = await h.request({
      method: 'POST',
      path: '/absences/batch',
      token: noisy,
      body: { upsert },
    });
    assert.equal(batch.statusCode, 200, batch.body);
    // 20 webhooks × 16 in flight = 320 hanging requests: more than one origin's pool of 256 connections holds.
    await waitUntil(() => receiver.requestsTo('/hang').length >= 250, 10_000, '250 hanging requests');

    const quiet = await h.token(newTenant());
    await seed(h, quiet);
    await h.createWebhook(quiet, receiver.url('/ok'));
    const committed = Date.now();
    await putOk(h, quiet, '/absences/1001', absence());
    await receiver.waitFor((rs) => rs.some((r) => r.path === '/ok'), HANG_MS, 'the quiet webhook');
    const arrived = receiver.requestsTo('/ok')[0]!.arrivedAt;
    assert.ok(
      arrived - committed < 1_000,
      `the quiet webhook's event arrived ${arrived - committed} ms after its commit, behind the hanging ones`,
    );
  } finally {
    await receiver.close();
  }
});
