import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHarness, newTenant, useHarness } from './helpers/harness.ts';

const h = await useHarness();
const token = await h.token(newTenant());

describe('the error format for routing and transport errors', () => {
  test('an unknown route is 404 in the upstream error format', async () => {
    const res = await h.request({ method: 'GET', path: '/no-such-thing', token });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'NotFound');
    assert.equal(typeof res.json().error.message, 'string');
  });

  test('a wrong method on a known path is 405 with Allow', async () => {
    const res = await h.request({ method: 'PATCH', path: '/webhooks', token, body: {} });
    assert.equal(res.statusCode, 405);
    assert.equal(res.json().error.code, 'MethodNotAllowed');
    assert.match(String(res.headers.allow), /GET/);
    assert.match(String(res.headers.allow), /POST/);
  });

  test('a body over 1 MiB is 413', async () => {
    const res = await h.request({
      method: 'POST',
      path: '/webhooks',
      token,
      body: { destinationUrl: `https://example.com/${'a'.repeat(1024 * 1024)}`, collectionName: 'absences' },
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error.code, 'PayloadTooLarge');
  });

  test('a URI over 4,096 characters is 414', async () => {
    const res = await h.request({ method: 'GET', path: `/webhooks?filter=${'a'.repeat(4100)}`, token });
    assert.equal(res.statusCode, 414);
    assert.equal(res.json().error.code, 'UriTooLong');
  });

  test('a body that is not JSON is 415', async () => {
    const res = await h.request({
      method: 'POST',
      path: '/webhooks',
      token,
      body: 'destinationUrl=https://example.com',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(res.statusCode, 415);
    assert.equal(res.json().error.code, 'UnsupportedMediaType');
  });

  test('malformed JSON is 400 with validationErrors', async () => {
    const res = await h.request({ method: 'POST', path: '/webhooks', token, body: '{"destinationUrl": ' });
    assert.equal(res.statusCode, 400);
    assert.ok(Array.isArray(res.json().validationErrors));
    assert.match(res.json().validationErrors[0].message, /not valid JSON/);
  });

  test('an unknown query parameter is ignored, as upstream does', async () => {
    const res = await h.request({ method: 'GET', path: '/webhooks?colour=blue', token });
    assert.equal(res.statusCode, 200, res.body);
  });

  test('every response carries an x-request-id', async () => {
    const res = await h.request({ method: 'GET', path: '/webhooks', token });
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });
});

describe('health, readiness, metrics and OpenAPI', () => {
  test('/healthz answers 200 without a token', async () => {
    const res = await h.request({ method: 'GET', path: '/healthz' });
    assert.equal(res.statusCode, 200);
  });

  test('/readyz reports the store reachable and migrated', async () => {
    const res = await h.request({ method: 'GET', path: '/readyz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ready', store: h.db.kind, reachable: true, migrated: true });
  });

  test('/metrics serves Prometheus text with HTTP request durations', async () => {
    await h.request({ method: 'GET', path: '/webhooks', token });
    const res = await h.request({ method: 'GET', path: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(
      res.body,
      /timehook_http_request_duration_seconds_bucket\{.*route="\/connector\/protimeapi\/api\/v1\/webhooks"/,
    );
  });

  test('the OpenAPI 3 document describes the connector routes', async () => {
    const res = await h.request({ method: 'GET', path: '/swagger/v1/swagger.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.match(doc.openapi, /^3\./);
    assert.ok(doc.paths['/connector/protimeapi/api/v1/webhooks'], 'webhooks path documented');
  });

  test('/swagger serves the browsable documentation', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/swagger/' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /swagger/i);
  });
});

describe('failures of the store', () => {
  test('a 500 shows no internals and quotes the request id', async () => {
    const broken = await createHarness();
    try {
      const t = await broken.token(newTenant());
      await broken.db.query('drop table webhooks cascade');
      const res = await broken.request({ method: 'GET', path: '/webhooks', token: t });
      assert.equal(res.statusCode, 500);
      assert.equal(res.json().error.code, 'InternalServerError');
      assert.ok(res.json().error.message.includes(String(res.headers['x-request-id'])));
      assert.doesNotMatch(res.body, /relation|webhooks"|select|stack/i);
    } finally {
      await broken.close();
    }
  });

  test('an unreachable store answers 503 and /readyz reports not ready', async () => {
    const down = await createHarness();
    const t = await down.token(newTenant());
    await down.db.close();
    try {
      const res = await down.request({ method: 'GET', path: '/webhooks', token: t });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'ServiceUnavailable');
      const ready = await down.request({ method: 'GET', path: '/readyz' });
      assert.equal(ready.statusCode, 503);
    } finally {
      await down.app.close();
    }
  });
});
