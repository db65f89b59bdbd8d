// Child processes of the benchmark: a registry that kills every one of them when the run ends (normally, on
// an error or on SIGINT/SIGTERM), /proc readings (CPU time, RSS), and the parent side of the receiver and
// ceiling processes (the peers' is bench/peers/process.ts).

import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type {
  CeilingRequest,
  CeilingResult,
  ReceiverCounts,
  ReceiverMessage,
  ReceiverMode,
  ReceiverReply,
  ReceiverReport,
} from './protocol.ts';

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];

/** Keeps `child` in the registry until it exits; every registered child is killed when the run ends. */
export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

export function killAll(): void {
  for (const child of children) if (alive(child)) child.kill('SIGKILL');
}

/** Registers an async cleanup (drop a database, remove a directory) run by runCleanups. */
export function onCleanup(fn: () => Promise<void>): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export async function runCleanups(): Promise<void> {
  killAll();
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    await fn().catch((error: Error) => process.stderr.write(`bench: cleanup failed: ${error.message}\n`));
  }
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping children and cleaning up…\n`);
    void runCleanups().finally(() => process.exit(130));
  });
}

// ------------------------------------------------------------------------------------------ /proc readings

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds a process has used so far (undefined when it is gone). */
export function cpuSeconds(pid: number | undefined): number | undefined {
  const fields = pid === undefined ? undefined : statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / ticksPerSecond() : undefined;
}

/**
 * User + system CPU seconds of a process's main thread so far: for Node.js its event loop (the other threads
 * are V8's, libuv's and, on the embedded store, PGlite's). Undefined when it is gone.
 */
export function mainThreadCpuSeconds(pid: number | undefined): number | undefined {
  const fields = pid === undefined ? undefined : statFields(pid, `/proc/${pid}/task/${pid}/stat`);
  return fields ? (Number(fields[11]) + Number(fields[12])) / ticksPerSecond() : undefined;
}

/** The fields of /proc/<pid>/stat after the command name (the first is the state), or undefined when gone. */
function statFields(pid: number, path = `/proc/${pid}/stat`): string[] | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The parent of a process (undefined when it is gone). */
export function parentPid(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields ? Number(fields[1]) : undefined;
}

/**
 * CPU seconds so far of a process with its children: its own, its exited children's (the kernel adds them to
 * the parent's cutime and cstime once the parent has reaped them) and its live children's. For the PostgreSQL
 * postmaster that is the whole server: backends, autovacuum workers, WAL writer, checkpointer, including those
 * that came and went between two readings. Undefined when the process is gone.
 */
export function familyCpuSeconds(pid: number): number | undefined {
  const own = statFields(pid);
  if (!own) return undefined;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / ticksPerSecond();
}

/** A VmXXX line of /proc/<pid>/status in bytes (VmRSS now, VmHWM the peak so far). */
export function memoryBytes(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------------------- forked helpers

/** Forks one of the bench's TypeScript files (relative to this one) with an IPC channel, and tracks it. */
export function forkTs(file: string, args: string[]): ChildProcess {
  return track(
    fork(fileURLToPath(new URL(file, import.meta.url)), args, {
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** One receiver process (bench/receiver.ts) listening on `ports.length` ports of 127.0.0.1. */
export class Receiver {
  #nextId = 1;
  readonly #pending = new Map<number, (data: unknown) => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly ports: number[],
  ) {
    child.on('message', (message: ReceiverReply) => {
      if (message.t !== 'reply') return;
      this.#pending.get(message.id)?.(message.data);
      this.#pending.delete(message.id);
    });
  }

  static async start(portCount: number, timeoutMs = 30_000): Promise<Receiver> {
    const child = forkTs('./receiver.ts', [String(portCount)]);
    const ports = await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('receiver did not start')), timeoutMs);
      child.once('message', (message: ReceiverReply) => {
        clearTimeout(timer);
        if (message.t === 'ready') resolve(message.ports);
        else reject(new Error('receiver sent an unexpected first message'));
      });
      child.once('exit', (code) => reject(new Error(`receiver exited (${String(code)}) before it started`)));
    });
    return new Receiver(child, ports);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  url(portIndex: number, path: string): string {
    return `http://127.0.0.1:${this.ports[portIndex]!}${path}`;
  }

  #ask<T>(message: WithoutId<ReceiverMessage>, timeoutMs = 120_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      if (!alive(this.child)) {
        reject(new Error('the receiver process has exited'));
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`receiver did not answer ${message.t}`));
      }, timeoutMs);
      this.#pending.set(id, (data) => {
        clearTimeout(timer);
        resolve(data as T);
      });
      this.child.send({ ...message, id });
    });
  }

  setKeys(keys: [path: string, keys: string[]][]): Promise<void> {
    return this.#ask({ t: 'keys', keys });
  }

  setMode(portIndex: number, mode: ReceiverMode): Promise<void> {
    return this.#ask({ t: 'mode', port: this.ports[portIndex]!, mode });
  }

  counts(): Promise<ReceiverCounts> {
    return this.#ask({ t: 'counts' });
  }

  report(arrivals: boolean): Promise<ReceiverReport> {
    return this.#ask({ t: 'report', arrivals });
  }

  reset(): Promise<void> {
    return this.#ask({ t: 'reset' });
  }

  stop(): void {
    if (alive(this.child)) this.child.kill('SIGTERM');
  }
}

/** Runs one ceiling loop (bench/ceiling.ts) in its own process and returns what it measured. */
export async function runCeiling(job: CeilingRequest): Promise<CeilingResult & { cpuSeconds: number }> {
  const child = forkTs('./ceiling.ts', []);
  let cpu = 0;
  const sample = setInterval(() => (cpu = cpuSeconds(child.pid) ?? cpu), 200);
  try {
    const result = await new Promise<CeilingResult>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the ceiling run did not finish')),
        2 * job.deadlineMs + 30_000,
      );
      child.on('message', (message: { t: string; result?: CeilingResult; error?: string }) => {
        clearTimeout(timer);
        cpu = cpuSeconds(child.pid) ?? cpu;
        if (message.t === 'done') resolve(message.result!);
        else reject(new Error(message.error));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the ceiling process exited (${String(code)})`));
      });
      child.send(job);
    });
    return { ...result, cpuSeconds: cpu };
  } finally {
    clearInterval(sample);
    if (alive(child)) child.kill('SIGKILL');
  }
}
