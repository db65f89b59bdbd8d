// End-to-end delivery over real sockets (SPEC §3, §1.3): changes written through the HTTP API reach a local
// receiver, signed and verified with the standardwebhooks package; outcomes, retries and the delivery log.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { messageId } from '../../src/delivery/signing.ts';
import { parseChangeVersion } from '../../src/domain/change-version.ts';
import { absence, putOk, seed } from '../helpers/collections.ts';
import { useDeliveryHarness, type AttemptJson, type DeliveryView } from '../helpers/delivery-harness.ts';
import { newTenant } from '../helpers/harness.ts';
import { reply, startReceiver, waitUntil, type Receiver, type ReceivedRequest } from '../helpers/receiver.ts';

const h = await useDeliveryHarness({ env: { TIMEHOOK_PAGE_SIZE: '3', LOG_LEVEL: 'error' } });
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** A tenant with people 1–2 and the definitions absences refer to, and an all-scopes token. */
async function tenantWithData(): Promise<string> {
  const token = await h.token(newTenant());
  await seed(h, token);
  return token;
}

async function withReceiver(
  script: Parameters<typeof startReceiver>[0],
  fn: (r: Receiver) => Promise<void>,
): Promise<void> {
  const receiver = await startReceiver(script);
  try {
    await fn(receiver);
  } finally {
    await receiver.close();
  }
}

const headersOf = (r: ReceivedRequest) => ({
  'webhook-id': String(r.headers['webhook-id']),
  'webhook-timestamp': String(r.headers['webhook-timestamp']),
  'webhook-signature': String(r.headers['webhook-signature']),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function webhookStatus(token: string, id: string) {
  const res = await h.request({ method: 'GET', path: `/webhooks/${id}`, token });
  return res.json();
}

describe('events', () => {
  test('an InsertOrUpdate event is the stored object with Standard Webhooks headers that standardwebhooks verifies', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      const hook = await h.createWebhook(token, r.url('/hook'));
      const stored = await putOk(h, token, '/absences/1001', absence());
      await r.waitFor((rs) => rs.length === 1);
      const [req] = r.requests;
      assert.equal(req!.method, 'POST');
      assert.equal(req!.path, '/hook');
      assert.equal(req!.body, JSON.stringify({ changeType: 'InsertOrUpdate', data: stored }));
      assert.equal(req!.headers['content-type'], 'application/json');
      assert.equal(req!.headers['user-agent'], `Timehook/${VERSION}`);
      assert.equal(req!.headers['webhook-id'], messageId(hook.id, parseChangeVersion(stored.changeVersion)!));
      const timestamp = Number(req!.headers['webhook-timestamp']);
      assert.ok(Math.abs(timestamp - Date.now() / 1000) < 60, `timestamp ${timestamp}`);
      assert.match(String(req!.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]{43}=$/);
      assert.deepEqual(new Webhook(hook.key).verify(req!.body, headersOf(req!)), {
        changeType: 'InsertOrUpdate',
        data: stored,
      });
    });
  });

  test('a Delete event carries only changeVersion and id, after the InsertOrUpdate', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      const hook = await h.createWebhook(token, r.url());
      await putOk(h, token, '/absences/1001', absence());
      const res = await h.request({ method: 'DELETE', path: '/absences/1001', token });
      assert.equal(res.statusCode, 204);
      await r.waitFor((rs) => rs.length === 2);
      const deleted = JSON.parse(r.requests[1]!.body);
      assert.equal(deleted.changeType, 'Delete');
      assert.deepEqual(Object.keys(deleted.data), ['changeVersion', 'id']);
      assert.equal(deleted.data.id, 1001);
      assert.equal(
        r.requests[1]!.body,
        `{"changeType":"Delete","data":{"changeVersion":"${deleted.data.changeVersion}","id":1001}}`,
      );
      assert.ok(deleted.data.changeVersion > JSON.parse(r.requests[0]!.body).data.changeVersion);
      assert.doesNotThrow(() => new Webhook(hook.key).verify(r.requests[1]!.body, headersOf(r.requests[1]!)));
    });
  });

  test('events carry the external references the webhook asked for', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      await h.createWebhook(token, r.url(), {
        externalReferences: '(people,@employee-number)(absence-definitions,@absence-code)',
      });
      await putOk(h, token, '/absences/1001', absence());
      await r.waitFor((rs) => rs.length === 1);
      const { data } = JSON.parse(r.requests[0]!.body);
      assert.deepEqual(data.person, { id: 1, externalReferences: { '@employee-number': 'E1' } });
      assert.deepEqual(data.resultingAbsenceDefinition, {
        id: 10,
        externalReferences: { '@absence-code': 'C10' },
      });
      assert.deepEqual(data.requestedAbsenceDefinition, {
        id: 10,
        externalReferences: { '@absence-code': 'C10' },
      });
      assert.deepEqual(data.shiftDefinition, { id: 20 });
    });
  });

  test('changes from before the webhook, and of other collections, are not sent to it', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      await putOk(h, token, '/absences/1001', absence());
      await h.createWebhook(token, r.url());
      await putOk(h, token, '/people/1', { lastName: 'Renamed', badgeNumber: null, employeeNumber: 'E1' });
      const later = await putOk(h, token, '/absences/1002', absence({ date: '2026-03-03' }));
      await r.waitFor((rs) => rs.length >= 1);
      await sleep(300);
      assert.equal(r.requests.length, 1);
      assert.equal(JSON.parse(r.requests[0]!.body).data.changeVersion, later.changeVersion);
    });
  });

  test('every webhook of the collection gets every event, each signed with its own key', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      const a = await h.createWebhook(token, r.url('/a'));
      const b = await h.createWebhook(token, r.url('/b'));
      await putOk(h, token, '/absences/1001', absence());
      await r.waitFor((rs) => rs.length === 2);
      for (const [hook, path] of [
        [a, '/a'],
        [b, '/b'],
      ] as const) {
        const [req] = r.requestsTo(path);
        assert.ok(req, path);
        assert.doesNotThrow(() => new Webhook(hook.key).verify(req.body, headersOf(req)));
        assert.equal(
          req.headers['webhook-id'],
          messageId(hook.id, parseChangeVersion(JSON.parse(req.body).data.changeVersion)!),
        );
      }
    });
  });
});

describe('retries and outcomes', () => {
  test('a failed event is retried on the schedule with the identical body and webhook-id', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) => (req.index < 2 ? reply.status(500, 'boom') : reply.ok()),
      async (r) => {
        const hook = await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        await r.waitFor((rs) => rs.length === 3);
        const [first, second, third] = r.requests as [ReceivedRequest, ReceivedRequest, ReceivedRequest];
        assert.equal(second.body, first.body);
        assert.equal(third.body, first.body);
        assert.equal(second.headers['webhook-id'], first.headers['webhook-id']);
        assert.equal(third.headers['webhook-id'], first.headers['webhook-id']);
        // TIMEHOOK_RETRY_SCHEDULE=100ms,200ms: the waits are at least the schedule's.
        assert.ok(second.arrivedAt - first.arrivedAt >= 100, `${second.arrivedAt - first.arrivedAt} ms`);
        assert.ok(third.arrivedAt - second.arrivedAt >= 200, `${third.arrivedAt - second.arrivedAt} ms`);
        for (const req of r.requests)
          assert.doesNotThrow(() => new Webhook(hook.key).verify(req.body, headersOf(req)));

        let log: DeliveryView | undefined;
        await waitUntil(
          async () => {
            [log] = await h.deliveries(token, hook.id);
            return log?.status === 'Delivered';
          },
          10_000,
          'Delivered in the log',
        );
        const detail = await h.delivery(token, hook.id, log!.id);
        assert.equal(detail.attemptCount, 3);
        assert.equal(detail.nextAttemptAt, null);
        assert.ok(detail.deliveredAt);
        assert.deepEqual(
          detail.attempts.map((a) => [a.statusCode, a.responseBody]),
          [
            [500, 'boom'],
            [500, 'boom'],
            [200, 'ok'],
          ],
        );
        for (const a of detail.attempts) assert.ok(Number.isInteger(a.durationMs) && a.durationMs >= 0);
      },
    );
  });

  test('a 429 with Retry-After delays the next attempt at least that long', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) => (req.index === 0 ? reply.retryAfter(429, '1') : reply.ok()),
      async (r) => {
        await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        await r.waitFor((rs) => rs.length === 2);
        const gap = r.requests[1]!.arrivedAt - r.requests[0]!.arrivedAt;
        assert.ok(gap >= 1_000, `retried after ${gap} ms, before Retry-After: 1`);
      },
    );
  });

  test('a 503 with an HTTP-date Retry-After is honoured too', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) =>
        req.index === 0 ? reply.retryAfter(503, new Date(Date.now() + 2_000).toUTCString()) : reply.ok(),
      async (r) => {
        await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        await r.waitFor((rs) => rs.length === 2);
        const gap = r.requests[1]!.arrivedAt - r.requests[0]!.arrivedAt;
        // The date has one-second resolution: at least ~1 s of the 2 s remain.
        assert.ok(gap >= 1_000, `retried after ${gap} ms`);
      },
    );
  });

  test('410 disables the webhook (EndpointGone) at once and abandons its open deliveries', async () => {
    const token = await tenantWithData();
    await withReceiver(
      () => ({ ...reply.gone(), delayMs: 300 }),
      async (r) => {
        const hook = await h.createWebhook(token, r.url());
        // Versions of one entity: the first answer (delayed) disables; the later ones were never sent.
        await putOk(h, token, '/absences/1001', absence());
        await putOk(h, token, '/absences/1001', absence({ durationInMinutes: 60 }));
        await putOk(h, token, '/absences/1001', absence({ durationInMinutes: 30 }));
        await waitUntil(
          async () => (await webhookStatus(token, hook.id)).status === 'Disabled',
          10_000,
          'disabled',
        );
        const webhook = await webhookStatus(token, hook.id);
        assert.equal(webhook.disabledReason, 'EndpointGone');
        let log: DeliveryView[] = [];
        await waitUntil(
          async () => {
            log = await h.deliveries(token, hook.id);
            return log.every((d) => d.status === 'Abandoned');
          },
          10_000,
          'all deliveries Abandoned',
        );
        assert.ok(log.length >= 2, 'a later version was queued behind the first');
        assert.ok(
          log.some((d) => d.attemptCount === 0),
          'an unsent delivery was abandoned',
        );
        const sent = r.requests.length;
        assert.equal(sent, 1);
        await putOk(h, token, '/absences/1002', absence({ date: '2026-03-04' }));
        await sleep(300);
        assert.equal(r.requests.length, sent, 'nothing is sent to a disabled webhook');
      },
    );
  });

  test('an event that exhausts the retry schedule disables the webhook (RetriesExhausted)', async () => {
    const token = await tenantWithData();
    await withReceiver(
      () => reply.status(500),
      async (r) => {
        const hook = await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        await waitUntil(
          async () => (await webhookStatus(token, hook.id)).status === 'Disabled',
          10_000,
          'disabled',
        );
        assert.equal((await webhookStatus(token, hook.id)).disabledReason, 'RetriesExhausted');
        // 100ms,200ms: the first attempt and two retries.
        assert.equal(r.requests.length, 3);
        let log: DeliveryView[] = [];
        await waitUntil(
          async () => {
            log = await h.deliveries(token, hook.id);
            return log[0]?.status === 'Abandoned';
          },
          10_000,
          'Abandoned',
        );
        const detail = await h.delivery(token, hook.id, log[0]!.id);
        assert.equal(detail.attemptCount, 3);
        assert.equal(detail.attempts.length, 3);
        assert.equal(detail.nextAttemptAt, null);
      },
    );
  });

  test('redirects are not followed: a 3xx is a failed attempt, retried', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) => (req.path === '/hook' && req.index === 0 ? reply.redirect('/elsewhere', 307) : reply.ok()),
      async (r) => {
        const hook = await h.createWebhook(token, r.url('/hook'));
        await putOk(h, token, '/absences/1001', absence());
        await r.waitFor((rs) => rs.length === 2);
        await sleep(200);
        assert.deepEqual(
          r.requests.map((q) => q.path),
          ['/hook', '/hook'],
        );
        let log: DeliveryView[] = [];
        await waitUntil(async () => {
          log = await h.deliveries(token, hook.id);
          return log[0]?.status === 'Delivered';
        });
        const detail = await h.delivery(token, hook.id, log[0]!.id);
        assert.deepEqual(
          detail.attempts.map((a) => a.statusCode),
          [307, 200],
        );
      },
    );
  });

  test('a hanging endpoint hits the timeout while another webhook keeps flowing', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) => (req.path === '/hang' ? reply.hang() : reply.ok()),
      async (r) => {
        const hanging = await h.createWebhook(token, r.url('/hang'));
        await h.createWebhook(token, r.url('/ok'));
        for (let i = 1; i <= 5; i++) await putOk(h, token, `/absences/${1000 + i}`, absence());
        await r.waitFor(
          (rs) => rs.filter((q) => q.path === '/ok').length === 5,
          10_000,
          'the healthy webhook',
        );
        const firstHang = r.requestsTo('/hang')[0];
        assert.ok(firstHang, 'the hanging endpoint was called');
        const lastOk = Math.max(...r.requestsTo('/ok').map((q) => q.arrivedAt));
        // TIMEHOOK_DELIVERY_TIMEOUT=2s: the healthy webhook finished before the first hang even timed out.
        assert.ok(lastOk < firstHang.arrivedAt + 2_000, 'the healthy webhook waited for the hanging one');
        let attempts: AttemptJson[] = [];
        await waitUntil(
          async () => {
            const [d] = (await h.deliveries(token, hanging.id)).filter((x) => x.attemptCount > 0);
            if (!d) return false;
            attempts = (await h.delivery(token, hanging.id, d.id)).attempts;
            return attempts.length > 0;
          },
          10_000,
          'a recorded timeout',
        );
        assert.match(attempts[0]!.error!, /^timeout/);
        assert.equal(attempts[0]!.statusCode, undefined);
        assert.ok(attempts[0]!.durationMs >= 1_900, `${attempts[0]!.durationMs} ms`);
      },
    );
  });
});

describe('webhook lifecycle', () => {
  test('deleting a webhook stops delivery at once; its open deliveries are abandoned and its log stays', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) => (req.body.includes('"id":1002') ? reply.status(500) : reply.ok()),
      async (r) => {
        const hook = await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        await putOk(h, token, '/absences/1002', absence({ date: '2026-03-03' }));
        await r.waitFor((rs) => rs.some((q) => q.body.includes('"id":1002')));
        const res = await h.request({ method: 'DELETE', path: `/webhooks/${hook.id}`, token });
        assert.equal(res.statusCode, 204);
        const sentAtDelete = r.requests.length;
        await putOk(h, token, '/absences/1003', absence({ date: '2026-03-04' }));
        await sleep(600); // longer than the retry schedule
        assert.ok(r.requests.length <= sentAtDelete + 1, 'at most the attempt in flight finished');
        assert.ok(!r.requests.some((q) => q.body.includes('"id":1003')), 'a change after delete was sent');
        assert.equal(
          (await h.request({ method: 'GET', path: `/webhooks/${hook.id}`, token })).statusCode,
          404,
        );
        // The abandon may come before the worker has written 1001's acknowledgement (records are written in
        // batches, off the sending path); Delivered is then recorded over Abandoned. Wait for both.
        const statuses = async () =>
          (await h.deliveries(token, hook.id)).map((d) => [d.entityId, d.status]).sort();
        await waitUntil(
          async () => (await statuses()).some(([, status]) => status === 'Delivered'),
          10_000,
          "the delivered event's record",
        );
        await waitUntil(
          async () => (await statuses()).some(([, status]) => status === 'Abandoned'),
          10_000,
          'the failing delivery Abandoned',
        );
        assert.deepEqual(await statuses(), [
          [1001, 'Delivered'],
          [1002, 'Abandoned'],
        ]);
      },
    );
  });

  test("the lane's cursor follows acknowledgements, and a restarted worker sends nothing at or below it", async () => {
    const token = await tenantWithData();
    const cursor = async (id: string) =>
      (
        await h.db.query<{ cursor: number }>(
          'select cursor from delivery_lanes where webhook_id = $1::uuid and part = 0',
          [id],
        )
      )[0]!.cursor;
    await withReceiver(
      () => reply.ok(),
      async (r) => {
        const hook = await h.createWebhook(token, r.url());
        let last = '';
        for (let i = 0; i < 5; i++)
          last = (await putOk(h, token, '/absences/1101', absence({ durationInMinutes: i + 1 })))
            .changeVersion;
        await r.waitFor((rs) => rs.length === 5);
        const version = parseChangeVersion(last)!;
        await waitUntil(
          async () => (await cursor(hook.id)) >= version,
          5_000,
          'the cursor passed the last event',
        );
        await h.restartWorker();
        await putOk(h, token, '/absences/1103', absence());
        await r.waitFor((rs) => rs.some((q) => q.body.includes('"id":1103')));
        assert.equal(r.requests.length, 6, 'nothing at or below the cursor was sent again');
      },
    );
  });

  test('during a key rotation each event carries two signatures, one per key', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      const hook = await h.createWebhook(token, r.url());
      const rotated = await h.request({ method: 'POST', path: `/webhooks/${hook.id}/key`, token });
      assert.equal(rotated.statusCode, 200, rotated.body);
      const { key: newKey } = rotated.json();
      await putOk(h, token, '/absences/1001', absence());
      await r.waitFor((rs) => rs.length === 1);
      const req = r.requests[0]!;
      const signatures = String(req.headers['webhook-signature']).split(' ');
      assert.equal(signatures.length, 2);
      for (const s of signatures) assert.match(s, /^v1,/);
      assert.doesNotThrow(() => new Webhook(newKey).verify(req.body, headersOf(req)));
      assert.doesNotThrow(() => new Webhook(hook.key).verify(req.body, headersOf(req)));
      // The current key signs first.
      const onlyFirst = { ...headersOf(req), 'webhook-signature': signatures[0]! };
      assert.doesNotThrow(() => new Webhook(newKey).verify(req.body, onlyFirst));
    });
  });
});

describe('delivery log', () => {
  test('lists deliveries newest first in pages with nextLink, and filters by status and entity', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      const hook = await h.createWebhook(token, r.url());
      for (let i = 1; i <= 7; i++)
        await putOk(h, token, `/absences/${1000 + (i % 3)}`, absence({ durationInMinutes: i }));
      await r.waitFor((rs) => rs.length === 7);
      await waitUntil(async () => (await h.deliveries(token, hook.id, "status eq 'Delivered'")).length === 7);

      const first = await h.request({ method: 'GET', path: `/webhooks/${hook.id}/deliveries`, token });
      assert.equal(first.statusCode, 200);
      const page = first.json();
      assert.equal(page.value.length, 3); // TIMEHOOK_PAGE_SIZE=3
      assert.match(
        page.nextLink,
        new RegExp(`^/connector/protimeapi/api/v1/webhooks/${hook.id}/deliveries\\?continuationToken=`),
      );
      const all = await h.deliveries(token, hook.id);
      assert.equal(all.length, 7);
      const ids = all.map((d) => d.id);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => b - a),
      );
      const versions = all.map((d) => d.changeVersion);
      assert.deepEqual(versions, [...versions].sort().reverse());
      for (const d of all) {
        assert.deepEqual(Object.keys(d).sort(), [
          'attemptCount',
          'changeType',
          'changeVersion',
          'createdAt',
          'deliveredAt',
          'entityId',
          'id',
          'nextAttemptAt',
          'redeliveryOf',
          'status',
        ]);
        assert.equal(d.changeType, 'InsertOrUpdate');
        assert.match(d.changeVersion, /^[0-9A-F]{20}$/);
      }
      assert.equal((await h.deliveries(token, hook.id, "status eq 'Failed'")).length, 0);
      const entity = await h.deliveries(token, hook.id, `entityId eq 1001 and status eq 'Delivered'`);
      assert.deepEqual(
        entity.map((d) => d.entityId),
        [1001, 1001, 1001],
      );
    });
  });

  test('a failing delivery is Failed with its nextAttemptAt until it is delivered', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) => (req.index === 0 ? reply.retryAfter(503, '3') : reply.ok()),
      async (r) => {
        const hook = await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        let failed: DeliveryView[] = [];
        await waitUntil(async () => {
          failed = await h.deliveries(token, hook.id, "status eq 'Failed'");
          return failed.length === 1;
        });
        assert.equal(failed[0]!.attemptCount, 1);
        assert.ok(Date.parse(failed[0]!.nextAttemptAt!) >= r.requests[0]!.arrivedAt + 2_500);
        const detail = await h.delivery(token, hook.id, failed[0]!.id);
        assert.deepEqual(
          detail.attempts.map((a) => [a.statusCode, a.responseBody]),
          [[503, 'slow down']],
        );
        await r.waitFor((rs) => rs.length === 2, 10_000);
      },
    );
  });

  test('an invalid filter or a foreign continuationToken is 400', async () => {
    const token = await tenantWithData();
    const hook = await h.createWebhook(token, 'http://127.0.0.1:9/never');
    const bad = await h.request({
      method: 'GET',
      path: `/webhooks/${hook.id}/deliveries?filter=${encodeURIComponent("status eq 'Lost'")}`,
      token,
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'InvalidFilter');
    assert.match(bad.json().error.message, /'Lost' is not a delivery status/);
    const forged = await h.request({
      method: 'GET',
      path: `/webhooks/${hook.id}/deliveries?continuationToken=abc.def`,
      token,
    });
    assert.equal(forged.statusCode, 400);
    assert.equal(forged.json().error.code, 'InvalidContinuationToken');
  });

  test("another tenant's webhook and unknown deliveries are 404; the log needs webhooks.read", async () => {
    const token = await tenantWithData();
    const hook = await h.createWebhook(token, 'http://127.0.0.1:9/never');
    const other = await h.token(newTenant());
    for (const path of [
      `/webhooks/${hook.id}/deliveries`,
      `/webhooks/${hook.id}/deliveries/1`,
      '/webhooks/not-a-uuid/deliveries',
    ]) {
      const res = await h.request({ method: 'GET', path, token: other });
      assert.equal(res.statusCode, 404, path);
      assert.equal(res.json().error.code, 'NotFound');
    }
    for (const id of ['999999999', 'abc']) {
      const res = await h.request({ method: 'GET', path: `/webhooks/${hook.id}/deliveries/${id}`, token });
      assert.equal(res.statusCode, 404);
    }
    const weak = await h.token(newTenant(), ['connector-protimeapi-absences.read']);
    const res = await h.request({ method: 'GET', path: `/webhooks/${hook.id}/deliveries`, token: weak });
    assert.equal(res.statusCode, 401);
    assert.match(String(res.headers['www-authenticate']), /insufficient_scope/);
  });

  test('redeliver sends the same event again (202); a disabled or deleted webhook is 409', async () => {
    const token = await tenantWithData();
    await withReceiver(undefined, async (r) => {
      const hook = await h.createWebhook(token, r.url());
      await putOk(h, token, '/absences/1001', absence());
      await r.waitFor((rs) => rs.length === 1);
      let log: DeliveryView[] = [];
      await waitUntil(async () => {
        log = await h.deliveries(token, hook.id);
        return log[0]?.status === 'Delivered';
      });
      const res = await h.request({
        method: 'POST',
        path: `/webhooks/${hook.id}/deliveries/${log[0]!.id}/redeliver`,
        token,
      });
      assert.equal(res.statusCode, 202, res.body);
      const queued = res.json();
      assert.equal(queued.redeliveryOf, log[0]!.id);
      assert.equal(queued.changeVersion, log[0]!.changeVersion);
      assert.notEqual(queued.id, log[0]!.id);
      await r.waitFor((rs) => rs.length === 2);
      assert.equal(r.requests[1]!.body, r.requests[0]!.body);
      assert.equal(r.requests[1]!.headers['webhook-id'], r.requests[0]!.headers['webhook-id']);
      assert.doesNotThrow(() => new Webhook(hook.key).verify(r.requests[1]!.body, headersOf(r.requests[1]!)));

      const readOnly = await h.token(newTenant(), ['connector-protimeapi-webhooks.read']);
      const denied = await h.request({
        method: 'POST',
        path: `/webhooks/${hook.id}/deliveries/${log[0]!.id}/redeliver`,
        token: readOnly,
      });
      assert.equal(denied.statusCode, 401);

      assert.equal(
        (await h.request({ method: 'DELETE', path: `/webhooks/${hook.id}`, token })).statusCode,
        204,
      );
      const conflict = await h.request({
        method: 'POST',
        path: `/webhooks/${hook.id}/deliveries/${log[0]!.id}/redeliver`,
        token,
      });
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json().error.code, 'WebhookNotEnabled');
      // The log stays readable after the delete.
      assert.equal((await h.deliveries(token, hook.id)).length, 2);
    });
  });
});

describe('metrics', () => {
  test('counts deliveries by outcome, observes commit-to-acknowledge latency and reports webhooks by status', async () => {
    const token = await tenantWithData();
    await withReceiver(
      (req) => (req.index === 0 ? reply.status(500) : reply.ok()),
      async (r) => {
        await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        await r.waitFor((rs) => rs.length === 2);
        await sleep(100);
        const text = await h.metrics.metrics();
        assert.match(text, /timehook_deliveries_total\{outcome="delivered"\} [1-9]/);
        assert.match(text, /timehook_deliveries_total\{outcome="retry"\} [1-9]/);
        assert.match(text, /timehook_delivery_latency_seconds_count [1-9]/);
        assert.match(text, /timehook_webhooks\{status="Enabled",reason=""\} [1-9]/);
        assert.match(text, /# TYPE timehook_webhook_pending_events gauge/);
        assert.match(text, /# TYPE timehook_webhook_oldest_pending_age_seconds gauge/);
      },
    );
  });

  test('pending events and the oldest pending age are reported per webhook', async () => {
    const token = await tenantWithData();
    await withReceiver(
      () => reply.retryAfter(503, '30'),
      async (r) => {
        const hook = await h.createWebhook(token, r.url());
        await putOk(h, token, '/absences/1001', absence());
        await putOk(h, token, '/absences/1001', absence({ durationInMinutes: 1 }));
        await r.waitFor((rs) => rs.length === 1);
        // Both outcomes (the failure, the follower spilled behind it) are recorded a moment after the answer.
        await waitUntil(
          async () => (await h.deliveries(token, hook.id)).length === 2,
          5_000,
          'the failure and the spilled follower recorded',
        );
        const text = await h.metrics.metrics();
        assert.match(text, new RegExp(`timehook_webhook_pending_events\\{webhook="${hook.id}"\\} 2`));
        assert.match(
          text,
          new RegExp(`timehook_webhook_oldest_pending_age_seconds\\{webhook="${hook.id}"\\} \\d`),
        );
        // The head waiting for its retry is held in memory; the event behind it waits as a Pending row.
        const held = /^timehook_delivery_events_in_memory (\d+)$/m.exec(text);
        assert.ok(held, 'timehook_delivery_events_in_memory is reported');
        assert.equal(Number(held[1]), 1, `events in memory: ${held[1]}`);
        assert.deepEqual((await h.deliveries(token, hook.id)).map((d) => d.status).sort(), [
          'Failed',
          'Pending',
        ]);
        // Delete it so its retries stop for the rest of the file.
        await h.request({ method: 'DELETE', path: `/webhooks/${hook.id}`, token });
      },
    );
  });
});
