// Expiry (SPEC §1.2, §3): at validUntil nothing more is sent, retries included, and open deliveries are
// abandoned. A separate file because the webhook lifetime is a setting of the whole harness.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { absence, putOk, seed } from '../helpers/collections.ts';
import { useDeliveryHarness } from '../helpers/delivery-harness.ts';
import { newTenant } from '../helpers/harness.ts';
import { reply, startReceiver, waitUntil } from '../helpers/receiver.ts';

const h = await useDeliveryHarness({
  env: { TIMEHOOK_WEBHOOK_TTL: '3s', TIMEHOOK_RETRY_SCHEDULE: Array(20).fill('300ms').join(',') },
});

test('an expired webhook gets nothing more: neither retries nor new changes', async () => {
  const token = await h.token(newTenant());
  await seed(h, token);
  const receiver = await startReceiver((req) =>
    req.body.includes('"id":1002') ? reply.status(500) : reply.ok(),
  );
  try {
    const hook = await h.createWebhook(token, receiver.url());
    const validUntil = Date.parse(String(hook.validUntil));
    await putOk(h, token, '/absences/1001', absence());
    await putOk(h, token, '/absences/1002', absence({ date: '2026-03-03' }));
    await receiver.waitFor((rs) => rs.some((r) => r.body.includes('"id":1001')));
    await waitUntil(() => Date.now() > validUntil + 100, 10_000, 'validUntil');
    await putOk(h, token, '/absences/1003', absence({ date: '2026-03-04' }));
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const retries = receiver.requests.filter((r) => r.body.includes('"id":1002'));
    assert.ok(retries.length >= 2, 'the failing event was retried while the webhook lived');
    for (const r of receiver.requests)
      assert.ok(r.arrivedAt < validUntil + 200, `sent ${r.arrivedAt - validUntil} ms after validUntil`);
    assert.ok(!receiver.requests.some((r) => r.body.includes('"id":1003')), 'a change after expiry was sent');

    const webhook = (await h.request({ method: 'GET', path: `/webhooks/${hook.id}`, token })).json();
    assert.equal(webhook.status, 'Disabled');
    assert.equal(webhook.disabledReason, 'Expired');
    await waitUntil(
      async () => (await h.deliveries(token, hook.id)).some((d) => d.status === 'Abandoned'),
      10_000,
      'the failing delivery Abandoned',
    );
    const log = await h.deliveries(token, hook.id);
    assert.deepEqual(log.map((d) => [d.entityId, d.status]).sort(), [
      [1001, 'Delivered'],
      [1002, 'Abandoned'],
    ]);
    const redeliver = await h.request({
      method: 'POST',
      path: `/webhooks/${hook.id}/deliveries/${log[0]!.id}/redeliver`,
      token,
    });
    assert.equal(redeliver.statusCode, 409);
    assert.match(redeliver.json().error.message, /Disabled\/Expired/);
  } finally {
    await receiver.close();
  }
});
