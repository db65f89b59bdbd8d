// What `npm start` runs: `npm run build` compiles the service into dist/, and the compiled `serve`, started with
// the Node.js flags of the start script, works end to end — tokens, an ingest write, and a signed webhook
// delivery to a local receiver — on the test's store.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startNodeFlags } from '../bench/start-command.ts';
import { absence, definition, person } from './helpers/collections.ts';
import { newTenant } from './helpers/harness.ts';
import {
  connectorOk,
  createCliClient,
  createProcessStore,
  fetchToken,
  startServerProcess,
} from './helpers/processes.ts';
import { reply, startReceiver } from './helpers/receiver.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMPILED = fileURLToPath(new URL('../dist/cli/run.js', import.meta.url));

const store = await createProcessStore();
after(() => store.remove());

test("npm run build compiles the service, and the compiled serve with npm start's flags delivers a signed event", async () => {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  assert.equal(build.status, 0, `${build.stdout}\n${build.stderr}`);
  assert.ok(existsSync(COMPILED), 'dist/cli/run.js was written');

  const tenant = newTenant();
  const env = { ...store.env, TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true' };
  const credentials = await createCliClient(env, tenant);
  const server = await startServerProcess(env, [], 60_000, COMPILED, startNodeFlags());
  const receiver = await startReceiver(() => reply.ok());
  try {
    const token = await fetchToken(server.url, tenant, credentials);
    const call = connectorOk(server.url, token, 'TimehookBuildTest/1.0');
    await call('PUT', '/people/1', person(1));
    await call('PUT', '/absence-definitions/10', definition(10));
    await call('PUT', '/shift-definitions/20', definition(20));
    const hook = await call('POST', '/webhooks', {
      collectionName: 'absences',
      destinationUrl: receiver.url(),
    });
    const written = await call('PUT', '/absences/4242', absence());
    await receiver.waitFor((rs) => rs.length >= 1, 30_000, 'the event of the compiled service');
    const event = receiver.requests[0];
    assert.ok(event);
    assert.match(event.headers['webhook-signature'] as string, /^v1,/);
    const body = JSON.parse(event.body) as {
      changeType: string;
      data: { id: number; changeVersion: string };
    };
    assert.equal(body.changeType, 'InsertOrUpdate');
    assert.equal(body.data.id, 4242);
    assert.equal(body.data.changeVersion, written.changeVersion);
    assert.ok(hook.id);
  } finally {
    await receiver.close();
    assert.equal(await server.stop(), 0, server.errors());
  }
});
