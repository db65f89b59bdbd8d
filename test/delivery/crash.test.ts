// Crash safety (SPEC §3.1): the real server process (`timehook serve`) is killed with SIGKILL while thousands
// of events are pending, then restarted; a ledger shows every change acknowledged at least once. The second
// process then stops on SIGTERM and exits 0 (graceful drain). Embedded store in a temp directory, or a fresh
// PostgreSQL schema with DATABASE_URL.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { formatChangeVersion, parseChangeVersion } from '../../src/domain/change-version.ts';
import { absence, definition, person } from '../helpers/collections.ts';
import { reply, startReceiver, waitUntil } from '../helpers/receiver.ts';

const BIN = fileURLToPath(new URL('../../bin/timehook.js', import.meta.url));
const PREFIX = '/connector/protimeapi/api/v1';
const TENANT = 'crash';
const CHANGES = 3_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The store for the child processes: a temp data directory, or a fresh schema on DATABASE_URL. */
async function storeEnv(): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const dir = mkdtempSync(join(tmpdir(), 'timehook-crash-'));
    return { env: { DATA_DIR: dir }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const schema = `crash_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const separator = url.includes('?') ? '&' : '?';
  return {
    env: { DATABASE_URL: `${url}${separator}options=${encodeURIComponent(`-c search_path=${schema}`)}` },
    cleanup: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`drop schema ${schema} cascade`);
      await client.end();
    },
  };
}

const { env: storeVars, cleanup } = await storeEnv();
after(cleanup);
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const childEnv: Record<string, string> = {
  ...(Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL' && k !== 'DATA_DIR'),
  ) as Record<string, string>),
  ...storeVars,
  PORT: String(port),
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
  TIMEHOOK_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  TIMEHOOK_LEASE_TTL: '2s',
  TIMEHOOK_RETRY_SCHEDULE: '200ms,500ms,1s,1s,1s,1s,1s,1s',
};

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

async function startServer(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: childEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}: ${stderr}`);
      try {
        return (await fetch(`${base}/readyz`)).ok;
      } catch {
        return false;
      }
    },
    60_000,
    'the server to be ready',
  );
  return child;
}

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${base}${PREFIX}${path}`, {
    method,
    headers: {
      'user-agent': 'TimehookCrashTest/1.0',
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

test('kill -9 while thousands of events are pending loses nothing: every change is acknowledged after restart', async () => {
  // A client, made with the CLI before the server holds the store.
  const created = spawnSync(
    process.execPath,
    [
      BIN,
      'clients',
      'create',
      '--tenant',
      TENANT,
      '--scope',
      'connector-protimeapi-absences.read connector-protimeapi-absences.write connector-protimeapi-people.write connector-protimeapi-absence-definitions.write connector-protimeapi-shift-definitions.write connector-protimeapi-webhooks.write connector-protimeapi-webhooks.read',
      '--json',
    ],
    { env: childEnv, encoding: 'utf8' },
  );
  assert.equal(created.status, 0, created.stderr);
  const { clientId, clientSecret } = JSON.parse(created.stdout) as { clientId: string; clientSecret: string };

  // The receiver acknowledges slowly, so thousands of events are still pending when the server dies.
  const acknowledged = new Set<number>();
  let requests = 0;
  const receiver = await startReceiver(() => reply.delayed(15));
  const countAck = () => {
    for (const r of receiver.requests.slice(requests)) {
      if (r.status === 200) acknowledged.add(parseChangeVersion(JSON.parse(r.body).data.changeVersion)!);
    }
  };
  try {
    let server = await startServer();
    const tokenRes = await fetch(`${base}${PREFIX}/tenants/${TENANT}/connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
      }),
    });
    assert.equal(tokenRes.status, 200);
    const token = ((await tokenRes.json()) as { access_token: string }).access_token;
    await call('PUT', '/people/1', token, person(1));
    await call('PUT', '/absence-definitions/10', token, definition(10));
    await call('PUT', '/shift-definitions/20', token, definition(20));
    await call('POST', '/webhooks', token, {
      destinationUrl: receiver.url('/ledger'),
      collectionName: 'absences',
    });

    // The ledger: every change version written to absences.
    const expected = new Set<number>();
    const batches = [
      Array.from({ length: CHANGES / 2 }, (_, i) => ({ ...absence(), id: 10_000 + i })),
      Array.from({ length: CHANGES / 2 }, (_, i) => ({
        ...absence({ durationInMinutes: 1 }),
        id: 10_000 + i,
      })),
    ];
    for (const upsert of batches) {
      const result = await call('POST', '/absences/batch', token, { upsert, delete: [] });
      assert.equal(result.upserted, upsert.length);
      const last = parseChangeVersion(result.lastChangeVersion)!;
      for (let v = last - upsert.length + 1; v <= last; v++) expected.add(v);
    }
    assert.equal(expected.size, CHANGES);

    await receiver.waitFor(
      (rs) => rs.filter((r) => r.status === 200).length >= 200,
      60_000,
      'first acknowledgements',
    );
    server.kill('SIGKILL');
    await new Promise((resolve) => server.once('exit', resolve));
    countAck();
    requests = receiver.requests.length;
    assert.ok(acknowledged.size < CHANGES, 'events were still pending when the server was killed');

    receiver.script = () => reply.ok();
    server = await startServer();
    await waitUntil(
      () => {
        countAck();
        requests = receiver.requests.length;
        return [...expected].every((v) => acknowledged.has(v));
      },
      90_000,
      'every change acknowledged after the restart',
    );
    const missing = [...expected].filter((v) => !acknowledged.has(v));
    assert.deepEqual(missing.map(formatChangeVersion), []);

    // A graceful stop: in-flight attempts finish, leases are released, exit code 0.
    server.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => server.once('exit', (c) => resolve(c)));
    assert.equal(code, 0);
  } finally {
    await receiver.close();
  }
});
