// Where a run happened and what it found: the machine, the versions, the commit, and the results as JSON and
// as a Markdown table for the README.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { LedgerResult } from './ledger.ts';
import type { StoreKind } from './service.ts';

export type Status = 'pass' | 'fail' | 'void' | 'skipped' | 'error' | 'measured';

export interface WorkloadResult {
  /** "0" is the ceiling; "1".."7" the workloads of issue 5. */
  id: string;
  name: string;
  store: StoreKind;
  status: Status;
  /** The figure in one line, e.g. "41,230 deliveries/s (0.62 × ceiling)". */
  headline: string;
  target: string;
  /** Why the run is void, skipped or failed (or a note). */
  reason?: string;
  figures: Record<string, unknown>;
  ledger?: LedgerResult;
  /** CPU seconds used during the workload: the service, our other processes, and everything else. */
  cpu?: CpuShare;
}

export interface CpuShare {
  wallSeconds: number;
  serviceSeconds: number;
  /**
   * The PostgreSQL server on this machine, all its processes (backends, autovacuum, WAL writer, checkpointer,
   * exited ones included); only the bench database's backends when the server's processes cannot be read.
   * 0 on the embedded store.
   */
  postgresSeconds: number;
  /** The Redis server on this machine (the BullMQ peer's store); absent for the other systems. */
  redisSeconds?: number;
  benchSeconds: number;
  /**
   * The main threads of the service's processes (part of serviceSeconds): their event loops, which run the
   * API, the delivery engine and the sending. One event loop busy nearly all the wall time is the bottleneck.
   */
  serviceMainThreadSeconds?: number;
  /** Busy CPU seconds of the whole machine minus ours: other people's work on the shared cores. */
  otherSeconds: number;
  cores: number;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

export function machineInfo() {
  let model = cpus()[0]?.model;
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model;
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cores: cpus().length,
    model,
    memoryBytes: totalmem(),
    kernel: release(),
    loadAverage: loadavg(),
  };
}

export function versionInfo() {
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = (git(['status', '--porcelain']) ?? '').length > 0;
  return {
    node: process.version,
    timehook: readJson(`${ROOT}package.json`)?.version as string | undefined,
    pglite: readJson(`${ROOT}node_modules/@electric-sql/pglite/package.json`)?.version as string | undefined,
    undici: readJson(`${ROOT}node_modules/undici/package.json`)?.version as string | undefined,
    // The peers' (bench/peers/).
    graphileWorker: readJson(`${ROOT}node_modules/graphile-worker/package.json`)?.version as
      string | undefined,
    bullmq: readJson(`${ROOT}node_modules/bullmq/package.json`)?.version as string | undefined,
    ioredis: readJson(`${ROOT}node_modules/ioredis/package.json`)?.version as string | undefined,
    commit: commit ? `${commit}${dirty ? '-dirty' : ''}` : undefined,
  };
}

// ------------------------------------------------------------------------------------------ CPU accounting

/** Busy CPU seconds of the whole machine so far (all cores), from /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return (total - idle) / 100;
  } catch {
    return undefined;
  }
}

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export const mb = (bytes: number | undefined): string =>
  bytes === undefined ? '?' : `${fmt(bytes / 2 ** 20)} MB`;

// ---------------------------------------------------------------------------------------------- Markdown

const STATUS_MARK: Record<Status, string> = {
  pass: 'pass',
  fail: '**fail**',
  void: '**void**',
  skipped: 'skipped',
  error: '**error**',
  measured: 'measured',
};

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export interface RunSummary {
  date: string;
  mode: 'quick' | 'full';
  machine: ReturnType<typeof machineInfo>;
  versions: ReturnType<typeof versionInfo> & { postgres?: string; postgresSettings?: Record<string, string> };
  results: WorkloadResult[];
  /** The Node.js flags the service ran with (npm start's unless experimentNodeFlags). */
  serviceNodeFlags: string[];
  /** The flags came from --node-flags, not from npm start. */
  experimentNodeFlags: boolean;
  /** Service settings changed with --env (an experiment, not the standard run). */
  experimentEnv?: Record<string, string>;
}

export function markdown(run: RunSummary): string {
  const m = run.machine;
  const v = run.versions;
  const lines = [
    `Benchmark run ${run.date} (${run.mode}${run.mode === 'quick' ? ', small sizes' : ''}) on ${m.cores} × ${m.model ?? 'CPU'}, ` +
      `${fmt(m.memoryBytes / 2 ** 30, 1)} GiB; Node ${v.node}` +
      `${run.serviceNodeFlags.length > 0 ? ` (service flags ${run.serviceNodeFlags.join(' ')})` : ''}, PGlite ${v.pglite ?? '?'}` +
      `${v.postgres ? `, ${v.postgres.split(' on ')[0]}` : ''}` +
      (run.results.some((r) => /^\d[gb]$/.test(r.id))
        ? `; peers graphile-worker ${v.graphileWorker ?? '?'}, BullMQ ${v.bullmq ?? '?'} (ioredis ${v.ioredis ?? '?'})`
        : '') +
      `; commit ${v.commit ?? '?'}. ` +
      `Load average at start ${m.loadAverage.map((l) => l.toFixed(2)).join(' / ')}.` +
      (v.postgresSettings
        ? ` PostgreSQL settings: ${Object.entries(v.postgresSettings)
            .map(([name, value]) => `${name}=${value}`)
            .join(', ')}.`
        : ''),
    ...(run.experimentNodeFlags
      ? [
          '',
          `Experiment: the service ran with the Node.js flags ${JSON.stringify(run.serviceNodeFlags.join(' '))} instead of npm start's.`,
        ]
      : []),
    ...(run.experimentEnv && Object.keys(run.experimentEnv).length > 0
      ? [
          '',
          `Experiment: the service ran with ${Object.entries(run.experimentEnv)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')}.`,
        ]
      : []),
    '',
    '| # | workload | store | result | target | verdict | notes |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of run.results) {
    const notes = [
      r.reason,
      r.cpu && r.cpu.otherSeconds > 0.5 ? `other load ${fmt(r.cpu.otherSeconds, 1)} CPU-s` : '',
    ]
      .filter(Boolean)
      .join('; ');
    lines.push(
      `| ${r.id} | ${r.name} | ${r.store} | ${cell(r.headline)} | ${cell(r.target)} | ${STATUS_MARK[r.status]} | ${cell(notes)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
