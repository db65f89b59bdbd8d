// Runs the real `timehook` command as child processes: one-shot CLI calls and long-running servers.
// Each test gets its own store: a temp DATA_DIR, or — when DATABASE_URL is set — a fresh database.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const BIN = fileURLToPath(new URL('../../bin/timehook.js', import.meta.url));

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

/** Starts `timehook serve` on a free port and resolves once it listens. */
export function startServerProcess(
  env: Record<string, string>,
  args: string[] = [],
  timeoutMs = 60_000,
): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', ...args], {
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
