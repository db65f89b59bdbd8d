// Runs the real `timehook` command as child processes: one-shot CLI calls and long-running servers, and talks
// to them over HTTP (tokens, connector requests). Each test gets its own store: a temp DATA_DIR, or — when
// DATABASE_URL is set — a fresh database.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const BIN = fileURLToPath(new URL('../../bin/timehook.js', import.meta.url));
export const PREFIX = '/connector/protimeapi/api/v1';

/** The scopes of a client that seeds a tenant, writes and reads absences and manages webhooks. */
export const CLIENT_SCOPES = [
  'absences.read',
  'absences.write',
  'people.write',
  'absence-definitions.write',
  'shift-definitions.write',
  'webhooks.read',
  'webhooks.write',
]
  .map((s) => `connector-protimeapi-${s}`)
  .join(' ');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies of any resource
type Json = any;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A store for child processes: env vars that point at it, and a function that removes it. */
export async function createProcessStore(): Promise<{
  env: Record<string, string>;
  remove: () => Promise<void>;
}> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const dir = mkdtempSync(join(tmpdir(), 'timehook-test-'));
    return { env: { DATA_DIR: dir }, remove: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `timehook_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    remove: async () => {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean = { ...process.env };
  delete clean.DATABASE_URL;
  delete clean.NODE_TEST_CONTEXT;
  return { ...clean, LOG_LEVEL: 'info', ...env };
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Creates a client with `timehook clients create` (before a server holds an embedded store). */
export async function createCliClient(
  env: Record<string, string>,
  tenant: string,
  scopes = CLIENT_SCOPES,
): Promise<{ clientId: string; clientSecret: string }> {
  const created = await runCli(['clients', 'create', '--tenant', tenant, '--scope', scopes, '--json'], env);
  assert.equal(created.code, 0, created.stderr);
  return JSON.parse(created.stdout) as { clientId: string; clientSecret: string };
}

/** Asks the server at `url` for a token with client credentials; the answer as it came. */
export function requestToken(
  url: string,
  tenant: string,
  clientId: string,
  clientSecret: string,
): Promise<Response> {
  return fetch(`${url}/tenants/${tenant}/connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
    }),
  });
}

/** requestToken, asserting a 200; the access token. */
export async function fetchToken(
  url: string,
  tenant: string,
  { clientId, clientSecret }: { clientId: string; clientSecret: string },
): Promise<string> {
  const res = await requestToken(url, tenant, clientId, clientSecret);
  assert.equal(res.status, 200);
  return ((await res.json()) as { access_token: string }).access_token;
}

export interface ConnectorResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON body; undefined for an empty one. */
  body: Json;
}

/** A connector request (bearer token, JSON body) to the server at `url`. */
export async function callConnector(
  url: string,
  request: { method: string; path: string; token: string; userAgent: string; body?: unknown },
): Promise<ConnectorResponse> {
  const { method, path, token, userAgent, body } = request;
  const res = await fetch(`${url}${PREFIX}${path}`, {
    method,
    headers: {
      'user-agent': userAgent,
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * Connector requests to the server at `url` with `token`, each asserting a 2xx answer; resolves with the
 * answer's body.
 */
export function connectorOk(
  url: string,
  token: string,
  userAgent: string,
): (method: string, path: string, body?: unknown) => Promise<Json> {
  return async (method, path, body) => {
    const res = await callConnector(url, { method, path, token, userAgent, body });
    assert.ok(
      res.status >= 200 && res.status < 300,
      `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`,
    );
    return res.body;
  };
}

/** The delivery worker id a `serve` process logged at start (role all or worker). */
export function workerIdOf(server: ServerProcess): string {
  const line = server
    .output()
    .split('\n')
    .find((l) => l.includes('delivery worker started'));
  assert.ok(line, 'the process logged its worker id');
  return (JSON.parse(line) as { workerId: string }).workerId;
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** Every line the process has written to stdout so far. */
  output: () => string;
  /** Everything the process has written to stderr so far. */
  errors: () => string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | string | null>;
  /** SIGTERM, then wait for exit. */
  stop(): Promise<number | string | null>;
}

/**
 * Starts `timehook serve` on a free port and resolves once it listens; from source (bin/timehook.js), or
 * another entry such as the compiled dist/cli/run.js, optionally with Node.js flags (npm start's).
 */
export function startServerProcess(
  env: Record<string, string>,
  args: string[] = [],
  timeoutMs = 60_000,
  entry = BIN,
  nodeFlags: string[] = [],
): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, entry, 'serve', ...args], {
      env: childEnv({ PORT: '0', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let started = false;
    const exited = new Promise<number | string | null>((done) =>
      child.on('exit', (code, signal) => done(signal ?? code)),
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      const from = stdout.lastIndexOf('\n') + 1; // complete lines before this chunk were looked at already
      stdout += d.toString();
      if (started) return; // a worker logs every attempt: do not rescan thousands of lines per chunk
      for (const line of stdout.slice(from).split('\n')) {
        if (!line.includes('timehook started')) continue;
        const info = JSON.parse(line) as { url?: string; role?: string };
        started = true;
        clearTimeout(timer);
        resolve({
          child,
          url: info.url ?? '',
          output: () => stdout,
          errors: () => stderr,
          exited,
          async stop() {
            child.kill('SIGTERM');
            return exited;
          },
        });
        return;
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${String(code)}) before it started:\n${stdout}\n${stderr}`));
    });
  });
}
