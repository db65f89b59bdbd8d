import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createProcessStore, requestToken, runCli, startServerProcess } from './helpers/processes.ts';

const store = await createProcessStore();
after(() => store.remove());
const embedded = !process.env.DATABASE_URL;

describe('timehook CLI', () => {
  let created: { tenant: string; clientId: string; clientSecret: string; scopes: string[] };

  test('clients create --json prints exactly one JSON object with the new credentials', async () => {
    const result = await runCli(
      [
        'clients',
        'create',
        '--tenant',
        'acme',
        '--scope',
        'connector-protimeapi-absences.read connector-protimeapi-webhooks.read',
        '--name',
        'payroll',
        '--json',
      ],
      store.env,
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines.length, 1, result.stdout);
    created = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(created).sort(), ['clientId', 'clientSecret', 'scopes', 'tenant']);
    assert.equal(created.tenant, 'acme');
    assert.deepEqual(created.scopes, [
      'connector-protimeapi-absences.read',
      'connector-protimeapi-webhooks.read',
    ]);
  });

  test('clients create rejects unknown scopes and a missing tenant with a usage error', async () => {
    const unknown = await runCli(
      ['clients', 'create', '--tenant', 'acme', '--scope', 'everything'],
      store.env,
    );
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown scopes: everything/);
    const noTenant = await runCli(
      ['clients', 'create', '--scope', 'connector-protimeapi-absences.read'],
      store.env,
    );
    assert.equal(noTenant.code, 2);
    assert.match(noTenant.stderr, /--tenant is required/);
  });

  test('clients list shows the client without its secret', async () => {
    const result = await runCli(['clients', 'list', '--json'], store.env);
    assert.equal(result.code, 0, result.stderr);
    const rows = JSON.parse(result.stdout);
    assert.ok(rows.some((r: { clientId: string }) => r.clientId === created.clientId));
    assert.doesNotMatch(result.stdout, new RegExp(created.clientSecret));
  });

  test('the server issues tokens to the client; while it runs the embedded store is locked for others', async () => {
    const server = await startServerProcess(store.env);
    try {
      const res = await requestToken(server.url, 'acme', created.clientId, created.clientSecret);
      assert.equal(res.status, 200);
      assert.doesNotMatch(
        server.output(),
        new RegExp(created.clientSecret),
        'the secret never reaches the log',
      );
      if (embedded) {
        const cli = await runCli(['clients', 'list'], store.env);
        assert.equal(cli.code, 1);
        assert.match(cli.stderr, /is in use by another Timehook process \(pid \d+\)/);
        const second = await runCli(['serve'], { ...store.env, PORT: '0' });
        assert.equal(second.code, 1);
        assert.match(second.stderr, /is in use by another Timehook process/);
      }
    } finally {
      assert.equal(await server.stop(), 0, 'SIGTERM exits 0');
    }
  });

  test('clients revoke stops the client from getting tokens', async () => {
    const revoked = await runCli(['clients', 'revoke', created.clientId], store.env);
    assert.equal(revoked.code, 0, revoked.stderr);
    const again = await runCli(['clients', 'revoke', created.clientId], store.env);
    assert.equal(again.code, 1);
    const server = await startServerProcess(store.env);
    try {
      const res = await requestToken(server.url, 'acme', created.clientId, created.clientSecret);
      assert.equal(res.status, 401);
    } finally {
      await server.stop();
    }
  });

  test('a server killed with SIGKILL leaves no lock behind: the next start just works', async () => {
    const first = await startServerProcess(store.env);
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    const second = await startServerProcess(store.env);
    const health = await fetch(`${second.url}/readyz`);
    assert.equal(health.status, 200);
    assert.equal(await second.stop(), 0);
  });

  test('migrate applies migrations and says so', async () => {
    const result = await runCli(['migrate'], store.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /up to date/);
  });

  test('a bad setting stops the process with one clear line', async () => {
    const result = await runCli(['serve'], { ...store.env, TIMEHOOK_WEBHOOK_TTL: 'forever' });
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /TIMEHOOK_WEBHOOK_TTL="forever" is not valid/);
  });

  test('an unknown command prints the usage and exits 2', async () => {
    const result = await runCli(['frobnicate'], store.env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Unknown command "frobnicate"/);
    assert.match(result.stderr, /Usage: timehook/);
  });
});
