import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { newTenant, PREFIX, useHarness, USER_AGENT } from './helpers/harness.ts';

const h = await useHarness();

function tokenRequest(tenant: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return h.app.inject({
    method: 'POST',
    url: `${PREFIX}/tenants/${tenant}/connect/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams(form).toString(),
  });
}

/** The client_credentials form of a client, with any further fields (scope). */
const credentials = (clientId: string, clientSecret: string, more: Record<string, string> = {}) => ({
  grant_type: 'client_credentials',
  client_id: clientId,
  client_secret: clientSecret,
  ...more,
});

describe('token endpoint', () => {
  test('issues a signed JWT with the spec claims for form credentials', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant, ['connector-protimeapi-absences.read']);
    const res = await tokenRequest(tenant, credentials(clientId, clientSecret));
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.json();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 1800);
    assert.equal(body.scope, 'connector-protimeapi-absences.read');
    const jwks = await h.app.inject({
      method: 'GET',
      url: `${PREFIX}/tenants/${tenant}/.well-known/jwks.json`,
    });
    const { payload } = await jwtVerify(body.access_token, createLocalJWKSet(jwks.json()));
    assert.equal(payload.sub, clientId);
    assert.equal(payload.tenant, tenant);
    assert.equal(payload.scope, 'connector-protimeapi-absences.read');
    assert.equal(payload.aud, 'connector-protimeapi');
    assert.ok(payload.iss?.endsWith(`/tenants/${tenant}`));
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 1800);
    assert.equal(typeof payload.jti, 'string');
  });

  test('accepts HTTP Basic client authentication', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString(
      'base64',
    );
    const res = await tokenRequest(
      tenant,
      { grant_type: 'client_credentials' },
      { authorization: `Basic ${basic}` },
    );
    assert.equal(res.statusCode, 200);
  });

  test('grants only the requested subset of scopes', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant, [
      'connector-protimeapi-absences.read',
      'connector-protimeapi-webhooks.read',
    ]);
    const res = await tokenRequest(
      tenant,
      credentials(clientId, clientSecret, { scope: 'connector-protimeapi-webhooks.read' }),
    );
    assert.equal(res.statusCode, 200);
    assert.equal(decodeJwt(res.json().access_token).scope, 'connector-protimeapi-webhooks.read');
  });

  test('rejects a scope the client was not granted with invalid_scope', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant, ['connector-protimeapi-absences.read']);
    const res = await tokenRequest(
      tenant,
      credentials(clientId, clientSecret, { scope: 'connector-protimeapi-webhooks.write' }),
    );
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'invalid_scope');
  });

  test('rejects a wrong secret, an unknown client and another tenant with invalid_client', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    for (const [t, id, secret] of [
      [tenant, clientId, 'wrong'],
      [tenant, 'nobody', clientSecret],
      [newTenant(), clientId, clientSecret],
    ] as const) {
      const res = await tokenRequest(t, credentials(id, secret));
      assert.equal(res.statusCode, 401);
      assert.equal(res.json().error, 'invalid_client');
    }
  });

  test('rejects other grant types and missing grant_type', async () => {
    const tenant = newTenant();
    const res = await tokenRequest(tenant, { grant_type: 'password', client_id: 'a', client_secret: 'b' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'unsupported_grant_type');
    const missing = await tokenRequest(tenant, { client_id: 'a', client_secret: 'b' });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().error, 'invalid_request');
  });

  test('rejects a JSON body with invalid_request', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: `${PREFIX}/tenants/acme/connect/token`,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'invalid_request');
  });

  test('rate-limits repeated bad secrets for one client id with 429 and Retry-After', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    for (let i = 0; i < 5; i++) {
      const res = await tokenRequest(tenant, credentials(clientId, 'bad'));
      assert.equal(res.statusCode, 401);
    }
    const limited = await tokenRequest(tenant, credentials(clientId, clientSecret));
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers['retry-after']) >= 1);
  });

  test('a revoked client gets no token and its tokens stop working', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    await h.db.query('update clients set revoked_at = now() where id = $1', [clientId]);
    const res = await tokenRequest(tenant, credentials(clientId, clientSecret));
    assert.equal(res.statusCode, 401);
  });
});

describe('discovery', () => {
  test('publishes the issuer, token endpoint, JWKS and scopes', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: `${PREFIX}/tenants/acme/.well-known/openid-configuration`,
    });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.ok(doc.issuer.endsWith('/tenants/acme'));
    assert.equal(doc.token_endpoint, `${doc.issuer}/connect/token`);
    assert.equal(doc.jwks_uri, `${doc.issuer}/.well-known/jwks.json`);
    assert.deepEqual(doc.grant_types_supported, ['client_credentials']);
    assert.ok(doc.scopes_supported.includes('connector-protimeapi-webhooks.write'));
  });

  test('tokens signed before a key rotation keep verifying; new tokens use the new key', async () => {
    const tenant = newTenant();
    const before = await h.token(tenant);
    const oldKid = (await import('jose')).decodeProtectedHeader(before).kid;
    await h.keyRing.rotate();
    const after = await h.token(tenant);
    assert.notEqual((await import('jose')).decodeProtectedHeader(after).kid, oldKid);
    const jwks = (
      await h.app.inject({ method: 'GET', url: `${PREFIX}/tenants/${tenant}/.well-known/jwks.json` })
    ).json();
    assert.equal(jwks.keys.length >= 2, true);
    for (const token of [before, after]) {
      const res = await h.request({ method: 'GET', path: '/webhooks', token });
      assert.equal(res.statusCode, 200, res.body);
    }
  });
});

describe('bearer authentication on connector requests', () => {
  test('a missing User-Agent is 400 UserAgentRequired', async () => {
    const token = await h.token(newTenant());
    const res = await h.app.inject({
      method: 'GET',
      url: `${PREFIX}/webhooks`,
      headers: { authorization: `Bearer ${token}`, 'user-agent': undefined },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'UserAgentRequired');
  });

  test('a missing, malformed or forged token is 401 invalid_token in the error format', async () => {
    const token = await h.token(newTenant());
    const [head, body] = token.split('.');
    const forged = `${head}.${body}.${Buffer.from('x'.repeat(64)).toString('base64url')}`;
    for (const authorization of [undefined, 'Bearer', 'Basic abc', 'Bearer not-a-jwt', `Bearer ${forged}`]) {
      const res = await h.app.inject({
        method: 'GET',
        url: `${PREFIX}/webhooks`,
        headers: { 'user-agent': USER_AGENT, ...(authorization ? { authorization } : {}) },
      });
      assert.equal(res.statusCode, 401, String(authorization));
      assert.equal(res.json().error.code, 'Unauthorized');
      assert.match(String(res.headers['www-authenticate']), /^Bearer error="invalid_token"/);
    }
  });

  test('a token lacking the scope is 401 insufficient_scope naming the scope', async () => {
    const token = await h.token(newTenant(), ['connector-protimeapi-absences.read']);
    const res = await h.request({ method: 'GET', path: '/webhooks', token });
    assert.equal(res.statusCode, 401);
    assert.equal(
      res.headers['www-authenticate'],
      'Bearer error="insufficient_scope", scope="connector-protimeapi-webhooks.read"',
    );
    assert.equal(res.json().error.code, 'Unauthorized');
  });
});
