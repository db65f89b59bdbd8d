// The delivery worker of the `worker` and `all` roles: wires the engine (engine.ts) to the store, the undici
// sender, the notification channels and the Prometheus registry. start() resolves once the first leases are
// claimed; stop() lets attempts in flight finish and be recorded and releases the leases (SPEC §4).

import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { SecretBox } from '../security/secret-box.ts';
import { CHANGES_CHANNEL } from '../store/changes.ts';
import type { Db } from '../store/db.ts';
import {
  countWebhooksByStatus,
  DELIVERIES_CHANNEL,
  openDeliveryStats,
  WEBHOOKS_CHANNEL,
} from '../store/deliveries.ts';
import { Engine, type EngineObserver, type EngineOptions } from './engine.ts';
import { Sender, type AddressClassifier } from './sender.ts';

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The User-Agent of every delivery (SPEC §3). */
export const USER_AGENT = `Timehook/${PACKAGE.version}`;

export interface DeliveryWorkerDeps {
  db: Db;
  box: SecretBox;
  config: Config;
  logger: Logger;
  metrics: Registry;
  /** The destination rule applied to the address each connection goes to (net/destination-guard). */
  classifyAddress: AddressClassifier;
  /** Overrides of the engine's tuning (tests, benchmarks). */
  tuning?: Partial<EngineOptions>;
  now?: () => number;
  jitter?: () => number;
}

export interface DeliveryWorker {
  readonly workerId: string;
  stop(): Promise<void>;
}

function metric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** Per registry, the running engines whose events in memory its gauge adds up (tests run several). */
const inMemory = new WeakMap<Registry, Set<Engine>>();

/**
 * The engines counted by `registry`'s timehook_delivery_events_in_memory gauge, registered on first use; a
 * worker adds its engine when it starts and removes it when it stops.
 */
function eventsInMemoryGauge(registry: Registry): Set<Engine> {
  const known = inMemory.get(registry);
  if (known) return known;
  const counted = new Set<Engine>();
  inMemory.set(registry, counted);
  metric(
    registry,
    'timehook_delivery_events_in_memory',
    () =>
      new Gauge({
        name: 'timehook_delivery_events_in_memory',
        help: 'Events the worker holds in memory: the windows of its lanes.',
        registers: [registry],
        collect() {
          let events = 0;
          for (const d of counted) events += d.eventsInMemory;
          this.set(events);
        },
      }),
  );
  return counted;
}

/** The delivery metrics of SPEC §5 on `registry`; gauges are read from the store at scrape time. */
function deliveryMetrics(db: Db, registry: Registry, logger: Logger): EngineObserver {
  const attempts = metric(
    registry,
    'timehook_deliveries_total',
    () =>
      new Counter({
        name: 'timehook_deliveries_total',
        help: 'Delivery attempts by outcome: delivered (2xx), retry, gone (410), exhausted (schedule used up).',
        labelNames: ['outcome'],
        registers: [registry],
      }),
  );
  const latency = metric(
    registry,
    'timehook_delivery_latency_seconds',
    () =>
      new Histogram({
        name: 'timehook_delivery_latency_seconds',
        help: 'From the commit of a change to the 2xx acknowledgement of its event.',
        buckets: [
          0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600,
        ],
        registers: [registry],
      }),
  );
  const duration = metric(
    registry,
    'timehook_delivery_attempt_duration_seconds',
    () =>
      new Histogram({
        name: 'timehook_delivery_attempt_duration_seconds',
        help: 'Duration of one delivery attempt (request sent to answer read, or failure).',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30],
        registers: [registry],
      }),
  );

  // One store read per scrape feeds both per-webhook gauges: the first gauge reads, the second reuses it.
  let stats: Promise<Awaited<ReturnType<typeof openDeliveryStats>>> | undefined;
  let statsAt = 0;
  const readStats = (fresh: boolean) => {
    if (fresh || !stats || Date.now() - statsAt > 1_000) {
      statsAt = Date.now();
      stats = openDeliveryStats(db).catch((error: unknown) => {
        logger.warn({ err: error }, 'could not read delivery gauges');
        return [];
      });
    }
    return stats;
  };
  metric(
    registry,
    'timehook_webhook_pending_events',
    () =>
      new Gauge({
        name: 'timehook_webhook_pending_events',
        help: 'Events owed per enabled webhook: open (Pending or Failed) deliveries and changes not yet sent.',
        labelNames: ['webhook'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const s of await readStats(true)) this.set({ webhook: s.webhookId }, s.open);
        },
      }),
  );
  metric(
    registry,
    'timehook_webhook_oldest_pending_age_seconds',
    () =>
      new Gauge({
        name: 'timehook_webhook_oldest_pending_age_seconds',
        help: 'Age (since its commit) of the oldest event owed per enabled webhook.',
        labelNames: ['webhook'],
        registers: [registry],
        async collect() {
          this.reset();
          const now = Date.now();
          for (const s of await readStats(false)) {
            this.set({ webhook: s.webhookId }, Math.max(0, (now - s.oldestCommittedAt.getTime()) / 1000));
          }
        },
      }),
  );
  metric(
    registry,
    'timehook_webhooks',
    () =>
      new Gauge({
        name: 'timehook_webhooks',
        help: 'Webhooks (not deleted) by status and disabled reason.',
        labelNames: ['status', 'reason'],
        registers: [registry],
        async collect() {
          this.reset();
          try {
            for (const row of await countWebhooksByStatus(db)) {
              this.set({ status: row.status, reason: row.reason }, row.count);
            }
          } catch (error) {
            logger.warn({ err: error }, 'could not count webhooks by status');
          }
        },
      }),
  );

  // The counter's child per outcome, made on first use: inc() with a labels object hashes them on every call.
  const byOutcome = new Map<string, { inc(): void }>();
  return {
    attempt(outcome, durationMs, latencyMs) {
      let counter = byOutcome.get(outcome);
      if (!counter) {
        counter = attempts.labels(outcome);
        byOutcome.set(outcome, counter);
      }
      counter.inc();
      duration.observe(durationMs / 1000);
      if (latencyMs !== undefined) latency.observe(Math.max(0, latencyMs) / 1000);
    },
  };
}

/** Starts the delivery worker on `db`; resolves once it listens and holds its first leases. */
export async function startDeliveryWorker(deps: DeliveryWorkerDeps): Promise<DeliveryWorker> {
  const { db, box, config, logger } = deps;
  const sender = new Sender({
    timeoutMs: config.deliveryTimeoutMs,
    allowInsecure: config.allowInsecureDestinations,
    classifyAddress: deps.classifyAddress,
  });
  const engine = new Engine({
    db,
    send: (request) => sender.send(request),
    decryptKey: (sealed) => box.decrypt(sealed),
    logger,
    observer: deliveryMetrics(db, deps.metrics, logger),
    options: {
      retryScheduleMs: config.retryScheduleMs,
      maxInFlightPerWebhook: config.maxInFlightPerWebhook,
      leaseTtlMs: config.leaseTtlMs,
      deliveryTimeoutMs: config.deliveryTimeoutMs,
      userAgent: USER_AGENT,
      ...deps.tuning,
    },
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.jitter ? { jitter: deps.jitter } : {}),
  });
  const unlisten: (() => Promise<void>)[] = [];
  try {
    unlisten.push(await db.listen(CHANGES_CHANNEL, (payload) => engine.onChanges(payload)));
    unlisten.push(await db.listen(WEBHOOKS_CHANNEL, (payload) => engine.onWebhook(payload)));
    unlisten.push(await db.listen(DELIVERIES_CHANNEL, (payload) => engine.onRedelivery(payload)));
    await engine.start();
    eventsInMemoryGauge(deps.metrics).add(engine);
  } catch (error) {
    for (const u of unlisten) await u().catch(() => undefined);
    await sender.close();
    throw error;
  }
  logger.info({ workerId: engine.workerId, lanes: engine.laneKeys.length }, 'delivery worker started');

  let stopping: Promise<void> | undefined;
  return {
    workerId: engine.workerId,
    stop: () =>
      (stopping ??= (async () => {
        for (const u of unlisten) await u().catch(() => undefined);
        await engine.stop();
        eventsInMemoryGauge(deps.metrics).delete(engine);
        await sender.close();
        logger.info({ workerId: engine.workerId }, 'delivery worker stopped');
      })()),
  };
}
