import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { disableWebhook, expireWebhooks, findWebhookSigningKeys } from '../src/store/webhooks.ts';
import { newTenant, PREFIX, useHarness, type Harness } from './helpers/harness.ts';

const h = await useHarness();
const dev = await useHarness({ TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true' });
const small = await useHarness({ TIMEHOOK_MAX_WEBHOOKS_PER_TENANT: '2' });
/** Behind a proxy with a public base URL, and with a short webhook lifetime. */
const tuned = await useHarness({
  PUBLIC_BASE_URL: 'https://timehook.example.com',
  TIMEHOOK_WEBHOOK_TTL: '2h',
});

/** A public address as an IP literal, so no test depends on outside DNS. */
const PUBLIC_URL = 'https://93.184.215.14/timehook';
const DAY_MS = 24 * 60 * 60 * 1000;
const WRITE = 'connector-protimeapi-webhooks.write';
const READ = 'connector-protimeapi-webhooks.read';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;

interface Created {
  id: string;
  key: string;
  validUntil: string;
  status: string;
  destinationUrl: string;
  collectionName: string;
  externalReferences: Record<string, string[]>;
  createdAt: string;
}

function create(
  harness: Harness,
  token: string,
  body: unknown = { destinationUrl: PUBLIC_URL, collectionName: 'absences' },
  query = '',
) {
  return harness.request({ method: 'POST', path: `/webhooks${query}`, token, body });
}

async function createOk(harness: Harness, token: string, collectionName = 'absences'): Promise<Created> {
  const res = await create(harness, token, { destinationUrl: PUBLIC_URL, collectionName });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Created>();
}

/** Runs fn with the app's clock fixed at `at`, then gives the real clock back. */
async function at<T>(harness: Harness, time: Date, fn: () => Promise<T>): Promise<T> {
  harness.clock.fixed = time;
  try {
    return await fn();
  } finally {
    harness.clock.fixed = undefined;
  }
}

describe('POST /webhooks', () => {
  test('creates an Enabled webhook and answers 201 with Location and the one-time key', async () => {
    const token = await h.token(newTenant());
    const now = new Date('2026-11-28T10:15:00.250Z');
    const res = await at(h, now, () => create(h, token));
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json<Created>();
    assert.deepEqual(Object.keys(body), [
      'id',
      'key',
      'validUntil',
      'status',
      'destinationUrl',
      'collectionName',
      'externalReferences',
      'createdAt',
    ]);
    assert.match(body.id, UUID);
    assert.equal(res.headers.location, `${PREFIX}/webhooks/${body.id}`);
    assert.match(body.key, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(body.key.slice('whsec_'.length), 'base64').length, 32);
    assert.equal(body.status, 'Enabled');
    assert.equal(body.destinationUrl, PUBLIC_URL);
    assert.equal(body.collectionName, 'absences');
    assert.deepEqual(body.externalReferences, {});
    assert.equal(body.createdAt, '2026-11-28T10:15:00+00:00');
    assert.equal(body.validUntil, '2026-12-28T10:15:00+00:00');
  });

  test('gives every webhook its own key', async () => {
    const token = await h.token(newTenant());
    const a = await createOk(h, token);
    const b = await createOk(h, token);
    assert.notEqual(a.key, b.key);
    assert.notEqual(a.id, b.id);
    assert.match(b.createdAt, TIMESTAMP);
    assert.match(b.validUntil, TIMESTAMP);
  });

  test('prefixes Location with PUBLIC_BASE_URL when it is set', async () => {
    const token = await tuned.token(newTenant());
    const res = await create(tuned, token);
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(
      res.headers.location,
      `https://timehook.example.com${PREFIX}/webhooks/${res.json<Created>().id}`,
    );
  });

  test('stores the externalReferences query with the webhook and returns it', async () => {
    const token = await h.token(newTenant());
    const res = await create(
      h,
      token,
      undefined,
      '?externalReferences=(people,@employee-number)(people,HrId)',
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json<Created>().externalReferences, { people: ['@employee-number', 'HrId'] });
    const got = await h.request({ method: 'GET', path: `/webhooks/${res.json<Created>().id}`, token });
    assert.deepEqual(got.json().externalReferences, { people: ['@employee-number', 'HrId'] });
  });

  test('rejects a malformed externalReferences query with 400 InvalidExternalReference', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, undefined, '?externalReferences=(people;@employee-number)');
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'InvalidExternalReference');
    assert.match(res.json().error.message, /externalReferences/);
  });

  test('rejects references of a collection the webhook collection cannot include', async () => {
    const token = await h.token(newTenant());
    const res = await create(
      h,
      token,
      { destinationUrl: PUBLIC_URL, collectionName: 'people' },
      '?externalReferences=(shift-definitions,@shift-code)',
    );
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'InvalidExternalReference');
  });

  test('rejects an unknown collectionName with 400 UnknownCollection naming the accepted values', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, { destinationUrl: PUBLIC_URL, collectionName: 'holidays' });
    assert.equal(res.statusCode, 400);
    const { error } = res.json();
    assert.equal(error.code, 'UnknownCollection');
    for (const name of ['holidays', 'absences', 'people', 'absence-definitions', 'shift-definitions']) {
      assert.ok(error.message.includes(name), `${error.message} names ${name}`);
    }
  });

  test('rejects an unknown body property with 400 validationErrors naming it', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, {
      destinationUrl: PUBLIC_URL,
      collectionName: 'absences',
      colour: 'blue',
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), {
      validationErrors: [{ property: 'colour', message: 'is not a known property' }],
    });
  });

  test('rejects a body without destinationUrl with 400 validationErrors', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, { collectionName: 'absences' });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), {
      validationErrors: [{ property: 'destinationUrl', message: 'is required' }],
    });
  });

  test('rejects a destinationUrl that is not a string with 400 validationErrors', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, { destinationUrl: 42, collectionName: 'absences' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().validationErrors[0].property, 'destinationUrl');
  });

  test('rejects malformed JSON with 400 validationErrors', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, '{"destinationUrl": "https://');
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().validationErrors.length, 1);
    assert.match(res.json().validationErrors[0].message, /not valid JSON/);
  });

  test('ignores an unknown query parameter, as upstream does', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, undefined, '?colour=blue');
    assert.equal(res.statusCode, 201, res.body);
  });
});

describe('scopes of POST /webhooks', () => {
  test('webhooks.write alone creates a webhook of any collection, as the seed page says', async () => {
    const token = await h.token(newTenant(), [WRITE]);
    for (const collectionName of ['absences', 'people', 'absence-definitions', 'shift-definitions']) {
      const res = await create(h, token, { destinationUrl: PUBLIC_URL, collectionName });
      assert.equal(res.statusCode, 201, `${collectionName}: ${res.body}`);
    }
  });

  test('without webhooks.write it is 401 insufficient_scope naming webhooks.write', async () => {
    const token = await h.token(newTenant(), ['connector-protimeapi-absences.read', READ]);
    const res = await create(h, token);
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error.code, 'Unauthorized');
    assert.match(res.json().error.message, /connector-protimeapi-webhooks\.write/);
    assert.equal(res.headers['www-authenticate'], `Bearer error="insufficient_scope", scope="${WRITE}"`);
  });

  test('listing needs webhooks.read', async () => {
    const token = await h.token(newTenant(), [WRITE, 'connector-protimeapi-absences.read']);
    const res = await h.request({ method: 'GET', path: '/webhooks', token });
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], `Bearer error="insufficient_scope", scope="${READ}"`);
  });

  test('deleting and rotating need webhooks.write', async () => {
    const tenant = newTenant();
    const { id } = await createOk(h, await h.token(tenant));
    const readOnly = await h.token(tenant, [READ]);
    for (const [method, path] of [
      ['DELETE', `/webhooks/${id}`],
      ['POST', `/webhooks/${id}/key`],
    ] as const) {
      const res = await h.request({ method, path, token: readOnly });
      assert.equal(res.statusCode, 401, path);
      assert.equal(res.headers['www-authenticate'], `Bearer error="insufficient_scope", scope="${WRITE}"`);
    }
  });
});

describe('destinationUrl rules', () => {
  const rejected: [string, string, RegExp][] = [
    ['an http URL', 'http://93.184.215.14/hook', /scheme http; use https, or set TIMEHOOK_ALLOW_INSECURE/],
    ['an ftp URL', 'ftp://93.184.215.14/hook', /scheme ftp/],
    ['a relative URL', '/hooks/timehook', /not an absolute URL/],
    ['a URL over 2,048 characters', `https://93.184.215.14/${'a'.repeat(2048)}`, /limit is 2048/],
    ['a URL with userinfo', 'https://user:secret@93.184.215.14/hook', /user name or password/],
    ['a URL with a fragment', 'https://93.184.215.14/hook#part', /fragment/],
    ['a loopback address', 'https://127.0.0.1/hook', /127\.0\.0\.1 is a loopback address/],
    ['localhost', 'https://localhost/hook', /resolves to .*a loopback address/],
    ['a private address', 'https://10.0.0.4/hook', /10\.0\.0\.4 is a private address/],
    ['a 192.168 address', 'https://192.168.1.20:8443/hook', /private address/],
    ['a link-local address', 'https://169.254.10.1/hook', /link-local/],
    ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data', /cloud metadata/],
    ['the GCP metadata host', 'https://metadata.google.internal/computeMetadata', /cloud metadata/],
    ['a CGNAT address', 'https://100.64.0.9/hook', /carrier-grade NAT/],
    ['an IPv6 loopback', 'https://[::1]/hook', /::1 is a loopback address/],
    ['an IPv4-mapped private address', 'https://[::ffff:10.0.0.1]/hook', /private address/],
    ['a unique local IPv6 address', 'https://[fd12:3456::1]/hook', /unique local/],
    ['the AWS IPv6 metadata address', 'https://[fd00:ec2::254]/hook', /cloud metadata/],
    ['a multicast address', 'https://239.1.2.3/hook', /multicast/],
    ['the unspecified address', 'https://0.0.0.0/hook', /unspecified/],
  ];
  for (const [what, destinationUrl, reason] of rejected) {
    test(`rejects ${what} with 400 InvalidDestinationUrl and the reason`, async () => {
      const token = await h.token(newTenant());
      const res = await create(h, token, { destinationUrl, collectionName: 'absences' });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, 'InvalidDestinationUrl');
      assert.match(res.json().error.message, reason);
    });
  }

  test('accepts a public IPv6 literal', async () => {
    const token = await h.token(newTenant());
    const res = await create(h, token, {
      destinationUrl: 'https://[2606:4700:4700::1111]/hook',
      collectionName: 'absences',
    });
    assert.equal(res.statusCode, 201, res.body);
  });

  for (const destinationUrl of [
    'http://127.0.0.1:9999/hook',
    'http://localhost:3000/hook',
    'https://10.0.0.4/hook',
    'http://[::1]:8080/hook',
  ]) {
    test(`accepts ${destinationUrl} with TIMEHOOK_ALLOW_INSECURE_DESTINATIONS=true`, async () => {
      const token = await dev.token(newTenant());
      const res = await create(dev, token, { destinationUrl, collectionName: 'absences' });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().destinationUrl, destinationUrl);
    });
  }

  test('still rejects userinfo, fragments and other schemes with the insecure flag', async () => {
    const token = await dev.token(newTenant());
    for (const destinationUrl of [
      'http://u:p@127.0.0.1/hook',
      'http://127.0.0.1/hook#x',
      'file:///etc/passwd',
    ]) {
      const res = await create(dev, token, { destinationUrl, collectionName: 'absences' });
      assert.equal(res.statusCode, 400, destinationUrl);
      assert.equal(res.json().error.code, 'InvalidDestinationUrl');
    }
  });
});

describe('the per-tenant webhook limit', () => {
  test('the webhook over TIMEHOOK_MAX_WEBHOOKS_PER_TENANT is 409 WebhookLimitReached', async () => {
    const token = await small.token(newTenant());
    await createOk(small, token);
    await createOk(small, token);
    const res = await create(small, token);
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'WebhookLimitReached');
    assert.match(res.json().error.message, /TIMEHOOK_MAX_WEBHOOKS_PER_TENANT=2/);
  });

  test('a deleted webhook frees its place', async () => {
    const token = await small.token(newTenant());
    const first = await createOk(small, token);
    await createOk(small, token);
    const del = await small.request({ method: 'DELETE', path: `/webhooks/${first.id}`, token });
    assert.equal(del.statusCode, 204);
    await createOk(small, token);
  });

  test('an expired webhook no longer counts, even before the sweeper ran', async () => {
    const token = await small.token(newTenant());
    await createOk(small, token);
    await createOk(small, token);
    const res = await at(small, new Date(Date.now() + 31 * DAY_MS), () => create(small, token));
    assert.equal(res.statusCode, 201, res.body);
  });

  test('the limit is per tenant', async () => {
    const full = await small.token(newTenant());
    await createOk(small, full);
    await createOk(small, full);
    await createOk(small, await small.token(newTenant()));
  });

  test('concurrent creates never pass the limit', async () => {
    const token = await small.token(newTenant());
    const results = await Promise.all(Array.from({ length: 6 }, () => create(small, token)));
    const codes = results.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [201, 201, 409, 409, 409, 409]);
    const list = await small.request({ method: 'GET', path: '/webhooks', token });
    assert.equal(list.json().value.length, 2);
  });
});

describe('GET /webhooks', () => {
  test("lists the tenant's webhooks oldest first, without keys", async () => {
    const token = await h.token(newTenant());
    const a = await createOk(h, token, 'absences');
    const b = await createOk(h, token, 'people');
    const res = await h.request({ method: 'GET', path: '/webhooks', token });
    assert.equal(res.statusCode, 200);
    const { value } = res.json();
    assert.deepEqual(
      value.map((w: Created) => w.id),
      [a.id, b.id],
    );
    const { key: _key, ...withoutKey } = a;
    assert.deepEqual(value[0], withoutKey);
  });

  test('an empty tenant lists no webhooks', async () => {
    const res = await h.request({ method: 'GET', path: '/webhooks', token: await h.token(newTenant()) });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { value: [] });
  });

  test('filters by collectionName', async () => {
    const token = await h.token(newTenant());
    await createOk(h, token, 'absences');
    const people = await createOk(h, token, 'people');
    const res = await h.request({
      method: 'GET',
      path: `/webhooks?filter=${encodeURIComponent("collectionName eq 'people'")}`,
      token,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      res.json().value.map((w: Created) => w.id),
      [people.id],
    );
  });

  test('filters by status and collectionName joined by and', async () => {
    const tenant = newTenant();
    const token = await h.token(tenant);
    const enabled = await createOk(h, token, 'absences');
    const disabled = await createOk(h, token, 'absences');
    await createOk(h, token, 'people');
    await disableWebhook(h.db, disabled.id, 'RetriesExhausted');
    const query = (filter: string) =>
      h.request({ method: 'GET', path: `/webhooks?filter=${encodeURIComponent(filter)}`, token });
    const onlyEnabled = await query("status eq 'Enabled' and collectionName eq 'absences'");
    assert.deepEqual(
      onlyEnabled.json().value.map((w: Created) => w.id),
      [enabled.id],
    );
    const onlyDisabled = await query("status eq 'Disabled'");
    assert.deepEqual(
      onlyDisabled.json().value.map((w: Created) => w.id),
      [disabled.id],
    );
  });

  test('an invalid filter is 400 InvalidFilter naming the bad token', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({
      method: 'GET',
      path: `/webhooks?filter=${encodeURIComponent("status ne 'Enabled'")}`,
      token,
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'InvalidFilter');
    assert.match(res.json().error.message, /'ne'/);
    assert.deepEqual(res.json().error.reasons, [res.json().error.message]);
  });

  test('an unknown query parameter is ignored', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const res = await h.request({ method: 'GET', path: '/webhooks?top=5', token });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      res.json().value.map((w: { id: string }) => w.id),
      [created.id],
    );
  });

  test("another tenant's webhooks are not listed", async () => {
    const mine = await h.token(newTenant());
    await createOk(h, await h.token(newTenant()));
    const res = await h.request({ method: 'GET', path: '/webhooks', token: mine });
    assert.deepEqual(res.json(), { value: [] });
  });
});

describe('GET /webhooks/{id}', () => {
  test('returns the webhook without its key', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const res = await h.request({ method: 'GET', path: `/webhooks/${created.id}`, token });
    assert.equal(res.statusCode, 200);
    const { key, ...expected } = created;
    assert.deepEqual(res.json(), expected);
    assert.ok(!res.body.includes(key.slice('whsec_'.length)));
  });

  test('an unknown id is 404 NotFound', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({
      method: 'GET',
      path: '/webhooks/a7d853ea-89eb-4735-83d1-b891c6fde398',
      token,
    });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'NotFound');
  });

  test('an id that is not a UUID is 404, not 400', async () => {
    const token = await h.token(newTenant());
    const res = await h.request({ method: 'GET', path: '/webhooks/not-a-uuid', token });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'NotFound');
  });

  test("another tenant's webhook is 404", async () => {
    const theirs = await createOk(h, await h.token(newTenant()));
    const res = await h.request({
      method: 'GET',
      path: `/webhooks/${theirs.id}`,
      token: await h.token(newTenant()),
    });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'NotFound');
  });

  test('a disabled webhook shows its disabledReason', async () => {
    const token = await h.token(newTenant());
    const { id } = await createOk(h, token);
    assert.equal(await disableWebhook(h.db, id, 'EndpointGone'), true);
    const res = await h.request({ method: 'GET', path: `/webhooks/${id}`, token });
    assert.equal(res.json().status, 'Disabled');
    assert.equal(res.json().disabledReason, 'EndpointGone');
  });
});

describe('expiry at validUntil', () => {
  test('reads Disabled/Expired once validUntil has passed, before the sweeper ran', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const validUntil = new Date(created.validUntil);
    const before = await at(h, new Date(validUntil.getTime() - 1000), () =>
      h.request({ method: 'GET', path: `/webhooks/${created.id}`, token }),
    );
    assert.equal(before.json().status, 'Enabled');
    assert.equal(before.json().disabledReason, undefined);
    const after = await at(h, validUntil, () =>
      h.request({ method: 'GET', path: `/webhooks/${created.id}`, token }),
    );
    assert.equal(after.json().status, 'Disabled');
    assert.equal(after.json().disabledReason, 'Expired');
  });

  test('an expired webhook is listed under status Disabled, not Enabled', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const later = new Date(new Date(created.validUntil).getTime() + 1000);
    const list = (filter: string) =>
      at(h, later, () =>
        h.request({ method: 'GET', path: `/webhooks?filter=${encodeURIComponent(filter)}`, token }),
      );
    assert.deepEqual((await list("status eq 'Enabled'")).json().value, []);
    const disabled = (await list("status eq 'Disabled'")).json().value;
    assert.equal(disabled.length, 1);
    assert.equal(disabled[0].disabledReason, 'Expired');
  });

  test('stays Disabled/Expired after the sweeper wrote it', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    await expireWebhooks(h.db, new Date(new Date(created.validUntil).getTime() + 1000));
    const res = await h.request({ method: 'GET', path: `/webhooks/${created.id}`, token });
    assert.equal(res.json().status, 'Disabled');
    assert.equal(res.json().disabledReason, 'Expired');
  });

  test('validUntil follows TIMEHOOK_WEBHOOK_TTL', async () => {
    const token = await tuned.token(newTenant());
    const res = await at(tuned, new Date('2026-03-01T08:00:00Z'), () => create(tuned, token));
    assert.equal(res.json().validUntil, '2026-03-01T10:00:00+00:00');
  });
});

describe('DELETE /webhooks/{id}', () => {
  test('answers 204 and the webhook leaves get and list', async () => {
    const token = await h.token(newTenant());
    const { id } = await createOk(h, token);
    const res = await h.request({ method: 'DELETE', path: `/webhooks/${id}`, token });
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assert.equal((await h.request({ method: 'GET', path: `/webhooks/${id}`, token })).statusCode, 404);
    assert.deepEqual((await h.request({ method: 'GET', path: '/webhooks', token })).json(), { value: [] });
  });

  test('is a soft delete: the row stays with deleted_at set', async () => {
    const token = await h.token(newTenant());
    const { id } = await createOk(h, token);
    await h.request({ method: 'DELETE', path: `/webhooks/${id}`, token });
    const rows = await h.db.query<{ deleted_at: Date | null }>(
      'select deleted_at from webhooks where id = $1',
      [id],
    );
    assert.equal(rows.length, 1);
    assert.ok(rows[0]!.deleted_at instanceof Date);
  });

  test('a second delete is 404', async () => {
    const token = await h.token(newTenant());
    const { id } = await createOk(h, token);
    await h.request({ method: 'DELETE', path: `/webhooks/${id}`, token });
    const res = await h.request({ method: 'DELETE', path: `/webhooks/${id}`, token });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'NotFound');
  });

  test('an id that is not a UUID is 404', async () => {
    const res = await h.request({
      method: 'DELETE',
      path: '/webhooks/12345',
      token: await h.token(newTenant()),
    });
    assert.equal(res.statusCode, 404);
  });

  test("another tenant's webhook is 404 and stays in place", async () => {
    const owner = await h.token(newTenant());
    const { id } = await createOk(h, owner);
    const res = await h.request({
      method: 'DELETE',
      path: `/webhooks/${id}`,
      token: await h.token(newTenant()),
    });
    assert.equal(res.statusCode, 404);
    assert.equal((await h.request({ method: 'GET', path: `/webhooks/${id}`, token: owner })).statusCode, 200);
  });
});

describe('POST /webhooks/{id}/key', () => {
  test('issues a new key and keeps the old one as previous for 24 hours', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const now = new Date('2026-05-04T12:00:00Z');
    const res = await at(h, now, () =>
      h.request({ method: 'POST', path: `/webhooks/${created.id}/key`, token }),
    );
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ key: string; previousKeyValidUntil: string }>();
    assert.deepEqual(Object.keys(body), ['key', 'previousKeyValidUntil']);
    assert.match(body.key, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(body.key, created.key);
    assert.equal(body.previousKeyValidUntil, '2026-05-05T12:00:00+00:00');
    const [row] = await h.db.query<{
      key_encrypted: string;
      previous_key_encrypted: string;
      previous_key_valid_until: Date;
    }>('select key_encrypted, previous_key_encrypted, previous_key_valid_until from webhooks where id = $1', [
      created.id,
    ]);
    assert.equal(h.box.decrypt(row!.key_encrypted), body.key);
    assert.equal(h.box.decrypt(row!.previous_key_encrypted), created.key);
    assert.equal(row!.previous_key_valid_until.getTime(), now.getTime() + DAY_MS);
  });

  test('the previous key signs beside the new one until its overlap ends', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const rotated = await h.request({ method: 'POST', path: `/webhooks/${created.id}/key`, token });
    const until = new Date(rotated.json().previousKeyValidUntil);
    const during = await findWebhookSigningKeys(h.db, created.id, new Date(until.getTime() - 1000));
    assert.deepEqual(
      during?.map((k) => h.box.decrypt(k)),
      [rotated.json().key, created.key],
    );
    const afterwards = await findWebhookSigningKeys(h.db, created.id, until);
    assert.deepEqual(
      afterwards?.map((k) => h.box.decrypt(k)),
      [rotated.json().key],
    );
  });

  test('a Disabled webhook may rotate its key', async () => {
    const token = await h.token(newTenant());
    const { id } = await createOk(h, token);
    await disableWebhook(h.db, id, 'RetriesExhausted');
    const res = await h.request({ method: 'POST', path: `/webhooks/${id}/key`, token });
    assert.equal(res.statusCode, 200);
  });

  test('an unknown, malformed or deleted webhook is 404', async () => {
    const token = await h.token(newTenant());
    const { id } = await createOk(h, token);
    await h.request({ method: 'DELETE', path: `/webhooks/${id}`, token });
    for (const target of [id, 'a7d853ea-89eb-4735-83d1-b891c6fde398', 'nope']) {
      const res = await h.request({ method: 'POST', path: `/webhooks/${target}/key`, token });
      assert.equal(res.statusCode, 404, target);
      assert.equal(res.json().error.code, 'NotFound');
    }
  });

  test("another tenant's webhook is 404 and keeps its key", async () => {
    const owner = await h.token(newTenant());
    const created = await createOk(h, owner);
    const res = await h.request({
      method: 'POST',
      path: `/webhooks/${created.id}/key`,
      token: await h.token(newTenant()),
    });
    assert.equal(res.statusCode, 404);
    const keys = await findWebhookSigningKeys(h.db, created.id, new Date());
    assert.deepEqual(
      keys?.map((k) => h.box.decrypt(k)),
      [created.key],
    );
  });
});

describe('key secrecy', () => {
  test('the stored ciphertext does not contain the key, and decrypts to it', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const [row] = await h.db.query<{ key_encrypted: string }>(
      'select key_encrypted from webhooks where id = $1',
      [created.id],
    );
    const secret = created.key.slice('whsec_'.length);
    assert.ok(!row!.key_encrypted.includes(secret));
    assert.ok(!row!.key_encrypted.includes('whsec_'));
    assert.equal(h.box.decrypt(row!.key_encrypted), created.key);
  });

  test('no list or get response carries a key', async () => {
    const token = await h.token(newTenant());
    const created = await createOk(h, token);
    const rotated = (await h.request({ method: 'POST', path: `/webhooks/${created.id}/key`, token })).json();
    for (const path of ['/webhooks', `/webhooks/${created.id}`]) {
      const res = await h.request({ method: 'GET', path, token });
      assert.doesNotMatch(res.body, /whsec_|"key"/);
      assert.ok(!res.body.includes(rotated.key.slice(6)));
    }
  });
});

describe('OpenAPI', () => {
  test('documents every webhook route with the webhooks tag and its response schemas', async () => {
    const doc = (await h.request({ method: 'GET', path: '/swagger/v1/swagger.json' })).json();
    const base = '/connector/protimeapi/api/v1/webhooks';
    const operations = [
      doc.paths[base].post,
      doc.paths[base].get,
      doc.paths[`${base}/{id}`].get,
      doc.paths[`${base}/{id}`].delete,
      doc.paths[`${base}/{id}/key`].post,
    ];
    for (const operation of operations) {
      assert.deepEqual(operation.tags, ['webhooks']);
      assert.equal(typeof operation.summary, 'string');
    }
    assert.ok(doc.paths[base].post.responses['201'].content['application/json'].schema.properties.key);
    assert.ok(
      !doc.paths[`${base}/{id}`].get.responses['200'].content['application/json'].schema.properties.key,
    );
  });
});
