// The service under test, run the way users run it: the compiled build `npm start` runs (dist/cli/run.js,
// built once per bench run) as child processes on a store of its own (a temp DATA_DIR, or a fresh PostgreSQL
// database that is dropped afterwards).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { request } from 'undici';
import { alive, cpuSeconds, mainThreadCpuSeconds, memoryBytes, onCleanup, track } from './children.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'dist', 'cli', 'run.js');

/** `npm run build` (tsc -p tsconfig.build.json): the bench measures the current sources, compiled. */
export async function buildService(): Promise<void> {
  const child = track(
    spawn(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`the build failed (tsc exit ${code}):\n${output}`);
}

export type StoreKind = 'embedded' | 'postgres';

export const ALL_SCOPES = ['absences', 'people', 'absence-definitions', 'shift-definitions', 'webhooks']
  .flatMap((c) => [`connector-protimeapi-${c}.read`, `connector-protimeapi-${c}.write`])
  .join(' ');

export interface BenchStore {
  kind: StoreKind;
  env: Record<string, string>;
  /** Set on PostgreSQL: the admin URL and the database name (for pg_stat_activity and version()). */
  pg?: { adminUrl: string; database: string; url: string };
  remove(): Promise<void>;
}

export async function createStore(kind: StoreKind, pgAdminUrl: string): Promise<BenchStore> {
  if (kind === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'timehook-bench-'));
    const remove = async () => rmSync(dir, { recursive: true, force: true });
    const unregister = onCleanup(remove);
    return {
      kind,
      env: { DATA_DIR: dir },
      remove: async () => {
        unregister();
        await remove();
      },
    };
  }
  const database = `timehook_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(pgAdminUrl, `create database ${database}`);
  const url = new URL(pgAdminUrl);
  url.pathname = `/${database}`;
  const remove = () =>
    adminQuery(pgAdminUrl, `drop database if exists ${database} with (force)`).then(() => undefined);
  const unregister = onCleanup(remove);
  return {
    kind,
    env: { DATABASE_URL: url.toString() },
    pg: { adminUrl: pgAdminUrl, database, url: url.toString() },
    remove: async () => {
      unregister();
      await remove();
    },
  };
}

export async function adminQuery<T = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** The environment of a service child: ours only, nothing inherited that could point it elsewhere. */
function serviceEnv(store: BenchStore, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      /^(TIMEHOOK_|DATABASE_URL$|DATA_DIR$|PORT$|HOST$|LOG_LEVEL$|PUBLIC_BASE_URL$|NODE_OPTIONS$)/.test(name)
    )
      continue;
    env[name] = value;
  }
  return { ...env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...store.env, ...extra };
}

export interface Client {
  clientId: string;
  clientSecret: string;
}

/**
 * `timehook clients create --tenant <tenant> --scope <all> --json`. On the embedded store this must run
 * while no server holds the data directory.
 */
export async function createClient(store: BenchStore, tenant: string): Promise<Client> {
  const child = track(
    spawn(process.execPath, [BIN, 'clients', 'create', '--tenant', tenant, '--scope', ALL_SCOPES, '--json'], {
      env: serviceEnv(store, {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`timehook clients create failed (${String(code)}): ${stderr || stdout}`);
  const created = JSON.parse(stdout) as Client;
  return { clientId: created.clientId, clientSecret: created.clientSecret };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type Role = 'all' | 'api' | 'worker';

export interface ServiceProcess {
  role: Role;
  child: ChildProcess;
  pid: number;
  /** The HTTP origin (api/all roles). */
  url: string | undefined;
  /** The last 64 KiB the process wrote (stdout and stderr). */
  output(): string;
  cpuSeconds(): number | undefined;
  /** Its main thread's: the event loop. */
  mainThreadCpuSeconds(): number | undefined;
  rssBytes(): number | undefined;
  peakRssBytes(): number | undefined;
  /** The CPU profile file, when started with a profile directory. */
  profileDir: string | undefined;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves with the exit code or signal. */
  stop(graceMs?: number): Promise<number | string | null>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Node.js flags before the entry point (npm start's, see bench/start-command.ts). */
  nodeFlags: string[];
  /** Write a V8 CPU profile (node --cpu-prof) into this directory; it appears when the process exits. */
  profileDir?: string;
  timeoutMs?: number;
}

/**
 * Starts `timehook serve --role <role>` and resolves once it is ready: for api/all, /readyz answers 200 on
 * the port chosen here (the "timehook started" line is logged at info, which LOG_LEVEL=warn hides); for a
 * worker, once it has opened its own connections to the database (PostgreSQL only).
 */
export async function startService(
  store: BenchStore,
  role: Role,
  options: StartOptions,
): Promise<ServiceProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const port = role === 'worker' ? 0 : await freePort();
  const execArgv = [...options.nodeFlags];
  if (options.profileDir) {
    mkdirSync(options.profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`);
  }
  if (role === 'worker' && !store.pg) throw new Error('the worker role needs PostgreSQL');
  const spawnedAt = new Date();
  const child = track(
    spawn(process.execPath, [...execArgv, BIN, 'serve', '--role', role], {
      env: serviceEnv(store, { PORT: String(port), ...options.env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 128 * 1024) output = output.slice(-64 * 1024);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  const url = role === 'worker' ? undefined : `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive(child))
      throw new Error(`timehook serve --role ${role} exited before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`timehook serve --role ${role} was not ready within ${timeoutMs} ms:\n${output}`);
    }
    if (url) {
      const ready = await request(`${url}/readyz`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
        .then(async (r) => (await r.body.dump(), r.statusCode === 200))
        .catch(() => false);
      if (ready) break;
    } else if ((await countBackendsSince(store, spawnedAt)) > 0) {
      // The worker has opened its store; give it a moment to finish starting its loops.
      await sleep(500);
      break;
    }
    await sleep(100);
  }
  const pid = child.pid!;
  return {
    role,
    child,
    pid,
    url,
    output: () => output,
    cpuSeconds: () => cpuSeconds(pid),
    mainThreadCpuSeconds: () => mainThreadCpuSeconds(pid),
    rssBytes: () => memoryBytes(pid, 'VmRSS'),
    peakRssBytes: () => memoryBytes(pid, 'VmHWM'),
    profileDir: options.profileDir,
    async stop(graceMs = 30_000) {
      if (alive(child)) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Connections to the store's database opened since `since` (a starting worker opens its own). */
async function countBackendsSince(store: BenchStore, since: Date): Promise<number> {
  const rows = await adminQuery<{ n: number }>(
    store.pg!.adminUrl,
    'select count(*)::int as n from pg_stat_activity where datname = $1 and backend_start >= $2',
    [store.pg!.database, since],
  );
  return rows[0]?.n ?? 0;
}
