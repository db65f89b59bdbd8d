// `npm run bench [-- --quick] [--store embedded|postgres|both] [--only 1,2,…] [--no-peers] [--cpu-prof] [--pg-url …]`
//
// Runs the real service as child processes on each store, loads it through the public API, measures the
// workloads of issue 5 against the same-run ceiling and those of issue 22 beside the peers (bench/peers/),
// balances a ledger for every delivery workload, and
// writes bench/results/<date>-<store>[-quick].json plus bench/results/latest.md. Progress goes to stderr;
// the Markdown table to stdout. Every wait is bounded, and every child process is killed on the way out.

import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Api } from './api.ts';
import { Receiver, runCleanups } from './children.ts';
import {
  latency100,
  LATENCY100_TARGET,
  ORDER_TARGET,
  orderUnderFailures,
  peerThroughput,
  type Restart,
} from './peer-workloads.ts';
import { summarizeProfile, type ProfileSummary } from './profile.ts';
import { fmt, machineInfo, markdown, versionInfo, type RunSummary, type WorkloadResult } from './report.ts';
import {
  adminQuery,
  buildService,
  createClient,
  createStore,
  startService,
  type StoreKind,
} from './service.ts';
import {
  backlog,
  ceiling,
  fanout,
  ingest,
  latency,
  probeDelivery,
  scaleOut,
  serviceEnv,
  settingsFor,
  startScaleOut,
  TENANT,
  throughput,
  type Bench,
  type Settings,
} from './workloads.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const NAMES: Record<number, string> = {
  1: 'ingest',
  2: 'throughput',
  3: 'fan-out',
  4: 'latency',
  5: 'isolation',
  6: 'backlog',
  7: 'scale-out',
  8: 'latency at 100 changes/s',
  9: 'order under failures',
};
const TARGETS: Record<number, (store: StoreKind) => string> = {
  1: (store) => (store === 'postgres' ? '≥ 50,000 changes/s' : '≥ 30,000 changes/s'),
  2: () => '≥ 0.5 × ceiling',
  3: () => '≥ 0.5 × workload 2',
  4: () => 'p50 ≤ 5 ms, p99 ≤ 25 ms',
  5: () => 'healthy p99 ≤ 1.2 × workload 4',
  6: () => 'peak RSS ≤ 300 MB; drain ≥ workload 2',
  7: () => 'two workers ≥ one, nothing lost or reordered',
  8: () => LATENCY100_TARGET,
  9: () => ORDER_TARGET,
};

/** PostgreSQL settings recorded with every run on PostgreSQL (they bear on its figures). */
const POSTGRES_SETTINGS = [
  'autovacuum',
  'fsync',
  'synchronous_commit',
  'shared_buffers',
  'wal_level',
  'max_wal_size',
  'checkpoint_timeout',
  'work_mem',
];

const USAGE = `Usage: npm run bench -- [--quick] [--store embedded|postgres|both] [--only 1,2,…] [--no-peers] [--cpu-prof] [--env K=V] [--node-flags "…"] [--pg-url <url>] [--redis-url <url>]
  --quick      small sizes, a few minutes in all
  --store      which store(s) to run on (default both)
  --only       workloads to run: 1 ingest, 2 throughput, 3 fan-out, 4 latency, 5 isolation, 6 backlog, 7 scale-out,
               8 latency at 100 changes/s, 9 order under failures
  --no-peers   leave out the peers (graphile-worker, BullMQ) that workloads 2, 8 and 9 otherwise run beside Timehook
  --cpu-prof   run the service with node --cpu-prof; profiles and a summary go to bench/results/profiles/
  --env        KEY=VALUE for the service (repeatable), for experiments; recorded with the results
  --latency-rate  changes/s of workloads 4 and 5 instead of 1,000 (quick: 200), to measure below saturation
  --node-flags "<flags>"  the service's Node.js flags instead of npm start's ("" for none), for experiments
  --pg-url     PostgreSQL to create the scratch databases on (default postgres://postgres@127.0.0.1:5432/postgres,
               or BENCH_DATABASE_URL); the graphile-worker peer's too, whatever the store
  --redis-url  the BullMQ peer's Redis (default redis://127.0.0.1:6379, or BENCH_REDIS_URL)`;

interface Options {
  quick: boolean;
  env: Record<string, string>;
  stores: StoreKind[];
  only: Set<number>;
  cpuProf: boolean;
  pgUrl: string;
  redisUrl: string;
  peers: boolean;
  latencyRate: number | undefined;
  /** --node-flags: the service's Node.js flags instead of npm start's (an experiment). */
  nodeFlags: string[] | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      store: { type: 'string', default: 'both' },
      only: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'pg-url': { type: 'string' },
      'redis-url': { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
      env: { type: 'string', multiple: true, default: [] },
      'latency-rate': { type: 'string' },
      'node-flags': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const stores: StoreKind[] =
    values.store === 'both' ? ['embedded', 'postgres'] : [values.store as StoreKind];
  if (!stores.every((s) => s === 'embedded' || s === 'postgres')) {
    throw new Error(`--store must be embedded, postgres or both, not ${values.store}`);
  }
  const only = new Set(
    values.only
      ? values.only.split(',').map((v) => {
          const n = Number(v.trim());
          if (!Number.isInteger(n) || n < 1 || n > 9)
            throw new Error(`--only takes workload numbers 1 to 9, not ${v}`);
          return n;
        })
      : [1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  const env: Record<string, string> = {};
  for (const pair of values.env) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!match) throw new Error(`--env takes KEY=VALUE, not ${pair}`);
    env[match[1]!] = match[2]!;
  }
  const latencyRate = values['latency-rate'] === undefined ? undefined : Number(values['latency-rate']);
  if (latencyRate !== undefined && !(Number.isInteger(latencyRate) && latencyRate >= 10)) {
    throw new Error(
      `--latency-rate takes a whole number of changes per second (10 or more), not ${values['latency-rate']}`,
    );
  }
  const nodeFlags = values['node-flags']?.split(/\s+/).filter((flag) => flag !== '');
  return {
    quick: values.quick,
    latencyRate,
    nodeFlags,
    env,
    stores,
    only,
    cpuProf: values['cpu-prof'],
    pgUrl:
      values['pg-url'] ?? process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: values['redis-url'] ?? process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    peers: !values['no-peers'],
  };
}

const log = (line: string) => process.stderr.write(`${line}\n`);

function skipped(id: number, store: StoreKind, reason: string): WorkloadResult {
  return {
    id: String(id),
    name: NAMES[id]!,
    store,
    status: 'skipped',
    headline: '—',
    target: TARGETS[id]!(store),
    reason,
    figures: {},
  };
}

function describe(r: WorkloadResult): string {
  return `[${r.store}] ${r.id} ${r.name}: ${r.headline} — ${r.status}${r.reason ? ` (${r.reason})` : ''}`;
}

/** Runs one workload; a harness error becomes an "error" result instead of ending the run. */
async function step(
  bench: Bench,
  id: number | string,
  fn: () => Promise<WorkloadResult>,
): Promise<WorkloadResult | undefined> {
  const started = Date.now();
  const n = parseInt(String(id), 10); // '4m' is a variant of workload 4
  log(`[${bench.store.kind}] ${id} ${NAMES[n] ?? 'ceiling'}…`);
  let result: WorkloadResult;
  try {
    result = await fn();
  } catch (error) {
    // The service's own account of a failed request: its error lines (it logs at warn and above here).
    const serviceErrors = [bench.server, ...bench.workers]
      .flatMap((p) => p.output().split('\n'))
      .filter((line) => /"level":(50|60)/.test(line))
      .slice(-5);
    result = {
      id: String(id),
      name: NAMES[n] ?? 'ceiling',
      store: bench.store.kind,
      status: 'error',
      headline: '—',
      target: TARGETS[n]?.(bench.store.kind) ?? 'reference',
      reason: (error as Error).message.split('\n')[0],
      figures: { error: (error as Error).stack, serviceErrors },
    };
    for (const line of serviceErrors) log(`  service: ${line.slice(0, 2000)}`);
  }
  result.figures.elapsedSeconds = Math.round((Date.now() - started) / 100) / 10;
  bench.results.push(result);
  log(describe(result));
  return result;
}

async function runStore(
  kind: StoreKind,
  options: Options,
  settings: Settings,
  receivers: Receiver[],
  stamp: string,
): Promise<{ results: WorkloadResult[]; profiles: ProfileSummary[] }> {
  const results: WorkloadResult[] = [];
  const profileDir = options.cpuProf ? join(RESULTS_DIR, 'profiles', `${stamp}-${kind}`) : undefined;
  const env = { ...serviceEnv(settings), ...options.env };
  log(`[${kind}] preparing the store, a client and the service…`);
  const store = await createStore(kind, options.pgUrl);
  let bench: Bench | undefined;
  try {
    const client = await createClient(store, TENANT);
    const server = await startService(store, 'all', { env, profileDir, nodeFlags: settings.nodeFlags });
    const api = new Api(server.url!);
    await api.login(TENANT, client.clientId, client.clientSecret);
    await api.seed();
    bench = {
      settings: { ...settings, cpuProfileDir: profileDir },
      store,
      client,
      server,
      workers: [],
      api,
      receivers,
      results,
      log,
      peers: options.peers ? { pgUrl: options.pgUrl, redisUrl: options.redisUrl } : undefined,
    };
    const b = bench;
    const relogin = async () => {
      await b.api.close();
      b.api = new Api(b.server.url!);
      await b.api.login(TENANT, client.clientId, client.clientSecret);
    };
    /** A fresh service process (role all) with the run's environment plus `extra`. */
    const restart: Restart = async (extra = {}) => {
      await b.server.stop();
      b.server = await startService(store, 'all', {
        env: { ...env, ...extra },
        profileDir,
        nodeFlags: settings.nodeFlags,
      });
      await relogin();
    };

    if (options.only.has(1)) await step(b, 1, () => ingest(b));

    const deliveryIds = [2, 3, 4, 5, 6, 7, 8, 9].filter((id) => options.only.has(id));
    if (deliveryIds.length === 0) return { results, profiles: [] };
    const probe = await probeDelivery(b);
    if (!probe.ok) {
      const reason = `no event reached the receiver within ${settings.probeMs / 1000} s of a committed change (probe webhook): the delivery engine does not deliver in this build`;
      log(`[${kind}] ${reason}`);
      for (const id of deliveryIds) results.push(skipped(id, kind, reason));
      return { results, profiles: [] };
    }
    const idle = [...probe.idleMs!].sort((x, y) => x - y);
    const idleMedian = idle[Math.floor(idle.length / 2)]!;
    log(
      `[${kind}] delivery probe: the first change arrived ${probe.firstMs!.toFixed(1)} ms after its commit; idle median ${idleMedian.toFixed(1)} ms`,
    );
    results.push({
      id: 'p',
      name: 'idle probe',
      store: kind,
      status: 'measured',
      headline: `${fmt(idleMedian, 1)} ms commit-to-receipt (median of ${idle.length})`,
      target: '—',
      reason: `single changes 200 ms apart to one webhook on an idle service (${idle.map((t) => fmt(t, 1)).join(', ')} ms); the webhook's first change took ${fmt(probe.firstMs!, 1)} ms, lease claim included`,
      figures: { idleMs: idle, idleMedianMs: idleMedian, firstMs: probe.firstMs },
    });
    if (options.only.has(2) || options.only.has(7)) await step(b, 0, () => ceiling(b));
    if (options.only.has(2)) await step(b, 2, () => throughput(b));
    if (options.only.has(2) && options.peers) {
      await step(b, '2g', () => peerThroughput(b, 'graphile'));
      await step(b, '2b', () => peerThroughput(b, 'bullmq'));
    }
    if (options.only.has(3)) await step(b, 3, () => fanout(b));
    const moderate = settings.latency.moderateRate !== undefined;
    if (options.only.has(4)) await step(b, 4, () => latency(b, false));
    if (options.only.has(4) && moderate) await step(b, '4m', () => latency(b, false, true));
    if (options.only.has(5)) await step(b, 5, () => latency(b, true));
    if (options.only.has(5) && moderate) await step(b, '5m', () => latency(b, true, true));
    // Peers first: Timehook's verdict compares with the BullMQ peer's p99. Each stream starts a fresh process.
    if (options.only.has(8) && options.peers) {
      await step(b, '8b', () => latency100(b, 'bullmq', restart));
      await step(b, '8g', () => latency100(b, 'graphile', restart));
    }
    if (options.only.has(8)) await step(b, 8, () => latency100(b, 'timehook', restart));
    // Timehook on a fresh process with a short retry schedule (the workloads after it restart the service).
    if (options.only.has(9)) await step(b, 9, () => orderUnderFailures(b, 'timehook', restart));
    if (options.only.has(9) && options.peers) {
      await step(b, '9g', () => orderUnderFailures(b, 'graphile', restart));
      await step(b, '9b', () => orderUnderFailures(b, 'bullmq', restart));
    }
    if (options.only.has(6)) {
      // A fresh process, so its VmHWM is this workload's peak; a uniform retry delay instead of 5s,5m,30m….
      await restart({ TIMEHOOK_RETRY_SCHEDULE: Array(1000).fill(settings.backlog.retryDelay).join(',') });
      await step(b, 6, () => backlog(b));
    }
    if (options.only.has(7)) {
      if (kind !== 'postgres')
        results.push(skipped(7, kind, 'PostgreSQL only: the embedded store is one process'));
      else {
        await step(b, 7, () =>
          scaleOut(b, async (roles) => {
            await startScaleOut(b, roles === 'api+1' ? 1 : 2, env);
            const probe2 = await probeDelivery(b);
            if (!probe2.ok)
              throw new Error(`nothing was delivered with serve --role api + ${roles.slice(4)} worker(s)`);
          }),
        );
      }
    }
    return { results, profiles: [] };
  } finally {
    if (bench) {
      await bench.api.close().catch(() => undefined);
      for (const p of [bench.server, ...bench.workers]) {
        const code = await p.stop();
        if (code !== 0)
          log(
            `[${kind}] ${p.role} process ended with ${String(code)}; its last output:\n${p.output().slice(-2000)}`,
          );
      }
    }
    await store.remove();
  }
}

function profileSummaries(dir: string): ProfileSummary[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => summarizeProfile(join(dir, f)));
  } catch {
    return [];
  }
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const settings = settingsFor(options.quick, undefined);
  if (options.latencyRate !== undefined) settings.latency.rate = options.latencyRate;
  if (options.nodeFlags !== undefined) settings.nodeFlags = options.nodeFlags;
  const started = Date.now();
  // A hard stop for the whole run, whatever happens inside it.
  const limitMs = options.quick ? 10 * 60_000 : 4 * 60 * 60_000;
  const watchdog = setTimeout(() => {
    log(`bench: the run exceeded ${limitMs / 60_000} minutes; stopping.`);
    void runCleanups().finally(() => process.exit(1));
  }, limitMs);
  watchdog.unref();

  const date = new Date();
  const stamp = date
    .toISOString()
    .replace(/:/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const machine = machineInfo();
  const versions: RunSummary['versions'] = versionInfo();
  if (options.stores.includes('postgres')) {
    versions.postgres = (await adminQuery<{ version: string }>(options.pgUrl, 'select version()'))[0]
      ?.version;
    // The server is the machine's, with the machine's configuration: record what bears on the figures.
    const settingRows = await adminQuery<{ name: string; value: string }>(
      options.pgUrl,
      `select name, current_setting(name) as value from pg_settings
        where name = any($1::text[]) order by name`,
      [POSTGRES_SETTINGS],
    );
    versions.postgresSettings = Object.fromEntries(settingRows.map((r) => [r.name, r.value]));
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  log('bench: building the service (npm run build)…');
  await buildService();

  const fanoutReceivers = settings.fanout.receivers;
  const receivers: Receiver[] = [];
  for (let i = 0; i < Math.max(1, fanoutReceivers); i++) receivers.push(await Receiver.start(4));

  const all: WorkloadResult[] = [];
  try {
    for (const kind of options.stores) {
      let results: WorkloadResult[];
      try {
        ({ results } = await runStore(kind, options, settings, receivers, stamp));
      } catch (error) {
        log(`[${kind}] the run on this store stopped: ${(error as Error).stack}`);
        results = [
          {
            id: '-',
            name: 'setup',
            store: kind,
            status: 'error',
            headline: '—',
            target: '—',
            reason: (error as Error).message.split('\n')[0],
            figures: { error: (error as Error).stack },
          },
        ];
      }
      const profiles = options.cpuProf
        ? profileSummaries(join(RESULTS_DIR, 'profiles', `${stamp}-${kind}`))
        : [];
      for (const p of profiles) {
        // The tsx loader thread writes a profile too; it is idle and says nothing about the service.
        if (p.busyMs < 0.05 * p.totalMs) continue;
        log(`[${kind}] CPU profile ${p.file}: ${fmt(p.busyMs)} ms busy of ${fmt(p.totalMs)} ms; by module:`);
        for (const m of p.topModules.slice(0, 10)) log(`    ${fmt(m.percent, 1).padStart(5)} %  ${m.module}`);
        log('  by function:');
        for (const f of p.topFunctions.slice(0, 15)) log(`    ${fmt(f.percent, 1).padStart(5)} %  ${f.name}`);
      }
      all.push(...results);
      const file = join(RESULTS_DIR, `${stamp}-${kind}${options.quick ? '-quick' : ''}.json`);
      writeFileSync(
        file,
        `${JSON.stringify(
          {
            benchmark: 'timehook',
            issue: 5,
            date: date.toISOString(),
            mode: options.quick ? 'quick' : 'full',
            store: kind,
            machine,
            versions:
              kind === 'postgres'
                ? versions
                : { ...versions, postgres: undefined, postgresSettings: undefined },
            settings: {
              ...settings,
              service: { ...serviceEnv(settings), ...options.env },
              experimentEnv: options.env,
              workloads: [...options.only],
            },
            results,
            profiles,
            elapsedSeconds: Math.round((Date.now() - started) / 1000),
          },
          null,
          2,
        )}\n`,
      );
      log(`[${kind}] results written to ${file}`);
    }
  } finally {
    for (const r of receivers) r.stop();
    await runCleanups();
  }
  const table = markdown({
    date: date.toISOString(),
    mode: options.quick ? 'quick' : 'full',
    machine: { ...machine, loadAverage: machine.loadAverage },
    versions,
    results: all,
    serviceNodeFlags: settings.nodeFlags,
    experimentNodeFlags: options.nodeFlags !== undefined,
    experimentEnv: options.env,
  });
  writeFileSync(join(RESULTS_DIR, 'latest.md'), table);
  process.stdout.write(`\n${table}`);
  log(`bench: done in ${fmt((Date.now() - started) / 1000, 1)} s`);
  return all.some((r) => r.status === 'error') ? 1 : 0;
}

process.exitCode = await main().catch(async (error: Error) => {
  log(`bench: ${error.stack ?? error.message}`);
  await runCleanups();
  return 1;
});
