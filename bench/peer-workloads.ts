// The workloads of issue 22 that put Timehook beside its peers (bench/peers/): workload 2 run by each peer,
// latency at 100 changes/s to 1 and to 10 webhooks (8), and order under failures (9). Same receivers, same
// ledger, same run; like workloads.ts, nothing here throws for a slow or wrong system, only for a broken harness.

import { randomBytes } from 'node:crypto';
import { checkLedger, percentiles, Written, type LedgerResult } from './ledger.ts';
import { PEER_NAMES, PeerProcess, redisAnswers } from './peers/process.ts';
import type { PathReport, PeerKind, PeerReady, PeerStats, PeerWebhook, PeerWritePlan } from './protocol.ts';
import { fmt, type CpuShare, type WorkloadResult } from './report.ts';
import {
  addShares,
  arrivalWindow,
  batchesOf,
  CpuMeter,
  createHooks,
  deleteHooks,
  deliveryFigures,
  ENTITY_BASE,
  find,
  figureOf,
  latencies,
  latencyWindows,
  range,
  reports,
  round,
  rounded,
  voidResult,
  waitForDeliveries,
  writeAll,
  writeSteady,
  type Bench,
  type DeliveryRun,
  type Hook,
  type Settings,
  type WriteStats,
} from './workloads.ts';

/** Restarts Timehook's service process with its run's environment plus `env`, and logs in again. */
export type Restart = (env?: Record<string, string>) => Promise<void>;

export type System = 'timehook' | PeerKind;

/** The suffix of a system's result id: "8" is Timehook's, "8g" the graphile-worker peer's, "8b" BullMQ's. */
const SUFFIX: Record<System, string> = { timehook: '', graphile: 'g', bullmq: 'b' };

export const LATENCY100_TARGET = 'p50 ≤ 3 ms, p99 ≤ the BullMQ peer’s and ≤ 10 ms (1 and 10 webhooks)';
export const ORDER_TARGET = '0 inversions';
export const PEER_THROUGHPUT_TARGET = 'Timehook (workload 2) ≥ 2 × this';

/** The receiver port in "flaky" mode in workload 9 (port 3, which no other workload of a run has then). */
const FLAKY_PORT = 3;

const newKey = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Why a peer cannot run on this machine now (undefined when it can). */
async function unavailable(bench: Bench, kind: PeerKind): Promise<string | undefined> {
  if (!bench.peers) return 'peers off (--no-peers)';
  if (kind === 'bullmq' && !(await redisAnswers(bench.peers.redisUrl))) {
    return `Redis at ${bench.peers.redisUrl} did not answer PING`;
  }
  return undefined;
}

function skippedPeer(bench: Bench, id: string, name: string, target: string, reason: string): WorkloadResult {
  return { id, name, store: bench.store.kind, status: 'skipped', headline: '—', target, reason, figures: {} };
}

// ------------------------------------------------------------------------------------------- one peer run

interface PeerRun {
  written: Written;
  writes: WriteStats & { maxLateMs: number };
  timedOut: string | undefined;
  paths: PathReport[];
  ledger: LedgerResult;
  cpu: CpuShare;
  phaseCpu: { writing: CpuShare; after: CpuShare };
  stats: PeerStats | undefined;
  info: PeerReady;
  failedFirstAttempts: number;
}

/**
 * Starts a peer sending to `hooks` (their ports in "flaky" mode when `flaky`), has its loader write `plan`
 * (each change to every hook), waits for every delivery, stops the peer and balances the ledger, per-entity
 * order counted rather than required.
 */
async function runPeer(
  bench: Bench,
  kind: PeerKind,
  hooks: Hook[],
  plan: Omit<PeerWritePlan, 'firstVersion'>,
  waitMs: number,
  flaky = false,
): Promise<PeerRun> {
  const receivers = [...new Set(hooks.map((h) => h.receiver))];
  await Promise.all(receivers.map((r) => r.reset()));
  const webhooks: PeerWebhook[] = hooks.map((h, i) => ({
    name: `w${i}`,
    url: h.receiver.url(h.port, h.path),
    key: newKey(),
  }));
  for (const receiver of receivers) {
    await receiver.setKeys(
      hooks.flatMap((h, i) =>
        h.receiver === receiver ? [[h.path, [webhooks[i]!.key]] as [string, string[]]] : [],
      ),
    );
  }
  if (flaky) for (const hook of hooks) await hook.receiver.setMode(hook.port, 'flaky');
  const peer = await PeerProcess.start(kind, bench.peers!, webhooks, bench.settings.peers);
  let stats: PeerStats | undefined;
  try {
    const meter = await CpuMeter.start(bench, {
      processes: [peer],
      pg: peer.pg,
      redisPid: peer.info.redisPid,
    });
    const deadline = Date.now() + waitMs;
    const result = await peer.write({ ...plan, firstVersion: 1 }, waitMs);
    const writingCpu = await meter.lap();
    const written = new Written();
    for (let i = 0; i < result.changes; i++) {
      written.add(result.entities[i]!, result.versions[i]!, {
        sentAt: result.sentAt[i]!,
        committedAt: result.committedAt[i]!,
      });
    }
    written.seal();
    const timedOut = await waitForDeliveries(
      bench,
      receivers,
      written.total * hooks.length,
      deadline,
      undefined,
      {
        child: peer.child,
        label: `the ${PEER_NAMES[kind]}'s process`,
      },
    );
    const afterCpu = await meter.stop();
    const counts = await Promise.all(receivers.map((r) => r.counts()));
    const paths = await reports(receivers, true);
    stats = await peer.close();
    const ledger = checkLedger(
      written,
      hooks.map((h) => h.path),
      paths,
      timedOut,
      { order: 'counted' },
    );
    return {
      written,
      writes: result,
      timedOut,
      paths,
      ledger,
      cpu: addShares(writingCpu, afterCpu),
      phaseCpu: { writing: writingCpu, after: afterCpu },
      stats,
      info: peer.info,
      failedFirstAttempts: counts.reduce((sum, c) => sum + c.failedFirstAttempts, 0),
    };
  } finally {
    if (!stats) await peer.close().catch(() => undefined);
    await Promise.all(receivers.map((r) => r.reset()));
  }
}

/** A peer row's own figures: which peer, its sender's attempts and failures, the Redis server's version. */
function peerFigures(kind: PeerKind, run: PeerRun) {
  return {
    peer: kind,
    attempts: run.stats?.attempts ?? null,
    failedAttempts: run.stats?.failedAttempts ?? null,
    firstFailure: run.stats?.firstFailure ?? null,
    ...(run.info.redisVersion ? { redisVersion: run.info.redisVersion } : {}),
  };
}

// ------------------------------------------------------------------------------ 2 — throughput, by the peers

/**
 * Workload 2's shape run by a peer: one webhook, `rounds` passes over `entities` in batches of `batch`,
 * `concurrency` inserts in flight → deliveries/s between first and last arrival, × the ceiling, and how many
 * times it Timehook's workload 2 was.
 */
export async function peerThroughput(bench: Bench, kind: PeerKind): Promise<WorkloadResult> {
  const s = bench.settings.throughput;
  const id = `2${SUFFIX[kind]}`;
  const name = `throughput, ${PEER_NAMES[kind]}`;
  const target = kind === 'graphile' ? PEER_THROUGHPUT_TARGET : 'reference';
  const why = await unavailable(bench, kind);
  if (why) return skippedPeer(bench, id, name, target, why);
  const hooks: Hook[] = [{ receiver: bench.receivers[0]!, port: 0, path: `/w${id}/0` }];
  const peerRun = await runPeer(
    bench,
    kind,
    hooks,
    {
      batches: batchesOf(range(ENTITY_BASE.throughput!, s.entities), s.rounds, s.batch),
      maxInFlight: s.concurrency,
    },
    bench.settings.waitMs,
  );
  const { firstAt, lastAt } = arrivalWindow(peerRun.paths);
  const rate = peerRun.ledger.received / ((lastAt - firstAt) / 1000);
  const run: DeliveryRun = {
    ledger: peerRun.ledger,
    paths: peerRun.paths,
    writes: peerRun.writes,
    firstAt,
    lastAt,
    deliveriesPerSecond: rate,
    cpu: peerRun.cpu,
    phaseCpu: peerRun.phaseCpu,
    phaseAttempts: { writing: undefined, after: undefined },
    timedOut: peerRun.timedOut,
    written: peerRun.written,
    duplicateDiagnosis: [],
  };
  const ceilingRate = figureOf(bench, '0', 'deliveriesPerSecond');
  const timehookRate = figureOf(bench, '2', 'deliveriesPerSecond');
  const ratio = ceilingRate ? rate / ceilingRate : undefined;
  const timehookTimes = timehookRate ? timehookRate / rate : undefined;
  const headline = `${fmt(rate)} deliveries/s${ratio === undefined ? '' : ` (${fmt(ratio, 2)} × ceiling)`}${timehookTimes === undefined ? '' : `; Timehook ${fmt(timehookTimes, 2)} × this`}`;
  const base = {
    id,
    name,
    store: bench.store.kind,
    target,
    figures: {
      ...deliveryFigures(run),
      ...peerFigures(kind, peerRun),
      concurrency: bench.settings.peers.concurrency,
      inversions: peerRun.ledger.inversions,
      ratioToCeiling: ratio === undefined ? null : round(ratio, 3),
      timehookDeliveriesPerSecond: timehookRate ?? null,
      timehookTimesThis: timehookTimes === undefined ? null : round(timehookTimes, 3),
    },
    cpu: peerRun.cpu,
  };
  if (!peerRun.ledger.balanced) return voidResult(base, peerRun.ledger, headline);
  const verdict =
    kind !== 'graphile' || timehookTimes === undefined ? 'measured' : timehookTimes >= 2 ? 'pass' : 'fail';
  return {
    ...base,
    status: verdict,
    headline,
    reason: [
      `${fmt(peerRun.ledger.received)} deliveries of ${fmt(s.entities * s.rounds)} changes over ${fmt(s.entities)} entities (inserts of ${fmt(s.batch)}, ${s.concurrency} in flight, an entity's next insert after its last one committed); ${peerRun.ledger.duplicates} duplicates, ${peerRun.ledger.inversions} inversions`,
      `the peer's process (loader and worker) counts as "service" in the CPU figures: ${Object.entries(
        base.figures.cpuMicrosPerDelivery,
      )
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ')} µs per delivery`,
      timehookTimes === undefined ? 'workload 2 (Timehook) did not run or was void' : '',
      ratio === undefined ? 'no ceiling to compare with' : '',
    ]
      .filter(Boolean)
      .join('; '),
    ledger: peerRun.ledger,
  };
}

// ------------------------------------------------------------------------- 8 — latency at 100 changes/s

/** One stream of workload 8 (one system, one count of webhooks). */
interface StreamRun {
  webhooks: number;
  written: Written;
  writes: WriteStats & { maxLateMs: number };
  paths: PathReport[];
  ledger: LedgerResult;
  cpu: CpuShare;
}

/** The (entity, round) batches of a steady stream: the writes writeSteady makes, as a list. */
function steadyBatches(entities: number[], s: Settings['latency100']): [number, number][][] {
  const total = Math.round((s.rate * s.seconds) / s.batch);
  return Array.from({ length: total }, (_, k) =>
    Array.from({ length: s.batch }, (_, j): [number, number] => {
      const n = k * s.batch + j;
      return [entities[n % entities.length]!, Math.floor(n / entities.length)];
    }),
  );
}

/**
 * The entities of the stream to `count` webhooks: a range of its own, since Timehook records no change for
 * an upsert that changes nothing (the same entity and round written again).
 */
const streamEntities = (bench: Bench, count: number) =>
  range(
    ENTITY_BASE.latency100! + bench.settings.latency100.webhookCounts.indexOf(count) * 100_000,
    bench.settings.latency100.entities,
  );

/** Timehook's stream to `count` webhooks, on a service process started just before (latency from its start). */
async function timehookStream(bench: Bench, count: number, restart: Restart): Promise<StreamRun> {
  const s = bench.settings.latency100;
  await restart();
  const receiver = bench.receivers[0]!;
  await receiver.reset();
  const hooks: Hook[] = range(0, count).map((i) => ({ receiver, port: i % 2, path: `/w8-${count}/${i}` }));
  try {
    await createHooks(bench, hooks);
    const meter = await CpuMeter.start(bench);
    const deadline = Date.now() + s.seconds * 1000 + bench.settings.waitMs;
    const written = new Written();
    const writes = await writeSteady(bench.api, written, streamEntities(bench, count), s);
    const timedOut = await waitForDeliveries(bench, [receiver], written.total * count, deadline);
    const cpu = await meter.stop();
    const paths = await reports([receiver], true);
    const ledger = checkLedger(
      written,
      hooks.map((h) => h.path),
      paths,
      timedOut,
    );
    return { webhooks: count, written, writes, paths, ledger, cpu };
  } finally {
    await deleteHooks(bench, hooks);
    await receiver.reset();
  }
}

async function peerStream(bench: Bench, kind: PeerKind, count: number): Promise<StreamRun> {
  const s = bench.settings.latency100;
  const receiver = bench.receivers[0]!;
  const hooks: Hook[] = range(0, count).map((i) => ({
    receiver,
    port: i % 2,
    path: `/w8${SUFFIX[kind]}-${count}/${i}`,
  }));
  const run = await runPeer(
    bench,
    kind,
    hooks,
    {
      batches: steadyBatches(streamEntities(bench, count), s),
      intervalMs: (s.batch / s.rate) * 1000,
      maxInFlight: s.maxInFlight,
    },
    s.seconds * 1000 + bench.settings.waitMs,
  );
  return { webhooks: count, ...run };
}

function streamFigures(run: StreamRun) {
  const fromCommit = rounded(percentiles(latencies(run.paths, run.written, 'committedAt')));
  const seconds = (run.writes.endedAt - run.writes.startedAt) / 1000;
  const lastAt = run.ledger.received > 0 ? arrivalWindow(run.paths).lastAt : undefined;
  return {
    webhooks: run.webhooks,
    commitToReceiptMs: fromCommit,
    requestStartToReceiptMs: rounded(percentiles(latencies(run.paths, run.written, 'sentAt'))),
    commitToReceiptByWindow: latencyWindows(run.paths, run.written, 1000),
    writtenChanges: run.writes.changes,
    achievedChangesPerSecond: round(run.writes.changes / seconds),
    writerMaxLateMs: round(run.writes.maxLateMs, 1),
    lastDeliveryAfterLastWriteMs: lastAt === undefined ? null : round(lastAt - run.writes.endedAt, 1),
    deliveries: run.ledger.received,
    duplicates: run.ledger.duplicates,
    inversions: run.ledger.inversions,
    ledgerBalanced: run.ledger.balanced,
    ledgerReasons: run.ledger.reasons,
    cpu: run.cpu,
  };
}

type StreamFigures = ReturnType<typeof streamFigures>;

const streamHeadline = (f: StreamFigures) =>
  `${f.webhooks} webhook${f.webhooks === 1 ? '' : 's'}: ${
    f.commitToReceiptMs
      ? `p50 ${fmt(f.commitToReceiptMs.p50, 1)} ms, p99 ${fmt(f.commitToReceiptMs.p99, 1)} ms`
      : 'no deliveries'
  }`;

/**
 * 8 — latency at 100 changes/s: a steady stream, one change per write, to 1 and then to 10 webhooks, each from a
 * fresh process of the system (Timehook's service, or a peer's), so the first seconds count → write-to-receipt
 * p50/p99 over every change. Timehook's write is POST /absences/batch (its answer is the commit); a peer's is
 * its job insert. Timehook's verdict needs the BullMQ peer's result of the same run (run that first).
 */
export async function latency100(bench: Bench, system: System, restart: Restart): Promise<WorkloadResult> {
  const s = bench.settings.latency100;
  const id = `8${SUFFIX[system]}`;
  const name = system === 'timehook' ? 'latency at 100 changes/s' : `latency at 100/s, ${PEER_NAMES[system]}`;
  const target = system === 'timehook' ? LATENCY100_TARGET : 'reference';
  if (system !== 'timehook') {
    const why = await unavailable(bench, system);
    if (why) return skippedPeer(bench, id, name, target, why);
  }
  const runs: StreamRun[] = [];
  for (const count of s.webhookCounts) {
    runs.push(
      system === 'timehook'
        ? await timehookStream(bench, count, restart)
        : await peerStream(bench, system, count),
    );
  }
  const streams = runs.map(streamFigures);
  const headline = streams.map(streamHeadline).join('; ');
  const unbalanced = runs.find((r) => !r.ledger.balanced);
  const base = {
    id,
    name,
    store: bench.store.kind,
    target,
    figures: {
      rate: s.rate,
      changesPerWrite: s.batch,
      seconds: s.seconds,
      ...(system === 'timehook' ? {} : { concurrency: bench.settings.peers.concurrency }),
      byWebhooks: Object.fromEntries(streams.map((f) => [String(f.webhooks), f])),
    },
    cpu: runs.map((r) => r.cpu).reduce(addShares),
  };
  const shape = `${fmt(s.rate)} changes/s, ${s.batch} per write, for ${s.seconds} s over ${fmt(s.entities)} entities, to ${s.webhookCounts.join(' and then to ')} webhooks, each stream on a fresh ${system === 'timehook' ? 'service process' : 'peer process'}; write = ${system === 'timehook' ? 'the POST /absences/batch answer' : 'the job insert returning'}`;
  const behind = streams
    .filter((f) => f.achievedChangesPerSecond < 0.9 * s.rate)
    .map((f) => `${f.webhooks} webhooks: only ${fmt(f.achievedChangesPerSecond)} changes/s written`);
  if (unbalanced) {
    return {
      ...voidResult(base, unbalanced.ledger, headline),
      reason: `${shape}; ${unbalanced.ledger.reasons.join('; ')}`,
    };
  }
  const ledger = runs.at(-1)!.ledger;
  const inversions = runs.reduce((sum, r) => sum + r.ledger.inversions, 0);
  if (system !== 'timehook') {
    return {
      ...base,
      status: 'measured',
      headline,
      reason: [shape, `${inversions} inversions`, ...behind].join('; '),
      ledger,
    };
  }
  const bull = find(bench, '8b');
  const bullStreams =
    bull?.status === 'measured'
      ? (bull.figures.byWebhooks as Record<string, StreamFigures> | undefined)
      : undefined;
  const checks = streams.map((f) => {
    const bullP99 = bullStreams?.[String(f.webhooks)]?.commitToReceiptMs?.p99;
    const q = f.commitToReceiptMs;
    const ok = q !== undefined && q.p50 <= 3 && q.p99 <= 10 && (bullP99 === undefined || q.p99 <= bullP99);
    return {
      ok,
      note:
        bullP99 === undefined
          ? ''
          : `${f.webhooks} webhook${f.webhooks === 1 ? '' : 's'}: BullMQ p99 ${fmt(bullP99, 1)} ms`,
    };
  });
  return {
    ...base,
    status: checks.every((c) => c.ok) ? 'pass' : 'fail',
    headline,
    reason: [
      shape,
      ...checks.map((c) => c.note).filter(Boolean),
      bullStreams ? '' : 'no BullMQ peer result in this run: p99 checked against 10 ms only',
      ...behind,
    ]
      .filter(Boolean)
      .join('; '),
    ledger,
  };
}

// ---------------------------------------------------------------------------- 9 — order under failures

/**
 * Groups of `batch` entities, each group written `rounds` times in a row (one batch per round): an entity's
 * changes follow each other a batch apart, so a retried one has later ones right behind it.
 */
function burstBatches(entities: number[], rounds: number, batch: number): [number, number][][] {
  const batches: [number, number][][] = [];
  for (let i = 0; i < entities.length; i += batch) {
    const group = entities.slice(i, i + batch);
    for (let r = 0; r < rounds; r++) batches.push(group.map((e): [number, number] => [e, r]));
  }
  return batches;
}

/**
 * 9 — order under failures: bursts of changes per entity to one webhook whose receiver answers 500 to the
 * first attempt of 1 % of its webhook-ids (bench/failures.ts), with short retry delays (Timehook's
 * TIMEHOOK_RETRY_SCHEDULE, BullMQ's backoff; graphile-worker's is fixed) → inversions: events delivered after a
 * later event of their entity. Timehook's ledger requires order (an inversion voids it); the peers' counts it.
 */
export async function orderUnderFailures(
  bench: Bench,
  system: System,
  restart: Restart,
): Promise<WorkloadResult> {
  const s = bench.settings.order;
  const id = `9${SUFFIX[system]}`;
  const name = system === 'timehook' ? 'order under failures' : `order under failures, ${PEER_NAMES[system]}`;
  const target = system === 'timehook' ? ORDER_TARGET : 'reference';
  if (system !== 'timehook') {
    const why = await unavailable(bench, system);
    if (why) return skippedPeer(bench, id, name, target, why);
  }
  const batches = burstBatches(range(ENTITY_BASE.order!, s.entities), s.rounds, s.batch);
  const receiver = bench.receivers[0]!;
  const hook: Hook = { receiver, port: FLAKY_PORT, path: `/w9${SUFFIX[system]}/0` };
  let ledger: LedgerResult;
  let failedFirstAttempts: number;
  let cpu: CpuShare;
  let extra: Record<string, unknown> = {};
  if (system === 'timehook') {
    await restart({ TIMEHOOK_RETRY_SCHEDULE: Array<string>(10).fill(s.retryDelay).join(',') });
    await receiver.reset();
    await receiver.setMode(FLAKY_PORT, 'flaky');
    try {
      await createHooks(bench, [hook]);
      const meter = await CpuMeter.start(bench);
      const deadline = Date.now() + bench.settings.waitMs;
      const written = new Written();
      await writeAll(bench.api, written, batches, s.concurrency, deadline);
      const timedOut = await waitForDeliveries(bench, [receiver], written.total, deadline);
      cpu = await meter.stop();
      failedFirstAttempts = (await receiver.counts()).failedFirstAttempts;
      ledger = checkLedger(written, [hook.path], await reports([receiver], false), timedOut);
      extra = { retrySchedule: `${s.retryDelay} repeated` };
    } finally {
      await deleteHooks(bench, [hook]);
      await receiver.reset();
    }
  } else {
    const run = await runPeer(
      bench,
      system,
      [hook],
      { batches, maxInFlight: s.concurrency },
      bench.settings.waitMs,
      true,
    );
    ({ ledger, failedFirstAttempts, cpu } = run);
    extra = {
      ...peerFigures(system, run),
      concurrency: bench.settings.peers.concurrency,
      backoff:
        system === 'bullmq'
          ? `exponential from ${bench.settings.peers.retryDelayMs} ms`
          : 'graphile-worker 0.16: exp(attempts) s, fixed in its SQL',
    };
  }
  const changes = s.entities * s.rounds;
  const headline = `${fmt(ledger.inversions)} inversions (${fmt(failedFirstAttempts)} first attempts failed)`;
  const base = {
    id,
    name,
    store: bench.store.kind,
    target,
    figures: {
      changes,
      entities: s.entities,
      changesPerEntity: s.rounds,
      inversions: ledger.inversions,
      orderViolations: ledger.orderViolations,
      failedFirstAttempts,
      deliveries: ledger.received,
      duplicates: ledger.duplicates,
      ...extra,
    },
    cpu,
  };
  const shape = `${fmt(changes)} changes: ${fmt(s.entities)} entities in groups of ${s.batch}, each group written ${s.rounds} times in a row (${s.concurrency} batches in flight), to one webhook whose receiver failed ${fmt(failedFirstAttempts)} first attempts; ${ledger.duplicates} duplicates`;
  if (!ledger.balanced)
    return { ...voidResult(base, ledger, headline), reason: `${shape}; ${ledger.reasons.join('; ')}` };
  return {
    ...base,
    status: system === 'timehook' ? (ledger.inversions === 0 ? 'pass' : 'fail') : 'measured',
    headline,
    reason: shape,
    ledger,
  };
}
