// Where real HTTP clients differ (issue 21, fidelity §4.5): an empty body sent with a JSON content type,
// unknown query parameters, the filter's collection-name spelling — and the User-Agent rule kept strict.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { recordFailedDeliveries } from './helpers/deliveries.ts';
import { absence, person, putOk, seededToken } from './helpers/collections.ts';
import { newTenant, PREFIX, useHarness, type Harness } from './helpers/harness.ts';

const h = await useHarness({ TIMEHOOK_PAGE_SIZE: '1' });

/** A public address as an IP literal, so no test depends on outside DNS. */
const PUBLIC_URL = 'https://93.184.215.14/timehook';
const JSON_TYPE = { 'content-type': 'application/json' };

/** A request with Content-Type: application/json and a body of zero bytes, as generic wrappers send it. */
function emptyJson(harness: Harness, method: 'DELETE' | 'POST' | 'PUT', path: string, token: string) {
  return harness.request({ method, path, token, body: '', headers: JSON_TYPE });
}

async function createWebhook(token: string, collectionName = 'absences'): Promise<string> {
  const res = await h.request({
    method: 'POST',
    path: '/webhooks',
    token,
    body: { destinationUrl: PUBLIC_URL, collectionName },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string }>().id;
}

/** The webhook's changes as deliveries, as a delivery worker records them (no worker runs here). */
const fanOut = (webhookId: string): Promise<void> => recordFailedDeliveries(h.db, webhookId);

describe('an empty body with Content-Type: application/json counts as no body', () => {
  test('DELETE /webhooks/{id} is 204', async () => {
    const token = await h.token(newTenant());
    const id = await createWebhook(token);
    const res = await emptyJson(h, 'DELETE', `/webhooks/${id}`, token);
    assert.equal(res.statusCode, 204, res.body);
    const got = await h.request({ method: 'GET', path: `/webhooks/${id}`, token });
    assert.equal(got.statusCode, 404);
  });

  test('DELETE /absences/{id} is 204', async () => {
    const token = await seededToken(h);
    await putOk(h, token, '/absences/1001', absence());
    const res = await emptyJson(h, 'DELETE', '/absences/1001', token);
    assert.equal(res.statusCode, 204, res.body);
    const got = await h.request({ method: 'GET', path: '/absences/1001', token });
    assert.equal(got.statusCode, 404);
  });

  test('DELETE /people/{id} is 204', async () => {
    const token = await h.token(newTenant());
    await putOk(h, token, '/people/7', person(7));
    const res = await emptyJson(h, 'DELETE', '/people/7', token);
    assert.equal(res.statusCode, 204, res.body);
    const got = await h.request({ method: 'GET', path: '/people/7', token });
    assert.equal(got.statusCode, 404);
  });

  test('POST /webhooks/{id}/key is 200 with a new key', async () => {
    const token = await h.token(newTenant());
    const id = await createWebhook(token);
    const res = await emptyJson(h, 'POST', `/webhooks/${id}/key`, token);
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.json().key, /^whsec_/);
  });

  test('POST /webhooks/{id}/deliveries/{deliveryId}/redeliver is 202', async () => {
    const token = await seededToken(h);
    const id = await createWebhook(token);
    await putOk(h, token, '/absences/1001', absence());
    await fanOut(id);
    const list = await h.request({ method: 'GET', path: `/webhooks/${id}/deliveries`, token });
    assert.equal(list.statusCode, 200, list.body);
    const [delivery] = list.json<{ value: { id: number }[] }>().value;
    assert.ok(delivery, 'the absence was fanned out into a delivery');
    const res = await emptyJson(h, 'POST', `/webhooks/${id}/deliveries/${delivery.id}/redeliver`, token);
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.json().redeliveryOf, delivery.id);
  });

  test('a DELETE with a JSON content type and a body that is not JSON is still 400 validationErrors', async () => {
    const token = await h.token(newTenant());
    const id = await createWebhook(token);
    const res = await h.request({ method: 'DELETE', path: `/webhooks/${id}`, token, body: '{' });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().validationErrors[0].message, /not valid JSON/);
  });
});

describe('routes that need a body still answer an empty one with validationErrors', () => {
  const required = {
    validationErrors: [
      {
        property: '',
        message: 'The body is required; send a JSON object with Content-Type: application/json.',
      },
    ],
  };

  test('POST /webhooks with an empty JSON body is 400 and creates nothing', async () => {
    const token = await h.token(newTenant());
    const res = await emptyJson(h, 'POST', '/webhooks', token);
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(res.json(), required);
    const list = await h.request({ method: 'GET', path: '/webhooks', token });
    assert.deepEqual(list.json(), { value: [] });
  });

  test('POST /webhooks with no body and no content type is 400 the same way', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({ method: 'POST', path: '/webhooks', token });
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(res.json(), required);
  });

  test('POST /webhooks with the body { is 400 validationErrors naming invalid JSON', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({ method: 'POST', path: '/webhooks', token, body: '{' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().validationErrors.length, 1);
    assert.match(res.json().validationErrors[0].message, /not valid JSON/);
  });

  test('PUT /people/{id} and POST /absences/batch with an empty JSON body are 400', async () => {
    const token = await seededToken(h);
    for (const [method, path] of [
      ['PUT', '/people/9'],
      ['PUT', '/absences/1001'],
      ['PUT', '/shift-definitions/21'],
      ['POST', '/absences/batch'],
    ] as const) {
      const res = await emptyJson(h, method, path, token);
      assert.equal(res.statusCode, 400, `${method} ${path}: ${res.body}`);
      assert.deepEqual(res.json(), required, `${method} ${path}`);
    }
    const got = await h.request({ method: 'GET', path: '/people/9', token });
    assert.equal(got.statusCode, 404);
  });
});

describe('unknown query parameters are ignored', () => {
  test('GET /webhooks?$top=10&_=1 is 200 with the webhooks', async () => {
    const token = await h.token(newTenant());
    const id = await createWebhook(token);
    const res = await h.request({ method: 'GET', path: '/webhooks?$top=10&_=1', token });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      res.json<{ value: { id: string }[] }>().value.map((w) => w.id),
      [id],
    );
  });

  test('a known parameter beside an unknown one keeps its validation', async () => {
    const token = await h.token(newTenant());
    const bad = await h.request({ method: 'GET', path: "/webhooks?_=1&filter=state eq 'x'", token });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'InvalidFilter');
    const twice = await h.request({ method: 'GET', path: '/webhooks?_=1&filter=a&filter=b', token });
    assert.equal(twice.statusCode, 400);
    assert.equal(twice.json().error.code, 'BadRequest');
    assert.match(twice.json().error.reasons.join(' '), /query parameter filter must be string/);
  });

  test('GET, DELETE and key rotation of a webhook ignore them', async () => {
    const token = await h.token(newTenant());
    const id = await createWebhook(token);
    const get = await h.request({ method: 'GET', path: `/webhooks/${id}?_=123`, token });
    assert.equal(get.statusCode, 200, get.body);
    const key = await h.request({ method: 'POST', path: `/webhooks/${id}/key?foo=bar`, token });
    assert.equal(key.statusCode, 200, key.body);
    const del = await h.request({ method: 'DELETE', path: `/webhooks/${id}?foo=bar`, token });
    assert.equal(del.statusCode, 204, del.body);
  });

  test('POST /webhooks ignores them and still validates externalReferences', async () => {
    const token = await h.token(newTenant());
    const body = { destinationUrl: PUBLIC_URL, collectionName: 'people' };
    const ok = await h.request({ method: 'POST', path: '/webhooks?colour=blue', token, body });
    assert.equal(ok.statusCode, 201, ok.body);
    const bad = await h.request({
      method: 'POST',
      path: '/webhooks?colour=blue&externalReferences=(people,nope',
      token,
      body,
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'InvalidExternalReference');
  });

  test('GET /webhooks/{id}/deliveries?foo=bar is 200, and nextLink does not echo foo', async () => {
    const token = await seededToken(h);
    const id = await createWebhook(token);
    await putOk(h, token, '/absences/1001', absence());
    await putOk(h, token, '/absences/1002', absence());
    await fanOut(id);
    const first = await h.request({
      method: 'GET',
      path: `/webhooks/${id}/deliveries?foo=bar&filter=${encodeURIComponent("status eq 'Failed'")}`,
      token,
    });
    assert.equal(first.statusCode, 200, first.body);
    const page = first.json<{ value: { entityId: number }[]; nextLink: string }>();
    assert.deepEqual(
      page.value.map((d) => d.entityId),
      [1002],
    );
    assert.ok(page.nextLink.startsWith(`${PREFIX}/webhooks/${id}/deliveries?filter=`), page.nextLink);
    assert.doesNotMatch(page.nextLink, /foo/);
    const second = await h.request({ method: 'GET', path: page.nextLink, token });
    assert.equal(second.statusCode, 200, second.body);
    assert.deepEqual(
      second.json<{ value: { entityId: number }[] }>().value.map((d) => d.entityId),
      [1001],
    );
  });

  test('GET /webhooks/{id}/deliveries with a bad filter beside an unknown parameter is still 400', async () => {
    const token = await h.token(newTenant());
    const id = await createWebhook(token);
    const res = await h.request({
      method: 'GET',
      path: `/webhooks/${id}/deliveries?foo=bar&filter=${encodeURIComponent("status eq 'Lost'")}`,
      token,
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'InvalidFilter');
  });
});

describe('the webhook list filter accepts collection-name', () => {
  test("GET /webhooks?filter=collection-name eq 'absences' lists the absences webhooks only", async () => {
    const token = await h.token(newTenant());
    const absences = await createWebhook(token, 'absences');
    await createWebhook(token, 'people');
    const res = await h.request({
      method: 'GET',
      path: `/webhooks?filter=${encodeURIComponent("collection-name eq 'absences'")}`,
      token,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      res.json<{ value: { id: string }[] }>().value.map((w) => w.id),
      [absences],
    );
  });

  test('an unknown field names both spellings in the reason', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({
      method: 'GET',
      path: `/webhooks?filter=${encodeURIComponent("collection eq 'absences'")}`,
      token,
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'InvalidFilter');
    assert.match(res.json().error.message, /collectionName \(also spelled collection-name\)/);
  });
});

describe('User-Agent stays required', () => {
  for (const userAgent of [undefined, '']) {
    test(`${userAgent === undefined ? 'a missing' : 'an empty'} User-Agent is 400 UserAgentRequired naming the recommended form`, async () => {
      const token = await h.token(newTenant());
      const res = await h.app.inject({
        method: 'GET',
        url: `${PREFIX}/webhooks`,
        headers: { authorization: `Bearer ${token}`, 'user-agent': userAgent },
      });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error.code, 'UserAgentRequired');
      assert.match(res.json().error.message, /MUST be sent on every request/);
      assert.match(res.json().error.message, /"ServiceName\/Version \(Company Name\)"/);
    });
  }
});
