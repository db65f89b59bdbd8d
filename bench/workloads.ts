// The workloads of issue 5 (and the ceiling they are measured against). Each one loads the service through
// its public API, waits for the receivers, balances the ledger and returns a WorkloadResult; none of them
// throws for a slow or wrong service (that is a result), only for a broken harness.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { Api } from './api.ts';
import { alive, cpuSeconds, familyCpuSeconds, parentPid, runCeiling, type Receiver } from './children.ts';
import { formatVersion } from './fixtures.ts';
import { checkLedger, percentiles, Written, type LedgerResult } from './ledger.ts';
import { composedRatio, neededRatio } from './model.ts';
import type { PathReport } from './protocol.ts';
import { fmt, machineBusySeconds, mb, type CpuShare, type WorkloadResult } from './report.ts';
import { adminQuery, startService, type BenchStore, type Client, type ServiceProcess } from './service.ts';
import type { PeerServers } from './peers/process.ts';
import { startNodeFlags } from './start-command.ts';

export interface Settings {
  quick: boolean;
  /** TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK of the service, and the ceiling's concurrency. */
  maxInFlight: number;
  deliveryTimeout: string;
  ceiling: { count: number; entities: number; repeats: number };
  ingest: { entities: number; rounds: number; batch: number; concurrency: number };
  throughput: { entities: number; rounds: number; batch: number; concurrency: number };
  fanout: { webhooks: number; entities: number; rounds: number; receivers: number; portsPerReceiver: number };
  latency: {
    rate: number;
    /**
     * Workloads 4 and 5 again at this rate ("4m", "5m"), below what the machine saturates at, so that the
     * latencies are the service's and not a queue's; no verdict. Undefined: not run (quick runs are below
     * saturation already).
     */
    moderateRate: number | undefined;
    seconds: number;
    webhooks: number;
    batch: number;
    entities: number;
    maxInFlight: number;
  };
  backlog: { entities: number; rounds: number; batch: number; concurrency: number; retryDelay: string };
  /**
   * The peers (bench/peers/): jobs run at once (graphile-worker's runner, each BullMQ Worker), attempts per
   * job, and BullMQ's backoff delay (exponential from it).
   */
  peers: { concurrency: number; maxAttempts: number; retryDelayMs: number };
  /**
   * Workload 8: a steady stream of `rate` changes/s, `batch` per write, for `seconds`, cycling over `entities`,
   * to each count of webhooks in turn, every system from a fresh process.
   */
  latency100: {
    rate: number;
    seconds: number;
    batch: number;
    entities: number;
    webhookCounts: number[];
    maxInFlight: number;
  };
  /**
   * Workload 9: `entities` in groups of `batch`, each group written `rounds` times in a row (one batch per
   * round, `concurrency` batches in flight) to one webhook whose receiver fails 1 % of first attempts;
   * Timehook retries after `retryDelay`, BullMQ after peers.retryDelayMs.
   */
  order: { entities: number; rounds: number; batch: number; concurrency: number; retryDelay: string };
  /**
   * Workload 7: TIMEHOOK_DELIVERY_PARTITIONS of every process, in both the one- and the two-worker run, so
   * both send a webhook of the same shape (one worker holds both partitions, or each worker holds one).
   */
  scaleOut: { partitions: number };
  /** Longest wait for deliveries in one workload, and how long without progress counts as stalled. */
  waitMs: number;
  stallMs: number;
  probeMs: number;
  cpuProfileDir: string | undefined;
  /** Node.js flags of every service process: npm start's (bench/start-command.ts), or --node-flags'. */
  nodeFlags: string[];
}

export function settingsFor(quick: boolean, cpuProfileDir: string | undefined): Settings {
  return quick
    ? {
        quick,
        maxInFlight: 16,
        deliveryTimeout: '2s',
        ceiling: { count: 5_000, entities: 500, repeats: 2 },
        ingest: { entities: 5_000, rounds: 2, batch: 1_000, concurrency: 2 },
        throughput: { entities: 500, rounds: 10, batch: 1_000, concurrency: 2 },
        fanout: { webhooks: 40, entities: 20, rounds: 5, receivers: 2, portsPerReceiver: 4 },
        latency: {
          rate: 200,
          moderateRate: undefined,
          seconds: 3,
          webhooks: 10,
          batch: 10,
          entities: 1_000,
          maxInFlight: 32,
        },
        backlog: { entities: 500, rounds: 20, batch: 1_000, concurrency: 2, retryDelay: '1s' },
        peers: { concurrency: 16, maxAttempts: 25, retryDelayMs: 200 },
        latency100: {
          rate: 100,
          seconds: 5,
          batch: 1,
          entities: 1_000,
          webhookCounts: [1, 10],
          maxInFlight: 32,
        },
        order: { entities: 400, rounds: 5, batch: 100, concurrency: 2, retryDelay: '200ms' },
        scaleOut: { partitions: 2 },
        waitMs: 60_000,
        stallMs: 10_000,
        probeMs: 5_000,
        cpuProfileDir,
        nodeFlags: startNodeFlags(),
      }
    : {
        quick,
        maxInFlight: 16,
        deliveryTimeout: '5s',
        ceiling: { count: 100_000, entities: 1_000, repeats: 3 },
        ingest: { entities: 20_000, rounds: 5, batch: 1_000, concurrency: 2 },
        throughput: { entities: 1_000, rounds: 100, batch: 1_000, concurrency: 2 },
        fanout: { webhooks: 200, entities: 100, rounds: 5, receivers: 2, portsPerReceiver: 4 },
        latency: {
          rate: 1_000,
          moderateRate: 200,
          seconds: 30,
          webhooks: 10,
          batch: 10,
          entities: 1_000,
          maxInFlight: 32,
        },
        backlog: { entities: 10_000, rounds: 100, batch: 1_000, concurrency: 2, retryDelay: '2s' },
        peers: { concurrency: 16, maxAttempts: 25, retryDelayMs: 200 },
        latency100: {
          rate: 100,
          seconds: 30,
          batch: 1,
          entities: 1_000,
          webhookCounts: [1, 10],
          maxInFlight: 32,
        },
        order: { entities: 4_000, rounds: 5, batch: 100, concurrency: 2, retryDelay: '200ms' },
        scaleOut: { partitions: 2 },
        waitMs: 20 * 60_000,
        stallMs: 120_000,
        probeMs: 10_000,
        cpuProfileDir,
        nodeFlags: startNodeFlags(),
      };
}

/** The service settings every workload runs with (the backlog adds a uniform retry delay). */
export function serviceEnv(settings: Settings): Record<string, string> {
  return {
    TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
    TIMEHOOK_MAX_WEBHOOKS_PER_TENANT: '1000',
    TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK: String(settings.maxInFlight),
    TIMEHOOK_DELIVERY_TIMEOUT: settings.deliveryTimeout,
  };
}

export const TENANT = 'bench';

/** Everything a workload needs on one store. */
export interface Bench {
  settings: Settings;
  store: BenchStore;
  client: Client;
  /** The process that answers the API (role all, or api in scale-out). */
  server: ServiceProcess;
  /** Worker processes (scale-out only). */
  workers: ServiceProcess[];
  api: Api;
  receivers: Receiver[];
  /** Results so far on this store (later workloads compare with earlier ones). */
  results: WorkloadResult[];
  log: (line: string) => void;
  /** Where the peers run (bench/peers/); undefined with --no-peers. */
  peers: PeerServers | undefined;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------- helpers

/**
 * The postmaster of a PostgreSQL server (the bench's, or a peer's scratch database's), as the parent of its checkpointer (a process that lives as
 * long as the server), when the server runs on this machine; undefined on the embedded store or for a server
 * elsewhere.
 */
async function postmasterPid(pgInfo: MeterTarget['pg']): Promise<number | undefined> {
  if (!pgInfo) return undefined;
  const rows = await adminQuery<{ pid: number }>(
    pgInfo.adminUrl,
    "select pid from pg_stat_activity where backend_type = 'checkpointer'",
  ).catch(() => []);
  const checkpointer = rows[0]?.pid;
  const parent = checkpointer === undefined ? undefined : parentPid(checkpointer);
  return parent !== undefined && parent > 1 ? parent : undefined;
}

/** Cumulative CPU seconds at one moment (epoch ms `wall`); the PostgreSQL server's per process. */
interface CpuReading {
  wall: number;
  service: number;
  serviceMain: number;
  bench: number;
  machine: number | undefined;
  redis: number | undefined;
  pg: Map<number, number>;
}

/** The processes a CPU meter counts as "the service": Timehook's by default, or a peer's. */
export interface MeterTarget {
  processes: { cpuSeconds(): number | undefined; mainThreadCpuSeconds(): number | undefined }[];
  /** The PostgreSQL database they use, when they use one (its server's CPU is metered). */
  pg: { adminUrl: string; database: string } | undefined;
  /** The Redis server they use, when it runs on this machine (its CPU is metered too). */
  redisPid?: number;
}

/**
 * CPU seconds spent during a workload by the service, by the PostgreSQL server, by the bench's own processes
 * (loader, receivers, ceiling), and by everything else on the machine.
 */
export class CpuMeter {
  #start!: CpuReading;
  /** The PostgreSQL postmaster, when the server runs on this machine (found at start). */
  #postmaster: number | undefined;

  private constructor(
    private readonly bench: Bench,
    private readonly target: MeterTarget,
  ) {}

  /** Starts metering; `target` is what counts as the service (default: Timehook's processes and store). */
  static async start(bench: Bench, target?: MeterTarget): Promise<CpuMeter> {
    const meter = new CpuMeter(
      bench,
      target ?? { processes: [bench.server, ...bench.workers], pg: bench.store.pg },
    );
    meter.#postmaster = await postmasterPid(meter.target.pg);
    meter.#start = await meter.#reading();
    return meter;
  }

  async #reading(): Promise<CpuReading> {
    return { wall: now(), ...this.#read(), pg: await this.#postgres() };
  }

  #read() {
    const b = this.bench;
    const processes = this.target.processes;
    const service = processes.reduce((sum, p) => sum + (p.cpuSeconds() ?? 0), 0);
    const serviceMain = processes.reduce((sum, p) => sum + (p.mainThreadCpuSeconds() ?? 0), 0);
    const own = process.cpuUsage();
    const receivers = b.receivers.reduce((sum, r) => sum + (cpuSeconds(r.pid) ?? 0), 0);
    return {
      service,
      serviceMain,
      bench: (own.user + own.system) / 1e6 + receivers,
      machine: machineBusySeconds(),
      redis: this.target.redisPid === undefined ? undefined : cpuSeconds(this.target.redisPid),
    };
  }

  /**
   * CPU seconds so far of the PostgreSQL server (pid → seconds): the postmaster with all its children, exited
   * ones included, when the server runs on this machine (its autovacuum, WAL writer and checkpointer work for
   * the bench too); else each backend connected to the bench database.
   */
  async #postgres(): Promise<Map<number, number>> {
    const pgInfo = this.target.pg;
    const out = new Map<number, number>();
    if (!pgInfo) return out;
    if (this.#postmaster !== undefined) {
      const cpu = familyCpuSeconds(this.#postmaster);
      if (cpu !== undefined) out.set(this.#postmaster, cpu);
      return out;
    }
    const rows = await adminQuery<{ pid: number }>(
      pgInfo.adminUrl,
      'select pid from pg_stat_activity where datname = $1',
      [pgInfo.database],
    ).catch(() => []);
    for (const { pid } of rows) {
      const cpu = cpuSeconds(pid);
      if (cpu !== undefined) out.set(pid, cpu);
    }
    return out;
  }

  /**
   * The share since the start (or the last lap), and a new lap from now: stop() for the first part of a
   * workload, the meter running on for the rest.
   */
  async lap(): Promise<CpuShare> {
    const end = await this.#reading();
    const share = this.#since(end, 0);
    this.#start = end;
    return share;
  }

  async stop(extraBenchSeconds = 0): Promise<CpuShare> {
    return this.#since(await this.#reading(), extraBenchSeconds);
  }

  #since(end: CpuReading, extraBenchSeconds: number): CpuShare {
    let postgres = 0;
    for (const [pid, cpu] of end.pg) postgres += cpu - (this.#start.pg.get(pid) ?? 0);
    const service = end.service - this.#start.service;
    const bench = end.bench - this.#start.bench + extraBenchSeconds;
    const machine =
      end.machine !== undefined && this.#start.machine !== undefined ? end.machine - this.#start.machine : 0;
    const redis =
      end.redis !== undefined && this.#start.redis !== undefined ? end.redis - this.#start.redis : undefined;
    return {
      wallSeconds: round((end.wall - this.#start.wall) / 1000, 2),
      serviceSeconds: round(service, 2),
      serviceMainThreadSeconds: round(end.serviceMain - this.#start.serviceMain, 2),
      postgresSeconds: round(postgres, 2),
      ...(redis === undefined ? {} : { redisSeconds: round(redis, 2) }),
      benchSeconds: round(bench, 2),
      otherSeconds: round(Math.max(0, machine - service - postgres - (redis ?? 0) - bench), 2),
      cores: cpus().length,
    };
  }
}

export const round = (n: number, digits = 0) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * The (entity, round) pairs of `rounds` passes over `entities`, cut into batches of at most `batch`. A batch
 * never spans two rounds, so no entity appears twice in one batch (the API refuses that).
 */
export function batchesOf(entities: number[], rounds: number, batch: number): [number, number][][] {
  const batches: [number, number][][] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < entities.length; i += batch) {
      batches.push(entities.slice(i, i + batch).map((e): [number, number] => [e, r]));
    }
  }
  return batches;
}

export const range = (base: number, count: number) => Array.from({ length: count }, (_, i) => base + i);

export interface WriteStats {
  startedAt: number;
  endedAt: number;
  batches: number;
  changes: number;
}

/** Writes every batch through POST /absences/batch, `concurrency` at a time, recording each version. */
export async function writeAll(
  api: Api,
  written: Written,
  batches: [number, number][][],
  concurrency: number,
  deadline: number,
  keepTimes = false,
): Promise<WriteStats> {
  const stats: WriteStats = { startedAt: now(), endedAt: 0, batches: 0, changes: 0 };
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      if (Date.now() > deadline) throw new Error(`writing took longer than the workload's limit`);
      const items = batches[next++]!;
      const write = await api.writeBatch(items);
      items.forEach(([entity], i) => written.add(entity, write.versions[i]!, keepTimes ? write : undefined));
      stats.batches++;
      stats.changes += items.length;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  stats.endedAt = now();
  written.seal();
  return stats;
}

/**
 * A steady stream: `rate` changes/s for `seconds`, as batches of `batch` on a fixed schedule (a late batch is
 * sent at once, at most `maxInFlight` requests open), cycling over `entities`. Keeps each version's times.
 */
export async function writeSteady(
  api: Api,
  written: Written,
  entities: number[],
  settings: Pick<Settings['latency'], 'rate' | 'seconds' | 'batch' | 'maxInFlight'>,
): Promise<WriteStats & { maxLateMs: number }> {
  const interval = (settings.batch / settings.rate) * 1000;
  const total = Math.round((settings.rate * settings.seconds) / settings.batch);
  const inFlight = new Set<Promise<void>>();
  const stats = { startedAt: now(), endedAt: 0, batches: 0, changes: 0, maxLateMs: 0 };
  let failure: Error | undefined;
  for (let k = 0; k < total && !failure; k++) {
    const due = stats.startedAt + k * interval;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    while (inFlight.size >= settings.maxInFlight) await Promise.race(inFlight);
    stats.maxLateMs = Math.max(stats.maxLateMs, now() - due);
    const items: [number, number][] = [];
    for (let j = 0; j < settings.batch; j++) {
      const n = k * settings.batch + j;
      items.push([entities[n % entities.length]!, Math.floor(n / entities.length)]);
    }
    const p: Promise<void> = api.writeBatch(items).then(
      (write) => {
        items.forEach(([entity], i) => written.add(entity, write.versions[i]!, write));
        stats.batches++;
        stats.changes += items.length;
      },
      (error: Error) => {
        failure ??= error;
      },
    );
    const tracked = p.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  stats.endedAt = now();
  written.seal();
  return stats;
}

export interface Hook {
  receiver: Receiver;
  port: number;
  path: string;
  id?: string;
}

export async function createHooks(bench: Bench, hooks: Hook[]): Promise<void> {
  let next = 0;
  const keys = new Map<Receiver, [string, string[]][]>();
  const worker = async () => {
    while (next < hooks.length) {
      const hook = hooks[next++]!;
      const created = await bench.api.createWebhook(hook.receiver.url(hook.port, hook.path));
      hook.id = created.id;
      const list = keys.get(hook.receiver) ?? [];
      list.push([hook.path, [created.key]]);
      keys.set(hook.receiver, list);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  for (const [receiver, list] of keys) await receiver.setKeys(list);
}

export async function deleteHooks(bench: Bench, hooks: Hook[]): Promise<void> {
  if (!alive(bench.server.child)) return;
  for (const hook of hooks) if (hook.id) await bench.api.deleteWebhook(hook.id).catch(() => undefined);
}

/**
 * Polls the receivers until `expected` first arrivals, the deadline, or no progress for `stallMs`. Returns
 * undefined when complete, else why it stopped waiting (also when `sender`, the service process by default,
 * exits).
 */
export async function waitForDeliveries(
  bench: Bench,
  receivers: Receiver[],
  expected: number,
  deadline: number,
  tick?: () => void,
  sender: { child: ChildProcess; label: string } = {
    child: bench.server.child,
    label: 'the service process',
  },
): Promise<string | undefined> {
  let last = -1;
  let lastProgress = Date.now();
  for (;;) {
    const counts = await Promise.all(receivers.map((r) => r.counts()));
    const firsts = counts.reduce((sum, c) => sum + c.firsts, 0);
    tick?.();
    if (firsts >= expected) return undefined;
    if (firsts !== last) {
      last = firsts;
      lastProgress = Date.now();
    }
    if (!alive(sender.child)) return `${sender.label} exited after ${firsts} of ${expected} deliveries`;
    if (Date.now() > deadline) return `timed out: ${firsts} of ${expected} deliveries arrived in time`;
    if (Date.now() - lastProgress > bench.settings.stallMs) {
      return `stalled: ${firsts} of ${expected} deliveries, none for ${bench.settings.stallMs / 1000} s`;
    }
    await sleep(100);
  }
}

export async function reports(receivers: Receiver[], arrivals: boolean): Promise<PathReport[]> {
  return (await Promise.all(receivers.map((r) => r.report(arrivals)))).flatMap((r) => r.paths);
}

export function arrivalWindow(paths: PathReport[]): { firstAt: number; lastAt: number } {
  const live = paths.filter((p) => p.firsts > 0);
  return {
    firstAt: Math.min(...live.map((p) => p.firstAt)),
    lastAt: Math.max(...live.map((p) => p.lastAt)),
  };
}

export function latencies(
  paths: PathReport[],
  written: Written,
  basis: 'committedAt' | 'sentAt',
): Float64Array {
  const times = written[basis];
  const out: number[] = [];
  for (const p of paths) {
    if (!p.versions || !p.times) continue;
    for (let i = 0; i < p.versions.length; i++) {
      const t = times.get(p.versions[i]!);
      if (t !== undefined) out.push(p.times[i]! - t);
    }
  }
  return Float64Array.from(out);
}

/**
 * Commit-to-receipt by second of commit time (from the first commit): shows whether a tail is a start-up
 * transient, a periodic stall or a queue that grows, which the whole run's percentiles cannot tell apart.
 */
export function latencyWindows(paths: PathReport[], written: Written, windowMs: number) {
  let first = Infinity;
  for (const t of written.committedAt.values()) first = Math.min(first, t);
  const windows: number[][] = [];
  for (const p of paths) {
    if (!p.versions || !p.times) continue;
    for (let i = 0; i < p.versions.length; i++) {
      const t = written.committedAt.get(p.versions[i]!);
      if (t === undefined) continue;
      (windows[Math.floor((t - first) / windowMs)] ??= []).push(p.times[i]! - t);
    }
  }
  return Array.from(windows, (values, i) => {
    const q = values && percentiles(Float64Array.from(values));
    return {
      fromSeconds: (i * windowMs) / 1000,
      ...(q && { count: q.count, p50: round(q.p50, 1), p99: round(q.p99, 1), max: round(q.max, 1) }),
    };
  });
}

export const rounded = (p: ReturnType<typeof percentiles>) =>
  p && {
    count: p.count,
    p50: round(p.p50, 2),
    p90: round(p.p90, 2),
    p99: round(p.p99, 2),
    max: round(p.max, 2),
    min: round(p.min, 2),
    mean: round(p.mean, 2),
  };

export function find(bench: Bench, id: string): WorkloadResult | undefined {
  return bench.results.find((r) => r.id === id && r.store === bench.store.kind);
}

/** A numeric figure of an earlier workload of this store, when that workload was measured (not void or skipped). */
export function figureOf(bench: Bench, id: string, figure: string): number | undefined {
  const r = find(bench, id);
  return r?.status === 'pass' || r?.status === 'fail' || r?.status === 'measured'
    ? (r.figures[figure] as number)
    : undefined;
}

export function voidResult(
  base: Omit<WorkloadResult, 'status' | 'headline'>,
  ledger: LedgerResult,
  headline: string,
): WorkloadResult {
  return { ...base, status: 'void', headline, reason: ledger.reasons.join('; '), ledger };
}

/** Entity ids of each workload live in their own range, so workloads never touch each other's absences. */
export const ENTITY_BASE: Record<string, number> = {
  ingest: 1_000_000,
  throughput: 2_000_000,
  fanout: 3_000_000,
  latency: 4_000_000,
  isolation: 5_000_000,
  backlog: 6_000_000,
  scale1: 7_000_000,
  scale1b: 7_250_000,
  scale2: 7_500_000,
  scale2b: 7_750_000,
  latency100: 8_000_000,
  order: 8_500_000,
  probe: 9_000_000,
};
let probeCount = 0;
const PROBE_IDLE_CHANGES = 5;

/**
 * Workloads 4 and 5: a stream whose last event arrives more than this after its last write was answered had
 * its deliveries queued behind the writes (40 × the p99 target), whatever rate the writes kept.
 */
const DELIVERY_BEHIND_MS = 1_000;

// ---------------------------------------------------------------------------------------------- workloads

/** 1 — ingest: POST /absences/batch of 1,000 absences per call → changes committed per second. */
export async function ingest(bench: Bench): Promise<WorkloadResult> {
  const s = bench.settings.ingest;
  const target = bench.store.kind === 'postgres' ? 50_000 : 30_000;
  const written = new Written();
  const meter = await CpuMeter.start(bench);
  const stats = await writeAll(
    bench.api,
    written,
    batchesOf(range(ENTITY_BASE.ingest!, s.entities), s.rounds, s.batch),
    s.concurrency,
    Date.now() + bench.settings.waitMs,
  );
  const cpu = await meter.stop();
  const seconds = (stats.endedAt - stats.startedAt) / 1000;
  const rate = stats.changes / seconds;
  return {
    id: '1',
    name: 'ingest',
    store: bench.store.kind,
    status: rate >= target ? 'pass' : 'fail',
    headline: `${fmt(rate)} changes/s`,
    target: `≥ ${fmt(target)} changes/s`,
    reason: `${fmt(stats.changes)} changes in ${stats.batches} batches of ${s.batch} (${s.rounds === 1 ? 'inserts' : `1 insert + ${s.rounds - 1} update rounds`}), ${s.concurrency} in flight; every batch recorded all its upserts; CPU µs per change: ${cpuSummary(cpuMicrosPer(cpu, stats.changes))}${eventLoopSummary(cpu)}; with no core idle, this CPU per change would allow ${fmt(cpuBoundRate(cpu, stats.changes))} changes/s`,
    figures: {
      changesPerSecond: round(rate),
      changes: stats.changes,
      batches: stats.batches,
      seconds: round(seconds, 3),
      serviceCpuMsPerChange: round((cpu.serviceSeconds * 1000) / stats.changes, 4),
      cpuMicrosPerChange: cpuMicrosPer(cpu, stats.changes),
      cpuBoundChangesPerSecond: cpuBoundRate(cpu, stats.changes),
      serviceEventLoopBusy: eventLoopBusy(cpu, 1) ?? null,
    },
    cpu,
  };
}

/**
 * The delivery probe: a new webhook and one change (proves that events flow at all; its latency includes
 * the lease claim of the new webhook), then PROBE_IDLE_CHANGES more changes to it 200 ms apart on the otherwise
 * idle service: their median commit-to-receipt is the idle latency.
 */
export async function probeDelivery(
  bench: Bench,
): Promise<{ ok: boolean; firstMs?: number; idleMs?: number[] }> {
  const receiver = bench.receivers[0]!;
  await receiver.reset();
  const hook: Hook = { receiver, port: 0, path: `/probe/${probeCount++}` };
  const written = new Written();
  const arrivals = async (count: number): Promise<Float64Array | undefined> => {
    const deadline = Date.now() + bench.settings.probeMs;
    while (Date.now() < deadline) {
      if ((await receiver.counts()).firsts >= count) {
        const paths = (await reports([receiver], true)).filter((p) => p.path === hook.path);
        return latencies(paths, written, 'committedAt');
      }
      await sleep(20);
    }
    return undefined;
  };
  try {
    await createHooks(bench, [hook]);
    const entity = ENTITY_BASE.probe! + probeCount * 100;
    let round = 0;
    const writeOne = async () => {
      const write = await bench.api.writeBatch([[entity, round++]]);
      written.add(entity, write.versions[0]!, write);
    };
    await writeOne();
    const first = await arrivals(1);
    if (!first) return { ok: false };
    const idle: number[] = [];
    for (let i = 0; i < PROBE_IDLE_CHANGES; i++) {
      await sleep(200);
      await writeOne();
      const all = await arrivals(2 + i);
      if (!all) return { ok: false };
      idle.push(all.at(-1)!);
    }
    return { ok: true, firstMs: first[0]!, idleMs: idle };
  } finally {
    await deleteHooks(bench, [hook]);
    await receiver.reset();
  }
}

/**
 * 0 — ceiling: the same receiver, body and concurrency, driven by a plain undici Pool loop. Run `repeats`
 * times; the best run is the ceiling (it is a maximum, and a shared machine only ever lowers it). Every run's
 * ledger must balance.
 */
export async function ceiling(bench: Bench): Promise<WorkloadResult> {
  const s = bench.settings.ceiling;
  const receiver = bench.receivers[0]!;
  const rates: number[] = [];
  let best:
    { rate: number; result: Awaited<ReturnType<typeof runCeiling>>; ledger: LedgerResult } | undefined;
  let failed:
    { rate: number; result: Awaited<ReturnType<typeof runCeiling>>; ledger: LedgerResult } | undefined;
  const meter = await CpuMeter.start(bench);
  let senderCpu = 0;
  /** The sender processes' CPU before their loops (loading the code), left out of the per-request figures. */
  let senderStartCpu = 0;
  const warmup = Math.min(5_000, Math.ceil(s.count / 5));
  /** Every request the meter saw, warm-ups included. */
  let requests = 0;
  for (let attempt = 0; attempt < s.repeats; attempt++) {
    await receiver.reset();
    const key = `whsec_${randomBytes(32).toString('base64')}`;
    await receiver.setKeys([['/ceiling/0', [key]]]);
    const result = await runCeiling({
      url: receiver.url(0, '/ceiling/0'),
      key,
      count: s.count,
      concurrency: bench.settings.maxInFlight,
      entities: s.entities,
      firstVersion: 1,
      deadlineMs: bench.settings.waitMs,
      warmup,
      warmupUrl: receiver.url(0, '/ceiling/warmup'),
    });
    senderCpu += result.cpuSeconds;
    senderStartCpu += result.cpuSeconds - result.loopCpuSeconds;
    requests += warmup + result.sent;
    const written = new Written();
    for (let i = 0; i < result.sent; i++) written.add(1 + (i % s.entities), 1 + i);
    written.seal();
    const ledger = checkLedger(written, ['/ceiling/0'], await reports([receiver], false));
    await receiver.reset();
    const rate = result.ok / ((result.endedAt - result.startedAt) / 1000);
    rates.push(round(rate));
    if (!ledger.balanced || result.errors > 0) failed ??= { rate, result, ledger };
    else if (!best || rate > best.rate) best = { rate, result, ledger };
  }
  const cpu = await meter.stop(senderCpu);
  const chosen = failed ?? best!;
  const { rate, result, ledger } = chosen;
  const base = {
    id: '0',
    name: 'ceiling (undici Pool + HMAC, no store)',
    store: bench.store.kind,
    target: 'reference',
    figures: {
      deliveriesPerSecond: round(rate),
      runs: rates,
      sent: result.sent,
      ok: result.ok,
      errors: result.errors,
      firstError: result.firstError,
      concurrency: bench.settings.maxInFlight,
      meanBodyBytes: round(result.bodyBytes / Math.max(result.sent, 1)),
      senderCpuSeconds: round(senderCpu, 2),
      cpuMicrosPerRequest: cpuMicrosPer(cpu, requests),
      clientAndReceiverMicrosPerRequest: round(
        ((cpu.benchSeconds - senderStartCpu) * 1e6) / Math.max(requests, 1),
      ),
    },
    cpu,
  };
  if (failed) {
    const reasons = [...ledger.reasons];
    if (result.errors > 0) reasons.push(`${result.errors} requests failed (${result.firstError})`);
    return {
      ...base,
      status: 'void',
      headline: `${fmt(rate)} deliveries/s`,
      reason: reasons.join('; '),
      ledger,
    };
  }
  return {
    ...base,
    status: 'measured',
    headline: `${fmt(rate)} deliveries/s`,
    reason: `after a warm-up, best of ${s.repeats} runs (${rates.map((r) => fmt(r)).join(', ')}/s) of ${fmt(result.ok)} signed POSTs of ~${fmt(base.figures.meanBodyBytes)} B, ${bench.settings.maxInFlight} in flight`,
    ledger,
  };
}

export interface DeliveryRun {
  ledger: LedgerResult;
  paths: PathReport[];
  writes: WriteStats;
  firstAt: number;
  lastAt: number;
  deliveriesPerSecond: number;
  cpu: CpuShare;
  /** The CPU while the loader wrote (from just before the first write to its last answer), and after. */
  phaseCpu: { writing: CpuShare; after: CpuShare };
  /** The service's delivery attempts that ended in each span, and their total duration (from /metrics). */
  phaseAttempts: { writing: AttemptTotals | undefined; after: AttemptTotals | undefined };
  timedOut: string | undefined;
  written: Written;
  duplicateDiagnosis: DuplicateDiagnosis[];
}

/**
 * The shape shared by workloads 2, 3 and 7: create the webhooks, write `rounds` passes over `entities`,
 * wait for every delivery, balance the ledger, delete the webhooks.
 */
async function deliveryRun(
  bench: Bench,
  hooks: Hook[],
  entities: number[],
  rounds: number,
  batch: number,
  concurrency: number,
): Promise<DeliveryRun> {
  const receivers = [...new Set(hooks.map((h) => h.receiver))];
  await Promise.all(receivers.map((r) => r.reset()));
  try {
    await createHooks(bench, hooks);
    const attempts0 = await attemptTotals(bench.api);
    const meter = await CpuMeter.start(bench);
    const deadline = Date.now() + bench.settings.waitMs;
    const written = new Written();
    const writes = await writeAll(
      bench.api,
      written,
      batchesOf(entities, rounds, batch),
      concurrency,
      deadline,
    );
    const writingCpu = await meter.lap();
    const attempts1 = await attemptTotals(bench.api);
    const timedOut = await waitForDeliveries(bench, receivers, written.total * hooks.length, deadline);
    const afterCpu = await meter.stop();
    const attempts2 = await attemptTotals(bench.api);
    const cpu = addShares(writingCpu, afterCpu);
    const paths = await reports(receivers, true);
    const ledger = checkLedger(
      written,
      hooks.map((h) => h.path),
      paths,
      timedOut,
    );
    const { firstAt, lastAt } = arrivalWindow(paths);
    const deliveriesPerSecond = ledger.received / ((lastAt - firstAt) / 1000);
    const duplicateDiagnosis = await diagnoseDuplicates(bench, hooks, ledger);
    return {
      ledger,
      paths,
      writes,
      firstAt,
      lastAt,
      deliveriesPerSecond,
      cpu,
      phaseCpu: { writing: writingCpu, after: afterCpu },
      phaseAttempts: { writing: difference(attempts0, attempts1), after: difference(attempts1, attempts2) },
      timedOut,
      written,
      duplicateDiagnosis,
    };
  } finally {
    await deleteHooks(bench, hooks);
    await Promise.all(receivers.map((r) => r.reset()));
  }
}

/**
 * Whether the delivery rate was set by the writes: the last delivery came within 10 % of the delivery
 * window after the last write, so the sender kept pace and the figure is a lower bound of what it can do.
 */
export function writeBound(run: DeliveryRun): boolean {
  return run.lastAt - run.writes.endedAt < 0.1 * (run.lastAt - run.firstAt);
}

/** How many deliveries first arrived after the loader's last write was answered. */
function arrivalsAfterLastWrite(run: DeliveryRun): number {
  let count = 0;
  for (const p of run.paths) {
    if (!p.times) continue;
    for (const t of p.times) if (t > run.writes.endedAt) count++;
  }
  return count;
}

/**
 * The deliveries that first arrived after the last write, and their rate from the last write to the last
 * arrival: the delivery path with no ingest sharing the cores. The whole-window rate also pays for the writes
 * (the service's and the store's CPU for ingest), which the ceiling does not. Undefined when fewer than a tenth
 * of the deliveries, or less than a second, came after the last write.
 */
function afterLastWrite(
  run: DeliveryRun,
  deliveries: number,
): { deliveries: number; seconds: number; deliveriesPerSecond: number } | undefined {
  const seconds = (run.lastAt - run.writes.endedAt) / 1000;
  if (seconds < 1 || deliveries < 0.1 * run.ledger.received) return undefined;
  return { deliveries, seconds: round(seconds, 3), deliveriesPerSecond: round(deliveries / seconds) };
}

export type AttemptTotals = { seconds: number; count: number };

const difference = (a: AttemptTotals | undefined, b: AttemptTotals | undefined): AttemptTotals | undefined =>
  a && b ? { seconds: b.seconds - a.seconds, count: b.count - a.count } : undefined;

/** Two CPU shares of consecutive spans of one workload, as one. */
export function addShares(a: CpuShare, b: CpuShare): CpuShare {
  const main =
    a.serviceMainThreadSeconds === undefined || b.serviceMainThreadSeconds === undefined
      ? undefined
      : round(a.serviceMainThreadSeconds + b.serviceMainThreadSeconds, 2);
  return {
    wallSeconds: round(a.wallSeconds + b.wallSeconds, 2),
    serviceSeconds: round(a.serviceSeconds + b.serviceSeconds, 2),
    ...(main === undefined ? {} : { serviceMainThreadSeconds: main }),
    postgresSeconds: round(a.postgresSeconds + b.postgresSeconds, 2),
    ...(a.redisSeconds === undefined && b.redisSeconds === undefined
      ? {}
      : { redisSeconds: round((a.redisSeconds ?? 0) + (b.redisSeconds ?? 0), 2) }),
    benchSeconds: round(a.benchSeconds + b.benchSeconds, 2),
    otherSeconds: round(a.otherSeconds + b.otherSeconds, 2),
    cores: a.cores,
  };
}

/**
 * One span of a delivery workload (while the loader wrote, or after its last write): its deliveries (first
 * arrivals) and their rate, and how many of the cores each party kept busy on average (CPU seconds / wall
 * seconds; the six add up to the core count). The "after" span ends when the bench saw the last delivery
 * (it polls every 100 ms), so its idle share includes up to that much of waiting.
 */
function phaseFigures(cpu: CpuShare, deliveries: number, attempts: AttemptTotals | undefined) {
  const wall = Math.max(cpu.wallSeconds, 1e-3);
  const cores = (seconds: number) => round(seconds / wall, 2);
  const busy = busySeconds(cpu);
  return {
    seconds: cpu.wallSeconds,
    deliveries,
    deliveriesPerSecond: round(deliveries / wall),
    busyShare: round(Math.min(1, busy / (wall * cpu.cores)), 3),
    cores: {
      service: cores(cpu.serviceSeconds),
      serviceMainThread:
        cpu.serviceMainThreadSeconds === undefined ? null : cores(cpu.serviceMainThreadSeconds),
      postgres: cores(cpu.postgresSeconds),
      ...(cpu.redisSeconds === undefined ? {} : { redis: cores(cpu.redisSeconds) }),
      bench: cores(cpu.benchSeconds),
      other: cores(cpu.otherSeconds),
      idle: cores(Math.max(0, wall * cpu.cores - busy)),
    },
    // Little's law: the attempts' total duration over the span's wall time is the mean number in flight.
    attempts:
      attempts && attempts.count > 0
        ? {
            count: attempts.count,
            meanMs: round((attempts.seconds * 1000) / attempts.count, 3),
            meanInFlight: round(attempts.seconds / wall, 1),
          }
        : null,
  };
}

/** Deliveries (first arrivals) up to the loader's last answer and after it, with the CPU of each span. */
function phases(run: DeliveryRun, after: number) {
  return {
    writing: phaseFigures(run.phaseCpu.writing, run.ledger.received - after, run.phaseAttempts.writing),
    afterLastWrite: phaseFigures(run.phaseCpu.after, after, run.phaseAttempts.after),
  };
}

/**
 * "while the loader wrote (3.9 s): 3,152 deliveries/s with the cores 90 % busy, in cores: service 0.73 (its
 * event loop 0.53), PostgreSQL 0.81, bench 0.26, other 0.00, idle 0.20".
 */
export function phaseSummary(label: string, phase: ReturnType<typeof phaseFigures>): string {
  const c = phase.cores;
  const main = c.serviceMainThread === null ? '' : ` (its event loop ${fmt(c.serviceMainThread, 2)})`;
  const a = phase.attempts;
  const inFlight = a
    ? `, ${fmt(a.meanInFlight, 1)} attempts in flight on average (${fmt(a.meanMs, 2)} ms each)`
    : '';
  const redis = c.redis === undefined ? '' : `, Redis ${fmt(c.redis, 2)}`;
  return `${label} (${fmt(phase.seconds, 1)} s): ${fmt(phase.deliveriesPerSecond)} deliveries/s with the cores ${fmt(phase.busyShare * 100)} % busy, in cores: service ${fmt(c.service, 2)}${main}, PostgreSQL ${fmt(c.postgres, 2)}${redis}, bench ${fmt(c.bench, 2)}, other ${fmt(c.other, 2)}, idle ${fmt(c.idle, 2)}${inFlight}`;
}

/**
 * The CPU seconds of a share that some party used: the service, PostgreSQL, Redis (the BullMQ peer's), the
 * bench and everything else.
 */
const busySeconds = (cpu: CpuShare): number =>
  cpu.serviceSeconds + cpu.postgresSeconds + (cpu.redisSeconds ?? 0) + cpu.benchSeconds + cpu.otherSeconds;

/**
 * CPU microseconds per unit of work (a delivery, a ceiling request) by whose they were: the service, the
 * PostgreSQL server, the bench (loader, receivers, ceiling client), everything else on the machine, and
 * what stayed idle of the cores over the wall time (and Redis, for the BullMQ peer). They add up to cores ×
 * wall time.
 */
function cpuMicrosPer(cpu: CpuShare, units: number) {
  const per = (seconds: number) => round((seconds * 1e6) / Math.max(units, 1));
  const busy = busySeconds(cpu);
  return {
    service: per(cpu.serviceSeconds),
    postgres: per(cpu.postgresSeconds),
    ...(cpu.redisSeconds === undefined ? {} : { redis: per(cpu.redisSeconds) }),
    bench: per(cpu.benchSeconds),
    other: per(cpu.otherSeconds),
    idle: per(Math.max(0, cpu.wallSeconds * cpu.cores - busy)),
  };
}

/**
 * The rate the measured CPU per unit would allow if no core stayed idle: units × cores / busy CPU seconds. Below a
 * target, the target needs less CPU per unit (the service's, the store's or the bench's own), not better use
 * of the cores.
 */
function cpuBoundRate(cpu: CpuShare, units: number): number {
  const busy = busySeconds(cpu);
  return busy > 0 ? round((units * cpu.cores) / busy) : 0;
}

/** The share of the wall time the service's main threads (event loops) were busy, per process. */
function eventLoopBusy(cpu: CpuShare, processes: number): number | undefined {
  return cpu.serviceMainThreadSeconds === undefined || cpu.wallSeconds <= 0
    ? undefined
    : round(cpu.serviceMainThreadSeconds / processes / cpu.wallSeconds, 3);
}

/** "; the service's event loop (main thread) was busy 93 % of the time" when it was read (one process). */
function eventLoopSummary(cpu: CpuShare, processes = 1): string {
  const busy = eventLoopBusy(cpu, processes);
  if (busy === undefined) return '';
  return processes === 1
    ? `; the service's event loop (main thread) was busy ${fmt(busy * 100)} % of the time`
    : `; the service's event loops (main threads) were busy ${fmt(busy * 100)} % of the time, on average over its ${processes} processes`;
}

/** "service 140, PostgreSQL 70, bench 75, other 10, idle 20" (µs). */
export function cpuSummary(micros: ReturnType<typeof cpuMicrosPer>): string {
  const redis = micros.redis === undefined ? '' : `, Redis ${fmt(micros.redis)}`;
  return `service ${fmt(micros.service)}, PostgreSQL ${fmt(micros.postgres)}${redis}, bench ${fmt(micros.bench)}, other ${fmt(micros.other)}, idle ${fmt(micros.idle)}`;
}

/** "; the ceiling's client and receiver used 95 per request" when the ceiling ran and recorded it. */
function ceilingCpu(ceil: WorkloadResult | undefined): string {
  const micros = ceil?.figures.clientAndReceiverMicrosPerRequest as number | undefined;
  return micros === undefined ? '' : `; the ceiling's client and receiver used ${fmt(micros)} per request`;
}

export function deliveryFigures(run: DeliveryRun) {
  const afterCount = arrivalsAfterLastWrite(run);
  const after = afterLastWrite(run, afterCount);
  return {
    deliveriesPerSecond: round(run.deliveriesPerSecond),
    boundBy: writeBound(run) ? 'writes' : 'delivery',
    deliveries: run.ledger.received,
    duplicates: run.ledger.duplicates,
    firstToLastSeconds: round((run.lastAt - run.firstAt) / 1000, 3),
    writeSeconds: round((run.writes.endedAt - run.writes.startedAt) / 1000, 3),
    writeToLastDeliverySeconds: round((run.lastAt - run.writes.startedAt) / 1000, 3),
    lastDeliveryAfterLastWriteSeconds: round((run.lastAt - run.writes.endedAt) / 1000, 3),
    ...(after ? { afterLastWrite: after } : {}),
    serviceCpuMsPerDelivery: round((run.cpu.serviceSeconds * 1000) / Math.max(run.ledger.received, 1), 4),
    cpuMicrosPerDelivery: cpuMicrosPer(run.cpu, run.ledger.received),
    cpuBoundDeliveriesPerSecond: cpuBoundRate(run.cpu, run.ledger.received),
    phases: phases(run, afterCount),
    ...(run.ledger.duplicates > 0
      ? { pathsWithDuplicates: run.ledger.pathsWithDuplicates, duplicateDiagnosis: run.duplicateDiagnosis }
      : {}),
  };
}

interface DuplicateDiagnosis {
  path: string;
  changeVersion: string;
  entity: number;
  /** How long after its first arrival the receiver got it again. */
  againAfterMs: number;
  /** The delivery log's rows for this change on this webhook, with their recorded attempts. */
  deliveries: {
    id: number;
    status: string;
    attempts: { at: string; statusCode?: number; error?: string }[];
  }[];
}

/**
 * For a few duplicates, what the service's own delivery log (§1.3, readable after delete) says: two delivery
 * rows for one change (fanned out twice), or one row whose attempts do or do not account for both sends.
 */
async function diagnoseDuplicates(
  bench: Bench,
  hooks: Hook[],
  ledger: LedgerResult,
): Promise<DuplicateDiagnosis[]> {
  const out: DuplicateDiagnosis[] = [];
  for (const sample of ledger.duplicateSamples.slice(0, 3)) {
    const hook = hooks.find((h) => h.path === sample.path);
    if (!hook?.id) continue;
    try {
      const version = formatVersion(sample.version);
      const filter = encodeURIComponent(`entityId eq ${sample.entity}`);
      const page = (await bench.api.expect(
        'GET',
        `/webhooks/${hook.id}/deliveries?filter=${filter}`,
        [200],
      )) as {
        value: { id: number; changeVersion: string }[];
      };
      const deliveries: DuplicateDiagnosis['deliveries'] = [];
      for (const row of page.value.filter((d) => d.changeVersion === version)) {
        const one = (await bench.api.expect('GET', `/webhooks/${hook.id}/deliveries/${row.id}`, [200])) as {
          id: number;
          status: string;
          attempts: { at: string; statusCode?: number; error?: string }[];
        };
        deliveries.push({
          id: one.id,
          status: one.status,
          attempts: one.attempts.map((a) => ({ at: a.at, statusCode: a.statusCode, error: a.error })),
        });
      }
      out.push({
        path: sample.path,
        changeVersion: version,
        entity: sample.entity,
        againAfterMs: sample.afterMs,
        deliveries,
      });
    } catch (error) {
      out.push({
        path: sample.path,
        changeVersion: formatVersion(sample.version),
        entity: sample.entity,
        againAfterMs: sample.afterMs,
        deliveries: [
          { id: 0, status: `could not read the delivery log: ${(error as Error).message}`, attempts: [] },
        ],
      });
    }
  }
  return out;
}

/** 2 — throughput: one webhook, rounds × entities changes → deliveries per second, ratio to the ceiling. */
export async function throughput(
  bench: Bench,
  id = '2',
  name = 'throughput',
  base = ENTITY_BASE.throughput!,
) {
  const s = bench.settings.throughput;
  const hooks: Hook[] = [{ receiver: bench.receivers[0]!, port: 0, path: `/w${id}-${base}/0` }];
  const run = await deliveryRun(bench, hooks, range(base, s.entities), s.rounds, s.batch, s.concurrency);
  const ceil = find(bench, '0');
  const ceilingRate = ceil?.status === 'measured' ? (ceil.figures.deliveriesPerSecond as number) : undefined;
  const ratio = ceilingRate ? run.deliveriesPerSecond / ceilingRate : undefined;
  const headline = `${fmt(run.deliveriesPerSecond)} deliveries/s${ratio === undefined ? '' : ` (${fmt(ratio, 2)} × ceiling)`}`;
  const figures = deliveryFigures(run);
  const after = figures.afterLastWrite;
  const afterRatio = after && ceilingRate ? after.deliveriesPerSecond / ceilingRate : undefined;
  const composition = id === '2' ? composeWithIngest(bench, ceilingRate, afterRatio) : undefined;
  const base2 = {
    id,
    name,
    store: bench.store.kind,
    target: '≥ 0.5 × ceiling',
    figures: {
      ...figures,
      ratioToCeiling: ratio === undefined ? null : round(ratio, 3),
      afterLastWriteRatioToCeiling: afterRatio === undefined ? null : round(afterRatio, 3),
      composition: composition ?? null,
      serviceEventLoopBusy: eventLoopBusy(run.cpu, 1 + bench.workers.length) ?? null,
    },
    cpu: run.cpu,
  };
  if (!run.ledger.balanced) return voidResult(base2, run.ledger, headline);
  return {
    ...base2,
    status: ratio === undefined ? 'measured' : ratio >= 0.5 ? 'pass' : 'fail',
    headline,
    reason: [
      `${fmt(run.ledger.received)} deliveries of ${fmt(s.entities * s.rounds)} changes over ${fmt(s.entities)} entities; ${run.ledger.duplicates} duplicates, order held`,
      writeBound(run)
        ? `write-bound: deliveries kept pace with the writes (last one ${fmt((run.lastAt - run.writes.endedAt) / 1000, 2)} s after the last write), so this is a lower bound`
        : '',
      after
        ? `after the last write (no ingest on the cores) ${fmt(after.deliveriesPerSecond)}/s${afterRatio === undefined ? '' : ` (${fmt(afterRatio, 2)} × ceiling)`}`
        : '',
      `CPU µs per delivery: ${cpuSummary(figures.cpuMicrosPerDelivery)}${ceilingCpu(ceil)}${eventLoopSummary(run.cpu, 1 + bench.workers.length)}`,
      `with no core idle, this CPU per delivery would allow ${fmt(figures.cpuBoundDeliveriesPerSecond)}/s${ceilingRate ? ` (${fmt(figures.cpuBoundDeliveriesPerSecond / ceilingRate, 2)} × ceiling)` : ''}`,
      composition ? compositionSummary(composition, ratio) : '',
      phaseSummary('while the loader wrote', figures.phases.writing),
      phaseSummary('after its last write', figures.phases.afterLastWrite),
      ratio === undefined ? 'no ceiling to compare with' : '',
    ]
      .filter(Boolean)
      .join('; '),
    ledger: run.ledger,
  } satisfies WorkloadResult;
}

/**
 * Workload 2 as ingest and delivery in series (bench/model.ts): workload 1's rate and the rate after the last
 * write, both as ratios to the ceiling, the ratio they compose to, and what each side would need for the target
 * with the other as measured. Undefined without workload 1 or a ceiling in this run.
 */
function composeWithIngest(bench: Bench, ceilingRate: number | undefined, afterRatio: number | undefined) {
  const ingestRate = figureOf(bench, '1', 'changesPerSecond');
  if (!ceilingRate || !ingestRate || afterRatio === undefined) return undefined;
  const ingest = ingestRate / ceilingRate;
  const needDelivery = neededRatio(0.5, ingest);
  const needIngest = neededRatio(0.5, afterRatio);
  return {
    ingestRatioToCeiling: round(ingest, 3),
    afterLastWriteRatioToCeiling: round(afterRatio, 3),
    predictedRatioToCeiling: round(composedRatio(ingest, afterRatio), 3),
    afterLastWriteNeeded: needDelivery === undefined ? null : round(needDelivery, 3),
    ingestNeeded: needIngest === undefined ? null : round(needIngest, 3),
  };
}

function compositionSummary(
  c: NonNullable<ReturnType<typeof composeWithIngest>>,
  measured: number | undefined,
) {
  const needs = [
    c.afterLastWriteNeeded === null
      ? ''
      : `delivery alone at ${fmt(c.afterLastWriteNeeded, 2)} × with this ingest`,
    c.ingestNeeded === null
      ? 'no ingest speed with this delivery alone'
      : `ingest at ${fmt(c.ingestNeeded, 2)} × with this delivery alone`,
  ].filter(Boolean);
  return `ingest alone (workload 1, ${fmt(c.ingestRatioToCeiling, 2)} × ceiling) and delivery alone (${fmt(c.afterLastWriteRatioToCeiling, 2)} ×) in series compose to ${fmt(c.predictedRatioToCeiling, 2)} ×${measured === undefined ? '' : ` (measured ${fmt(measured, 2)} ×)`}; 0.5 × needs ${needs.join(', or ')}`;
}

/** 3 — fan-out: many webhooks over several receiver origins × a few hundred changes → deliveries/s. */
export async function fanout(bench: Bench): Promise<WorkloadResult> {
  const s = bench.settings.fanout;
  const receivers = bench.receivers.slice(0, s.receivers);
  const hooks: Hook[] = range(0, s.webhooks).map((i) => ({
    receiver: receivers[i % receivers.length]!,
    port: Math.floor(i / receivers.length) % s.portsPerReceiver,
    path: `/w3/${i}`,
  }));
  const run = await deliveryRun(bench, hooks, range(ENTITY_BASE.fanout!, s.entities), s.rounds, 1_000, 1);
  const w2Rate = figureOf(bench, '2', 'deliveriesPerSecond');
  const ratio = w2Rate ? run.deliveriesPerSecond / w2Rate : undefined;
  const headline = `${fmt(run.deliveriesPerSecond)} deliveries/s${ratio === undefined ? '' : ` (${fmt(ratio, 2)} × workload 2)`}`;
  const base = {
    id: '3',
    name: 'fan-out',
    store: bench.store.kind,
    target: '≥ 0.5 × workload 2',
    figures: {
      ...deliveryFigures(run),
      webhooks: s.webhooks,
      origins: receivers.length * s.portsPerReceiver,
      ratioToWorkload2: ratio === undefined ? null : round(ratio, 3),
    },
    cpu: run.cpu,
  };
  if (!run.ledger.balanced) return voidResult(base, run.ledger, headline);
  return {
    ...base,
    status: ratio === undefined ? 'measured' : ratio >= 0.5 ? 'pass' : 'fail',
    headline,
    reason: `${s.webhooks} webhooks on ${receivers.length * s.portsPerReceiver} origins × ${fmt(s.entities * s.rounds)} changes; ${run.ledger.duplicates} duplicates, order held${ratio === undefined ? '; workload 2 did not run' : ''}`,
    ledger: run.ledger,
  };
}

/**
 * 4 and 5 — latency: a steady stream to `webhooks` healthy webhooks (two origins) → commit-to-receipt
 * percentiles; with `hang`, one more webhook whose endpoint never answers (isolation). With `moderate`, the
 * same at the moderate rate ("4m", "5m", compared with each other), reported without a verdict.
 */
export async function latency(bench: Bench, hang: boolean, moderate = false): Promise<WorkloadResult> {
  const s = moderate
    ? { ...bench.settings.latency, rate: bench.settings.latency.moderateRate! }
    : bench.settings.latency;
  const reference = moderate ? '4m' : '4';
  const id = hang ? `5${moderate ? 'm' : ''}` : reference;
  const receiver = bench.receivers[0]!;
  await receiver.reset();
  const hooks: Hook[] = range(0, s.webhooks).map((i) => ({ receiver, port: i % 2, path: `/w${id}/${i}` }));
  const hung: Hook[] = hang ? [{ receiver, port: 2, path: `/w${id}/hang` }] : [];
  if (hang) await receiver.setMode(2, 'hang');
  let result: WorkloadResult;
  try {
    await createHooks(bench, [...hooks, ...hung]);
    const meter = await CpuMeter.start(bench);
    const histogramBefore = await latencyHistogram(bench.api);
    const deadline = Date.now() + s.seconds * 1000 + bench.settings.waitMs;
    const written = new Written();
    const writes = await writeSteady(
      bench.api,
      written,
      range(hang ? ENTITY_BASE.isolation! : ENTITY_BASE.latency!, s.entities),
      s,
    );
    const timedOut = await waitForDeliveries(bench, [receiver], written.total * s.webhooks, deadline);
    const cpu = await meter.stop();
    const counts = await receiver.counts();
    const paths = (await reports([receiver], true)).filter((p) => !p.path.endsWith('/hang'));
    const ledger = checkLedger(
      written,
      hooks.map((h) => h.path),
      paths,
      timedOut,
    );
    const duplicateDiagnosis =
      ledger.duplicates > 0 ? await diagnoseDuplicates(bench, hooks, ledger) : undefined;
    const fromCommit = rounded(percentiles(latencies(paths, written, 'committedAt')));
    const fromSend = rounded(percentiles(latencies(paths, written, 'sentAt')));
    const serviceSide = histogramPercentiles(histogramBefore, await latencyHistogram(bench.api));
    const writeSeconds = (writes.endedAt - writes.startedAt) / 1000;
    const headline = fromCommit
      ? `p50 ${fmt(fromCommit.p50, 1)} ms, p99 ${fmt(fromCommit.p99, 1)} ms, max ${fmt(fromCommit.max)} ms`
      : 'no deliveries';
    const saturated = (achieved: number | undefined) => achieved !== undefined && achieved < 0.9 * s.rate;
    // The delivery side is behind when the last event arrives long after the last write was answered: then
    // every latency is queueing delay too, however fast the writes went in.
    const drainMs = fromCommit ? arrivalWindow(paths).lastAt - writes.endedAt : undefined;
    const deliveryBehind = (ms: number | undefined) => ms !== undefined && ms > DELIVERY_BEHIND_MS;
    const w4 = find(bench, reference);
    const w4p99 =
      hang && w4 && w4.status !== 'void' && w4.status !== 'error' && w4.status !== 'skipped'
        ? ((w4.figures.commitToReceiptMs as { p99: number } | undefined)?.p99 ?? undefined)
        : undefined;
    const ratio = hang && w4p99 && fromCommit ? fromCommit.p99 / w4p99 : undefined;
    const base = {
      id,
      name: `${hang ? 'isolation' : 'latency'}${moderate ? ` at ${fmt(s.rate)} changes/s` : ''}`,
      store: bench.store.kind,
      target: moderate
        ? 'none (below saturation)'
        : hang
          ? 'healthy p99 ≤ 1.2 × workload 4'
          : 'p50 ≤ 5 ms, p99 ≤ 25 ms',
      figures: {
        commitToReceiptMs: fromCommit,
        requestStartToReceiptMs: fromSend,
        commitToReceiptByWindow: latencyWindows(paths, written, 1000),
        serviceCommitToAckHistogram: serviceSide,
        writtenChanges: writes.changes,
        achievedChangesPerSecond: round(writes.changes / writeSeconds),
        lastDeliveryAfterLastWriteMs: drainMs === undefined ? null : round(drainMs, 1),
        writerMaxLateMs: round(writes.maxLateMs, 1),
        webhooks: s.webhooks,
        deliveries: ledger.received,
        duplicates: ledger.duplicates,
        ...(duplicateDiagnosis ? { duplicateDiagnosis } : {}),
        ...(hang
          ? {
              hungRequests: counts.hangs,
              deliveryTimeout: bench.settings.deliveryTimeout,
              workload4P99Ms: w4p99 ?? null,
              p99RatioToWorkload4: ratio === undefined ? null : round(ratio, 3),
            }
          : {}),
      },
      cpu,
    };
    const achieved = base.figures.achievedChangesPerSecond;
    const behind = saturated(achieved)
      ? `the service could not take the stream (${fmt(achieved)} of ${fmt(s.rate)} changes/s written)`
      : deliveryBehind(drainMs)
        ? `deliveries fell behind the stream (the last arrived ${fmt(drainMs! / 1000, 1)} s after the last write)`
        : '';
    if (!ledger.balanced) result = voidResult(base, ledger, headline);
    else if (hang) {
      const w4Achieved = (w4?.figures.achievedChangesPerSecond as number | undefined) ?? undefined;
      const w4Drain = (w4?.figures.lastDeliveryAfterLastWriteMs as number | null | undefined) ?? undefined;
      const w4Behind = saturated(w4Achieved) || deliveryBehind(w4Drain);
      // Under saturation both latencies are queueing delay: their ratio says nothing about isolation.
      const comparable = ratio !== undefined && !behind && !w4Behind;
      result = {
        ...base,
        status: moderate || !comparable ? 'measured' : ratio <= 1.2 ? 'pass' : 'fail',
        headline: `healthy ${headline}${ratio === undefined ? '' : ` (${fmt(ratio, 2)} × workload ${reference})`}`,
        reason: [
          `${s.webhooks} healthy webhooks + 1 that hangs (${counts.hangs} hung requests, timeout ${bench.settings.deliveryTimeout})`,
          ratio === undefined ? `workload ${reference} did not run` : '',
          behind,
          w4Behind ? `workload ${reference} was saturated too` : '',
          ratio !== undefined && !comparable
            ? 'no verdict: the comparison needs both streams at full rate'
            : '',
          moderate ? 'below saturation, no verdict; workload 5 holds the target' : '',
        ]
          .filter(Boolean)
          .join('; '),
        ledger,
      };
    } else {
      const pass = fromCommit !== undefined && fromCommit.p50 <= 5 && fromCommit.p99 <= 25;
      result = {
        ...base,
        status: moderate ? 'measured' : pass ? 'pass' : 'fail',
        headline,
        reason: [
          `${fmt(writes.changes)} changes at ${fmt(achieved)}/s (batches of ${s.batch}, ≤ ${s.maxInFlight} in flight) to ${s.webhooks} webhooks; commit = the batch response at the loader`,
          behind,
          moderate ? 'below saturation, no verdict; workload 4 holds the target' : '',
        ]
          .filter(Boolean)
          .join('; '),
        ledger,
      };
    }
  } finally {
    await deleteHooks(bench, [...hooks, ...hung]);
    await receiver.reset();
  }
  return result;
}

/**
 * 6 — backlog: the receiver answers 503 while `rounds × entities` changes are written (all pending), then
 * comes up → peak RSS of the service process and the drain rate. Runs on a fresh service process (so VmHWM
 * is this workload's) with a short uniform retry delay, so the drain is not waiting on a 5-minute retry.
 */
export async function backlog(bench: Bench): Promise<WorkloadResult> {
  const s = bench.settings.backlog;
  const receiver = bench.receivers[0]!;
  await receiver.reset();
  const hook: Hook = { receiver, port: 3, path: '/w6/0' };
  await receiver.setMode(3, 'down');
  const rssAtStart = bench.server.rssBytes();
  let maxRss = 0;
  const sampleRss = () => (maxRss = Math.max(maxRss, bench.server.rssBytes() ?? 0));
  const sampler = setInterval(sampleRss, 250);
  try {
    await createHooks(bench, [hook]);
    const meter = await CpuMeter.start(bench);
    const deadline = Date.now() + bench.settings.waitMs;
    const written = new Written();
    const writes = await writeAll(
      bench.api,
      written,
      batchesOf(range(ENTITY_BASE.backlog!, s.entities), s.rounds, s.batch),
      s.concurrency,
      deadline,
    );
    const rssAfterWrites = bench.server.rssBytes();
    const downCounts = await receiver.counts();
    const pendingMetric = await pendingFromMetrics(bench.api);
    const upAt = now();
    await receiver.setMode(3, 'ok');
    const timedOut = await waitForDeliveries(bench, [receiver], written.total, deadline, sampleRss);
    const cpu = await meter.stop();
    sampleRss();
    const peak = bench.server.peakRssBytes();
    const paths = await reports([receiver], false);
    const ledger = checkLedger(written, [hook.path], paths, timedOut);
    const duplicateDiagnosis =
      ledger.duplicates > 0 ? await diagnoseDuplicates(bench, [hook], ledger) : undefined;
    const { lastAt } = arrivalWindow(paths);
    const drain = ledger.received / ((lastAt - upAt) / 1000);
    const w2Rate = figureOf(bench, '2', 'deliveriesPerSecond');
    const headline = `peak RSS ${mb(peak)} (idle ${mb(rssAtStart)}), drain ${fmt(drain)} deliveries/s${w2Rate ? ` (${fmt(drain / w2Rate, 2)} × workload 2)` : ''}`;
    const base = {
      id: '6',
      name: 'backlog',
      store: bench.store.kind,
      target: 'peak RSS ≤ 300 MB; drain ≥ workload 2',
      figures: {
        pendingChanges: written.total,
        peakRssBytes: peak,
        rssAtStartBytes: rssAtStart,
        maxSampledRssBytes: maxRss,
        rssAfterWritesBytes: rssAfterWrites,
        drainPerSecond: round(drain),
        drainSeconds: round((lastAt - upAt) / 1000, 3),
        writeSeconds: round((writes.endedAt - writes.startedAt) / 1000, 3),
        refusedWhileDown: downCounts.refused,
        pendingMetricAtUp: pendingMetric,
        retrySchedule: `${s.retryDelay} repeated`,
        workload2DeliveriesPerSecond: w2Rate ?? null,
        duplicates: ledger.duplicates,
        ...(duplicateDiagnosis ? { duplicateDiagnosis } : {}),
        serviceCpuMsPerDelivery: round((cpu.serviceSeconds * 1000) / Math.max(ledger.received, 1), 4),
      },
      cpu,
    };
    if (!ledger.balanced) return voidResult(base, ledger, headline);
    const rssOk = peak !== undefined && peak <= 300 * 2 ** 20;
    return {
      ...base,
      status:
        !rssOk || (w2Rate !== undefined && drain < w2Rate)
          ? 'fail'
          : w2Rate === undefined
            ? 'measured'
            : 'pass',
      headline,
      reason: `${fmt(written.total)} changes over ${fmt(s.entities)} entities written while the receiver answered 503 (${fmt(downCounts.refused)} refused attempts); ${ledger.duplicates} duplicates, order held`,
      ledger,
    };
  } finally {
    clearInterval(sampler);
    await deleteHooks(bench, [hook]);
    await receiver.reset();
  }
}

/** Cumulative counts of timehook_delivery_latency_seconds_bucket by upper bound (seconds), all series summed. */
async function latencyHistogram(api: Api): Promise<Map<number, number> | undefined> {
  try {
    const buckets = new Map<number, number>();
    for (const line of (await api.metrics()).split('\n')) {
      const match = /^timehook_delivery_latency_seconds_bucket\{(.*)\} (\S+)$/.exec(line);
      const le = match ? /le="([^"]+)"/.exec(match[1]!)?.[1] : undefined;
      if (!match || le === undefined) continue;
      const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + Number(match[2]));
    }
    return buckets.size > 0 ? buckets : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The service's timehook_delivery_attempt_duration_seconds so far, all series summed: the attempts' total
 * duration (seconds) and their count. Undefined when /metrics does not have it (the api process of workload 7,
 * whose workers keep their own metrics).
 */
async function attemptTotals(api: Api): Promise<AttemptTotals | undefined> {
  try {
    let seconds = 0;
    let count = 0;
    let seen = false;
    for (const line of (await api.metrics()).split('\n')) {
      const match = /^timehook_delivery_attempt_duration_seconds_(sum|count)(?:\{.*\})? (\S+)$/.exec(line);
      if (!match) continue;
      seen = true;
      if (match[1] === 'sum') seconds += Number(match[2]);
      else count += Number(match[2]);
    }
    return seen ? { seconds, count } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The service's own commit-to-acknowledgement latency over a workload (its committed_at, not our response
 * time): bucket upper bounds in ms under which 50 % and 99 % of the workload's acknowledgements fell.
 */
function histogramPercentiles(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
) {
  if (!before || !after) return null;
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const count = delta.at(-1) ?? 0;
  if (count <= 0) return null;
  const upper = (q: number) => {
    const i = delta.findIndex((c) => c >= q * count);
    const bound = bounds[i] ?? Number.POSITIVE_INFINITY;
    return Number.isFinite(bound) ? bound * 1000 : null;
  };
  return { count, p50AtMostMs: upper(0.5), p99AtMostMs: upper(0.99) };
}

/** The sum of any pending-deliveries gauge /metrics exposes (informational; undefined when there is none). */
async function pendingFromMetrics(api: Api): Promise<number | null> {
  try {
    const text = await api.metrics();
    let sum: number | null = null;
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || !/pending/i.test(line.split(/[{ ]/)[0] ?? '')) continue;
      if (/age|seconds/i.test(line.split(/[{ ]/)[0] ?? '')) continue;
      const value = Number(line.split(' ').at(-1));
      if (Number.isFinite(value)) sum = (sum ?? 0) + value;
    }
    return sum;
  } catch {
    return null;
  }
}

/** One run of workload 2 in the scale-out workload, and each worker's CPU seconds during it. */
interface ScaleRun {
  workers: 1 | 2;
  result: WorkloadResult;
  workerCpuSeconds: number[];
}

const afterRate = (r: WorkloadResult): number | undefined =>
  (r.figures.afterLastWrite as { deliveriesPerSecond: number } | undefined)?.deliveriesPerSecond;

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * 7 — scale-out (PostgreSQL): `serve --role api` plus one or two `serve --role worker` processes on the
 * throughput workload, in the order 1, 2, 2, 1 workers (so a machine whose speed drifts during the workload
 * favours neither), each run on entities of its own; every process has TIMEHOOK_DELIVERY_PARTITIONS =
 * settings.scaleOut.partitions (see startScaleOut), so the webhook of each run has that many partitions.
 * The verdict compares the mean rates; per-worker CPU shows whether the second worker took a share.
 */
export async function scaleOut(
  bench: Bench,
  restartAs: (roles: 'api+1' | 'api+2') => Promise<void>,
): Promise<WorkloadResult> {
  const order: [1 | 2, string, number][] = [
    [1, '7a', ENTITY_BASE.scale1!],
    [2, '7b', ENTITY_BASE.scale2!],
    [2, '7c', ENTITY_BASE.scale2b!],
    [1, '7d', ENTITY_BASE.scale1b!],
  ];
  const runs: ScaleRun[] = [];
  for (const [workers, id, base] of order) {
    await restartAs(workers === 1 ? 'api+1' : 'api+2');
    const before = bench.workers.map((w) => w.cpuSeconds() ?? 0);
    const result = await throughput(
      bench,
      id,
      `scale-out, ${workers} worker${workers === 1 ? '' : 's'}`,
      base,
    );
    const used = bench.workers.map((w, i) => round((w.cpuSeconds() ?? 0) - before[i]!, 2));
    runs.push({ workers, result, workerCpuSeconds: used });
  }
  const ones = runs.filter((r) => r.workers === 1);
  const twos = runs.filter((r) => r.workers === 2);
  const rates = (list: ScaleRun[]) => list.map((r) => r.result.figures.deliveriesPerSecond as number);
  const r1 = mean(rates(ones));
  const r2 = mean(rates(twos));
  const partitions = bench.settings.scaleOut.partitions;
  const shared = twos.every(
    (r) =>
      r.workerCpuSeconds.length === 2 &&
      Math.min(...r.workerCpuSeconds) > 0.25 * Math.max(...r.workerCpuSeconds),
  );
  const list = (values: number[]) => values.map((v) => fmt(v)).join(' and ');
  const headline = `1 worker ${fmt(r1)}/s, 2 workers ${fmt(r2)}/s (${fmt(r2 / r1, 2)} ×)`;
  const figures = (r: ScaleRun) => ({ ...r.result.figures, workerCpuSeconds: r.workerCpuSeconds });
  const base = {
    id: '7',
    name: 'scale-out',
    store: bench.store.kind,
    target: 'two workers ≥ one, nothing lost or reordered',
    figures: {
      partitions,
      order: runs.map((r) => r.workers),
      oneWorker: { deliveriesPerSecond: round(r1), runs: ones.map(figures) },
      twoWorkers: { deliveriesPerSecond: round(r2), runs: twos.map(figures) },
      ratio: round(r2 / r1, 3),
      secondWorkerTookAShare: shared,
    },
    cpu: twos[0]!.result.cpu,
  };
  const shape = `one webhook of ${partitions} partition${partitions === 1 ? '' : 's'} (TIMEHOOK_DELIVERY_PARTITIONS=${partitions} in every process, every run); runs in the order 1, 2, 2, 1 workers, means compared: 1 worker ${list(rates(ones))}/s, 2 workers ${list(rates(twos))}/s`;
  const after1 = ones.map((r) => afterRate(r.result));
  const after2 = twos.map((r) => afterRate(r.result));
  const afterNote = [...after1, ...after2].every((v) => v !== undefined)
    ? `; after the last write (no ingest on the cores) 1 worker ${fmt(mean(after1 as number[]))}/s, 2 workers ${fmt(mean(after2 as number[]))}/s (${fmt(mean(after2 as number[]) / mean(after1 as number[]), 2)} ×)`
    : '';
  const cpuNote = twos.map((r) => r.workerCpuSeconds.join(' and ')).join(', then ');
  const note = shared
    ? `${shape}; the two workers used ${cpuNote} CPU-s${afterNote}`
    : `${shape}; the work stayed on one worker (worker CPU ${cpuNote} s)${partitions === 1 ? ': one partition is one lease, held by one worker' : ': the second worker did not take a partition'}${afterNote}`;
  const voided = runs.filter((r) => r.result.status === 'void');
  if (voided.length > 0) {
    return {
      ...base,
      status: 'void',
      headline,
      reason: [shape, ...voided.map((r) => `${r.result.name}: ${r.result.reason}`)].join('; '),
      ledger: voided[0]!.result.ledger,
    };
  }
  // When the API's writes set every rate, the workers were never the bottleneck: no verdict on them.
  const allWriteBound = runs.every((r) => r.result.figures.boundBy === 'writes');
  return {
    ...base,
    status: allWriteBound ? 'measured' : r2 >= r1 ? 'pass' : 'fail',
    headline,
    reason: allWriteBound
      ? `${note}; no verdict: every run was write-bound (deliveries kept pace with the api process's writes)`
      : note,
    ledger: twos[0]!.result.ledger,
  };
}

/**
 * Starts the api role and `workers` worker processes (stopping whatever ran before), each with `env` plus
 * TIMEHOOK_DELIVERY_PARTITIONS of the scale-out settings: the api process creates the webhooks, so it needs
 * the setting; the workers get it too, so that every process of the run has the same environment.
 */
export async function startScaleOut(
  bench: Bench,
  workers: number,
  baseEnv: Record<string, string>,
): Promise<void> {
  const env = {
    ...baseEnv,
    TIMEHOOK_DELIVERY_PARTITIONS: String(bench.settings.scaleOut.partitions),
  };
  const profile = bench.settings.cpuProfileDir;
  if (bench.server.role !== 'api') {
    await bench.server.stop();
    bench.server = await startService(bench.store, 'api', {
      env,
      profileDir: profile,
      nodeFlags: bench.settings.nodeFlags,
    });
    await bench.api.close();
    bench.api = new Api(bench.server.url!);
    await bench.api.login(TENANT, bench.client.clientId, bench.client.clientSecret);
  }
  while (bench.workers.length > workers) await bench.workers.pop()!.stop();
  while (bench.workers.length < workers) {
    bench.workers.push(
      await startService(bench.store, 'worker', {
        env,
        profileDir: profile,
        nodeFlags: bench.settings.nodeFlags,
      }),
    );
  }
}
