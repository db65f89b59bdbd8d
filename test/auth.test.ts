import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { FastifyInstance } from 'fastify';
import { newTenant, PREFIX, useAppWith, useHarness, USER_AGENT } from './helpers/harness.ts';

const h = await useHarness();
/** Served as Protime's hosts: `authentication.myprotime.test` and `<tenant>.myprotime.test`. */
const DOMAIN = 'myprotime.test';
const hosted = await useAppWith(h, { TIMEHOOK_BASE_DOMAIN: DOMAIN });
/** Behind a TLS proxy, with the authentication host too. */
const proxied = await useAppWith(h, {
  TIMEHOOK_BASE_DOMAIN: DOMAIN,
  PUBLIC_BASE_URL: 'https://timehook.example.com',
});

/** The origin of the harness's issuer without PUBLIC_BASE_URL: the configured listen address (HOST, PORT). */
const LISTEN_ORIGIN = 'http://127.0.0.1:8080';

/** A token request to the root token endpoint (upstream's path), or under `base` (the prefixed alias). */
function tokenRequest(
  tenant: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
  { app = h.app, base = '' }: { app?: FastifyInstance; base?: string } = {},
) {
  return app.inject({
    method: 'POST',
    url: `${base}/tenants/${tenant}/connect/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams(form).toString(),
  });
}

/** GET of a discovery or JWKS document (`document` is the path after /tenants/<t>/.well-known/). */
function wellKnown(
  tenant: string,
  document: 'openid-configuration' | 'jwks.json',
  { app = h.app, base = '', host }: { app?: FastifyInstance; base?: string; host?: string } = {},
) {
  return app.inject({
    method: 'GET',
    url: `${base}/tenants/${tenant}/.well-known/${document}`,
    ...(host ? { headers: { host } } : {}),
  });
}

/** GET /webhooks on `app` with the token, sent to `host`. */
function listWebhooks(app: FastifyInstance, token: string, host: string) {
  return app.inject({
    method: 'GET',
    url: `${PREFIX}/webhooks`,
    headers: { host, 'user-agent': USER_AGENT, authorization: `Bearer ${token}` },
  });
}

const basicAuth = (clientId: string, clientSecret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;

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
    const jwks = await wellKnown(tenant, 'jwks.json');
    const { payload } = await jwtVerify(body.access_token, createLocalJWKSet(jwks.json()));
    assert.equal(payload.sub, clientId);
    assert.equal(payload.tenant, tenant);
    assert.equal(payload.scope, 'connector-protimeapi-absences.read');
    assert.equal(payload.aud, 'connector-protimeapi');
    assert.equal(payload.iss, `${LISTEN_ORIGIN}/tenants/${tenant}`);
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 1800);
    assert.equal(typeof payload.jti, 'string');
  });

  test('accepts HTTP Basic client authentication', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    const res = await tokenRequest(
      tenant,
      { grant_type: 'client_credentials' },
      { authorization: basicAuth(clientId, clientSecret) },
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
      url: '/tenants/acme/connect/token',
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
  test('publishes the root issuer, token endpoint, JWKS and scopes', async () => {
    const res = await wellKnown('acme', 'openid-configuration');
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.issuer, `${LISTEN_ORIGIN}/tenants/acme`);
    assert.equal(doc.token_endpoint, `${LISTEN_ORIGIN}/tenants/acme/connect/token`);
    assert.equal(doc.jwks_uri, `${LISTEN_ORIGIN}/tenants/acme/.well-known/jwks.json`);
    assert.deepEqual(doc.grant_types_supported, ['client_credentials']);
    assert.ok(doc.scopes_supported.includes('connector-protimeapi-webhooks.write'));
  });

  test("a root token's iss is the root discovery issuer, and the root JWKS verifies it", async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    const token = (await tokenRequest(tenant, credentials(clientId, clientSecret))).json().access_token;
    const doc = (await wellKnown(tenant, 'openid-configuration')).json();
    const jwks = (await wellKnown(tenant, 'jwks.json')).json();
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: doc.issuer });
    assert.equal(payload.iss, `${LISTEN_ORIGIN}/tenants/${tenant}`);
  });

  test('a forged Host header changes neither the discovery issuer nor the iss of a token', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    const host = 'attacker.example';
    const doc = (await wellKnown(tenant, 'openid-configuration', { host })).json();
    assert.equal(doc.issuer, `${LISTEN_ORIGIN}/tenants/${tenant}`);
    assert.equal(doc.token_endpoint, `${LISTEN_ORIGIN}/tenants/${tenant}/connect/token`);
    const res = await tokenRequest(tenant, credentials(clientId, clientSecret), { host });
    assert.equal(decodeJwt(res.json().access_token).iss, `${LISTEN_ORIGIN}/tenants/${tenant}`);
  });

  test('a wildcard HOST is published as the loopback address of its family', async () => {
    for (const [HOST, origin] of [
      ['0.0.0.0', 'http://127.0.0.1:9090'],
      ['::', 'http://[::1]:9090'],
      ['::1', 'http://[::1]:9090'],
      ['localhost', 'http://localhost:9090'],
    ] as const) {
      const app = await useAppWith(h, { HOST, PORT: '9090' });
      const doc = (await wellKnown('acme', 'openid-configuration', { app })).json();
      assert.equal(doc.issuer, `${origin}/tenants/acme`, HOST);
    }
  });

  test('PUBLIC_BASE_URL, when set, is the origin of the issuer', async () => {
    const doc = (await wellKnown('acme', 'openid-configuration', { app: proxied })).json();
    assert.equal(doc.issuer, 'https://timehook.example.com/tenants/acme');
    assert.equal(doc.token_endpoint, 'https://timehook.example.com/tenants/acme/connect/token');
  });

  test('the prefixed paths are aliases with their own prefixed issuer, and their tokens work too', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    const issuer = `${LISTEN_ORIGIN}${PREFIX}/tenants/${tenant}`;
    const doc = (await wellKnown(tenant, 'openid-configuration', { base: PREFIX })).json();
    assert.equal(doc.issuer, issuer);
    assert.equal(doc.token_endpoint, `${issuer}/connect/token`);
    assert.equal(doc.jwks_uri, `${issuer}/.well-known/jwks.json`);
    const res = await tokenRequest(tenant, credentials(clientId, clientSecret), {}, { base: PREFIX });
    assert.equal(res.statusCode, 200);
    const token = res.json().access_token;
    const jwks = (await wellKnown(tenant, 'jwks.json', { base: PREFIX })).json();
    await jwtVerify(token, createLocalJWKSet(jwks), { issuer });
    const listed = await h.request({ method: 'GET', path: '/webhooks', token });
    assert.equal(listed.statusCode, 200, listed.body);
  });

  test('tokens signed before a key rotation keep verifying; new tokens use the new key', async () => {
    const tenant = newTenant();
    const before = await h.token(tenant);
    const oldKid = (await import('jose')).decodeProtectedHeader(before).kid;
    await h.keyRing.rotate();
    const after = await h.token(tenant);
    assert.notEqual((await import('jose')).decodeProtectedHeader(after).kid, oldKid);
    const jwks = (await wellKnown(tenant, 'jwks.json')).json();
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

describe('the authentication host of TIMEHOOK_BASE_DOMAIN', () => {
  const authenticationHost = `authentication.${DOMAIN}`;

  test('authentication.<domain> reaches the root routes and is the issuer there', async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    const issuer = `http://${authenticationHost}/tenants/${tenant}`;
    const doc = (
      await wellKnown(tenant, 'openid-configuration', { app: hosted, host: authenticationHost })
    ).json();
    assert.equal(doc.issuer, issuer);
    assert.equal(doc.token_endpoint, `${issuer}/connect/token`);
    assert.equal(doc.jwks_uri, `${issuer}/.well-known/jwks.json`);
    const res = await tokenRequest(
      tenant,
      { grant_type: 'client_credentials' },
      { host: authenticationHost.toUpperCase(), authorization: basicAuth(clientId, clientSecret) },
      { app: hosted },
    );
    assert.equal(res.statusCode, 200, res.body);
    const token = res.json().access_token;
    const jwks = (await wellKnown(tenant, 'jwks.json', { app: hosted, host: authenticationHost })).json();
    await jwtVerify(token, createLocalJWKSet(jwks), { issuer });
    const listed = await listWebhooks(hosted, token, `${tenant}.${DOMAIN}`);
    assert.equal(listed.statusCode, 200, listed.body);
  });

  test('behind PUBLIC_BASE_URL, authentication.<domain> keeps its own host with the public scheme', async () => {
    const doc = (
      await wellKnown('acme', 'openid-configuration', { app: proxied, host: authenticationHost })
    ).json();
    assert.equal(doc.issuer, `https://${authenticationHost}/tenants/acme`);
  });

  test('any other host under the domain is not trusted as the issuer', async () => {
    for (const host of [
      `acme.${DOMAIN}`,
      `authentication.${DOMAIN}.attacker.example`,
      `x.authentication.${DOMAIN}`,
    ]) {
      const doc = (await wellKnown('acme', 'openid-configuration', { app: hosted, host })).json();
      assert.equal(doc.issuer, `${LISTEN_ORIGIN}/tenants/acme`, host);
    }
  });

  test("a token issued at the authentication host works only for its own tenant's host", async () => {
    const tenant = newTenant();
    const { clientId, clientSecret } = await h.createClient(tenant);
    const refused = await tokenRequest(
      newTenant(),
      credentials(clientId, clientSecret),
      { host: authenticationHost },
      { app: hosted },
    );
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.json().error, 'invalid_client');
    const token = (
      await tokenRequest(
        tenant,
        credentials(clientId, clientSecret),
        { host: authenticationHost },
        { app: hosted },
      )
    ).json().access_token;
    const res = await listWebhooks(hosted, token, `other.${DOMAIN}`);
    assert.equal(res.statusCode, 401);
    assert.match(String(res.headers['www-authenticate']), /^Bearer error="invalid_token"/);
  });
});
