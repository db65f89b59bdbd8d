// Crash safety (SPEC §3.1): the real server process (`timehook serve`) is killed with SIGKILL while thousands
// of events are pending, then restarted; a ledger shows every change acknowledged at least once, and order
// across the crash: no event of an object arrives after a later event of it was acknowledged. The second
// process then stops on SIGTERM and exits 0 (graceful drain). Embedded store in a temp directory, or a fresh
// PostgreSQL database with DATABASE_URL (see createProcessStore).

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, test } from 'node:test';
import { formatChangeVersion, parseChangeVersion } from '../../src/domain/change-version.ts';
import { absence, definition, person } from '../helpers/collections.ts';
import { BIN, callConnector, createCliClient, createProcessStore, fetchToken } from '../helpers/processes.ts';
import { reply, startReceiver, waitUntil } from '../helpers/receiver.ts';

const TENANT = 'crash';
const CHANGES = 3_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const store = await createProcessStore();
after(() => store.remove());
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const childEnv: Record<string, string> = {
  ...(Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL' && k !== 'DATA_DIR'),
  ) as Record<string, string>),
  ...store.env,
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
  const res = await callConnector(base, { method, path, token, userAgent: 'TimehookCrashTest/1.0', body });
  assert.ok(
    res.status >= 200 && res.status < 300,
    `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`,
  );
  return res.body;
}

test('kill -9 while thousands of events are pending loses nothing: every change is acknowledged after restart', async () => {
  // A client, made with the CLI before the server holds the store.
  const credentials = await createCliClient(childEnv, TENANT);

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
    const token = await fetchToken(base, TENANT, credentials);
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

    // Order across the crash (issue 22): every arrival, duplicates included, against every acknowledgement.
    const events = receiver.requests.map((r) => {
      const data = (JSON.parse(r.body) as { data: { id: number; changeVersion: string } }).data;
      return { id: data.id, version: parseChangeVersion(data.changeVersion)!, r };
    });
    const overtaken = events.filter((e) =>
      events.some(
        (later) =>
          later.id === e.id &&
          later.version > e.version &&
          later.r.status === 200 &&
          later.r.answeredAt !== undefined &&
          later.r.answeredAt <= e.r.arrivedAt,
      ),
    );
    assert.deepEqual(
      overtaken.map((e) => `${e.id}@${formatChangeVersion(e.version)}`),
      [],
      'an event arrived after a later event of its object was acknowledged',
    );

    // A graceful stop: in-flight attempts finish, leases are released, exit code 0.
    server.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => server.once('exit', (c) => resolve(c)));
    assert.equal(code, 0);
  } finally {
    await receiver.close();
  }
});
