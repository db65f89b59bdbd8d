// Real OAuth clients against a served `timehook serve` on 127.0.0.1 (a free port): openid-client discovers the
// issuer in upstream's form `<base>/tenants/<t>` and runs the client-credentials grant, and a client given only
// the root token URL posts a plain form (SPEC §1.1; protime-fidelity §4.1).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { newTenant } from './helpers/harness.ts';
import {
  callConnector,
  createCliClient,
  createProcessStore,
  startServerProcess,
  type ServerProcess,
} from './helpers/processes.ts';

const USER_AGENT = 'TimehookOidcTest/1.0 (Timehook)';
const WEBHOOKS_READ = 'connector-protimeapi-webhooks.read';

const store = await createProcessStore();
const tenant = newTenant();
const credentials = await createCliClient(store.env, tenant, WEBHOOKS_READ);
let server: ServerProcess;

before(async () => {
  server = await startServerProcess(store.env, ['--role', 'api']);
});
after(async () => {
  assert.equal(await server.stop(), 0, server.errors());
  await store.remove();
});

describe('an OAuth client of a served instance', () => {
  for (const [name, auth] of [
    ['client_secret_post', oidc.ClientSecretPost],
    ['client_secret_basic', oidc.ClientSecretBasic],
  ] as const) {
    test(`openid-client discovers <base>/tenants/<t> and gets a token (${name}) that a connector route accepts`, async () => {
      const issuer = new URL(`${server.url}/tenants/${tenant}`);
      const config = await oidc.discovery(
        issuer,
        credentials.clientId,
        undefined,
        auth(credentials.clientSecret),
        { execute: [oidc.allowInsecureRequests] },
      );
      assert.equal(config.serverMetadata().issuer, issuer.href);
      assert.equal(config.serverMetadata().token_endpoint, `${issuer.href}/connect/token`);
      const tokens = await oidc.clientCredentialsGrant(config, { scope: WEBHOOKS_READ });
      assert.equal(tokens.token_type.toLowerCase(), 'bearer');
      assert.equal(tokens.expires_in, 1800);
      assert.equal(decodeJwt(tokens.access_token).iss, issuer.href);
      const res = await callConnector(server.url, {
        method: 'GET',
        path: '/webhooks',
        token: tokens.access_token,
        userAgent: USER_AGENT,
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, { value: [] });
    });
  }

  test('a plain form POST to the root token URL gets a token whose issuer is the served address', async () => {
    const res = await fetch(`${server.url}/tenants/${tenant}/connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: credentials.clientId,
        client_secret: credentials.clientSecret,
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { access_token: string; scope: string };
    assert.equal(body.scope, WEBHOOKS_READ);
    assert.equal(decodeJwt(body.access_token).iss, `${server.url}/tenants/${tenant}`);
    const listed = await callConnector(server.url, {
      method: 'GET',
      path: '/webhooks',
      token: body.access_token,
      userAgent: USER_AGENT,
    });
    assert.equal(listed.status, 200);
  });
});
