// The delivery dispatcher: leases webhooks, wakes their runners on notifications, and batches bookkeeping.
// It knows nothing of SQL or HTTP: the store and the sender are handed in as functions (worker.ts wires the
// real ones), so tests can drive it with fakes.
//
// Design (SPEC §3, §4; issue 3):
//
// Source of truth. The change log. Each webhook has a cursor (webhooks.delivery_cursor, the last change
// version moved into deliveries; created_version at first). The worker that holds the webhook's lease moves
// new changes of its collection above the cursor into `deliveries` rows in one transaction, under the webhook
// row's lock, advancing the cursor in the same transaction (store syncDeliveries, which then loads). The event body
// ({"changeType","data"} plus requested externalReferences) is built there once and stored, so every retry
// sends identical bytes; webhook-id is msg_<webhook>_<changeVersion>, identical on every retry.
//
// Wake-ups. NOTIFY timehook_changes ("<tenant>:<version>", sent by appendChanges on commit) marks that
// tenant's runners dirty; timehook_webhooks (a trigger on webhooks: created, disabled, expired, deleted, key
// rotated) marks that webhook's runner dirty or claims a new webhook; timehook_deliveries (a redelivery)
// makes its runner load past its window's high-water mark. An empty payload (the pg listener reconnected)
// rescans everything. A backstop poll every few seconds marks every runner dirty, in case a notification was
// lost. The plain syncs the woken runners ask for in one turn of the event loop go to the store together
// (sync-batcher.ts, migration 000008): a few statements, at least two, not one per webhook.
//
// Leases. A worker claims partitions (below) of Enabled webhooks whose lease is free or expired (FOR UPDATE
// SKIP LOCKED), renews them every leaseTtl/3, and releases them on a graceful stop. Only a partition's holder
// sends its events, so it can keep per-entity FIFO queues in memory. A crashed worker's partitions are
// claimed by another worker after leaseTtlMs (at once on the embedded store, where the data-directory lock
// proves it is alone). A worker that cannot renew stops starting attempts once its local lease deadline has
// passed.
//
// Fair share (issue 4). With every lease round a worker heartbeats its row in `workers` and learns how many
// workers are live (seen within leaseTtlMs) and how many partitions of sendable webhooks there are; it claims
// at most ceil(partitions / workers) of them, so no worker holds more than the least possible maximum and the
// shares add up to every partition. When its share shrinks (a worker joined, webhooks were disabled) and the
// surplus is still there a lease round later (the slack that keeps a passing census from moving work), it hands
// the surplus over, least busy first: the runner stops starting attempts, its in-flight attempts finish
// and their records are written, and only then is the lease released (with a NOTIFY, so a worker below its
// share claims it at once). The next holder therefore finds every acknowledged event marked Delivered and
// sends nothing twice; only a takeover after a crash (or after losing the store for longer than a lease)
// can repeat an event.
//
// Partitions (migration 000007). The lease unit is a partition of a webhook: a webhook has 1 to 64, fixed at
// its creation, and an entity always belongs to the same one (entity id mod partitions), so per-entity order
// needs no coordination beyond the partition's lease. A worker runs one runner per partition it holds; each
// loads only its partition's open deliveries, any of them runs the webhook's fan-out, and the webhook's
// in-flight limit is divided among its partitions. Leases are keyed by leaseKey (the webhook id for
// partition 0), so a webhook of one partition behaves exactly as before partitions.
//
// Ordering (per webhook and entity id). Delivery ids grow in commit order per webhook (inserts take the
// webhook row's lock), so an entity's open deliveries in id order are its events in order. The runner keeps
// each entity's loaded deliveries in a queue and sends only the head; the next is sent only after the head
// was acknowledged (2xx; the webhook's disablement gives everything up). A failed head waits for its retry
// time in a timer heap without holding an in-flight slot: other entities keep flowing, up to
// maxInFlightPerWebhook at once. Ready entities with fresh heads and with retry heads take turns, so neither
// starves the other.
//
// Memory. A runner loads a window of open deliveries in id order (scanFrom = the highest id seen), in chunks
// of at least half a window; its window is an equal share of the worker's total (totalWindow, 100,000 rows),
// between 64 and `window` (1,000) rows, so a worker with thousands of webhooks does not hold thousands of
// full windows. If slots are free and nothing is ready while the window is too full to load
// (it holds events queued behind entities that wait for a retry or are being sent), those tails are dropped
// and the entity is marked incomplete; it is refilled from the store (by entity, id >= missingFrom) when its
// head is acknowledged. Refills asked for while one is in flight go to the store together (entity-loader.ts):
// a backlog over many entities refills after almost every acknowledgement. A runner holds the head of at most
// a window of entities waiting for a retry; beyond that a waiting entity keeps only its place in the timer heap
// and its rows are read back (as the window has room) when its retry is due. Memory is bounded by two windows
// plus about a hundred bytes per waiting entity, and a failing or hot entity never keeps the others from being
// loaded.
//
// Bookkeeping. Finished attempts go to a Flusher that writes them in batches every ~20 ms (one statement:
// failed attempts appended, delivery states and their latest attempt updated via unnest). A delivery is
// marked Delivered only after its 2xx; after a crash everything not yet marked is sent again (at least once,
// SPEC §3.1). The next event of an entity may be sent before the previous one's mark is written: after a
// crash the consumer may then see the earlier event again (a duplicate, after the later one), never a later
// event before an earlier one was acknowledged.
//
// Outcomes. classify() (outcome.ts) and nextAttemptAt() (retry-policy.ts) are pure. 410 disables the webhook
// (EndpointGone) and an event that exhausts the schedule disables it (RetriesExhausted); both abandon its open
// deliveries. Expiry (validUntil), disablement and deletion stop sending at once: the runner checks before
// every attempt, and the trigger wakes it to re-read the webhook.
//
// Failures of the store (habit 9) are not receiver failures: the worker logs, backs off and leaves the work
// for the next sync or claim; records wait in the Flusher and sending pauses while too many are unwritten.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log.ts';
import type { AttemptRecord } from '../store/deliveries.ts';
import { leaseKey, type LeasedWebhook } from '../store/delivery-leases.ts';
import type { DisabledReason } from '../store/webhooks.ts';
import type { WorkerCensus } from '../store/workers.ts';
import { EntityLoader, type EntityLoadFunctions } from './entity-loader.ts';
import { Flusher } from './flusher.ts';
import type { SendRequest, SendResult } from './sender.ts';
import { SyncBatcher, type SyncFunctions } from './sync-batcher.ts';
import { WebhookRunner, type AttemptOutcomeLabel, type RunnerOptions } from './webhook-runner.ts';

/**
 * The store operations of the delivery engine, as functions (worker.ts dispatcherStore has the real ones): sync
 * and syncMany (sync-batcher.ts), loadEntity and loadEntities (entity-loader.ts), and the rest below.
 */
export interface DispatcherStore extends SyncFunctions, EntityLoadFunctions {
  /**
   * Records that this worker is alive and counts live workers and sendable webhooks (store heartbeatWorker).
   * Absent: this worker takes every webhook it can claim.
   */
  heartbeat?(owner: string, ttlMs: number): Promise<WorkerCensus>;
  /** Removes this worker's registration (graceful stop). */
  deregister?(owner: string): Promise<void>;
  claim(owner: string, ttlMs: number, limit: number): Promise<LeasedWebhook[]>;
  renew(owner: string, ids: string[], ttlMs: number): Promise<string[]>;
  release(owner: string, ids?: string[]): Promise<void>;
  /** Embedded store only: clears leases and worker registrations a killed process left behind. */
  clearLeases?(): Promise<void>;
  record(records: AttemptRecord[]): Promise<void>;
  stopWebhook(webhookId: string, reason: DisabledReason): Promise<boolean>;
  abandonStopped(limit: number): Promise<number>;
}

export interface DeliveryObserver {
  /** One finished attempt; latencyMs (commit → acknowledgement) for a delivered one. */
  attempt(outcome: AttemptOutcomeLabel, durationMs: number, latencyMs?: number): void;
}

export interface DispatcherOptions {
  retryScheduleMs: readonly number[];
  maxInFlightPerWebhook: number;
  leaseTtlMs: number;
  userAgent: string;
  /** The safety poll (notifications do the real work). */
  backstopPollMs?: number;
  /** Webhooks claimed per statement. */
  claimBatch?: number;
  /** At most this many webhooks per worker, whatever its fair share. */
  maxWebhooks?: number;
  fanOutBatch?: number;
  /** Open deliveries one runner holds in memory at most. */
  window?: number;
  /** Open deliveries all runners of this worker hold at most (each gets an equal share, within limits). */
  totalWindow?: number;
  refillBatch?: number;
  /** Sending pauses while more attempt records than this wait to be written. */
  maxUnrecorded?: number;
}

export interface DispatcherDeps {
  store: DispatcherStore;
  send(request: SendRequest): Promise<SendResult>;
  decryptKey(sealed: string): string;
  logger: Logger;
  observer: DeliveryObserver;
  options: DispatcherOptions;
  now?: () => number;
  jitter?: () => number;
  workerId?: string;
}

const ABANDON_BATCH = 10_000;

/**
 * A partition's part of the webhook's in-flight limit: the limit divided among the partitions, the remainder
 * going to the first ones, so the parts add up to the limit (each at least 1: with more partitions than the
 * limit, the webhook has one attempt in flight per partition at most).
 */
export const partitionShare = (limit: number, part: number, partitions: number): number =>
  Math.max(1, Math.floor(limit / partitions) + (part < limit % partitions ? 1 : 0));
/** The smallest window a runner gets, however many share the worker's total. */
const MIN_WINDOW = 64;

export class Dispatcher {
  readonly workerId: string;
  /** By lease key (leaseKey: the webhook id for partition 0, `<id>#<part>` for the others). */
  readonly #runners = new Map<string, WebhookRunner>();
  /** Runners being handed over: stopped, draining, their leases still held (and renewed) until released. */
  readonly #handingOver = new Map<string, WebhookRunner>();
  readonly #byTenant = new Map<string, Set<WebhookRunner>>();
  /** The runners of each webhook (one per partition held) and its number of partitions. */
  readonly #byWebhook = new Map<string, { runners: Set<WebhookRunner>; partitions: number }>();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #flusher: Flusher;
  readonly #syncs: SyncBatcher;
  /**
   * Writes the one line per attempt (SPEC §5). Its fields are fixed (ids, version, attempt, status, duration, the
   * sender's error description, outcome, next attempt) and none is a key the process logger redacts, so this
   * child skips the redaction pass, which was half the line's CPU: about 8 of 16 µs per line (pino 10, this
   * machine), paid for every attempt at the default LOG_LEVEL=info.
   */
  readonly #attemptLogger: Logger;
  readonly #refills: EntityLoader;
  readonly #options: Required<Omit<DispatcherOptions, 'maxWebhooks'>> & { maxWebhooks: number };
  readonly #runnerOptions: RunnerOptions;
  readonly #now: () => number;
  readonly #jitter: () => number;
  #leaseTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #leasing: Promise<void> | undefined;
  #leaseAgain = false;
  /** When this worker first found itself holding more than its share (undefined: it does not). */
  #surplusSince: number | undefined;
  /** The last census: live workers and sendable webhooks. */
  #census: WorkerCensus | undefined;
  #stopping = false;
  #started = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.workerId = deps.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#now = deps.now ?? Date.now;
    this.#jitter = deps.jitter ?? Math.random;
    const o = deps.options;
    this.#options = {
      retryScheduleMs: o.retryScheduleMs,
      maxInFlightPerWebhook: o.maxInFlightPerWebhook,
      leaseTtlMs: o.leaseTtlMs,
      userAgent: o.userAgent,
      backstopPollMs: o.backstopPollMs ?? 5_000,
      claimBatch: o.claimBatch ?? 100,
      maxWebhooks: o.maxWebhooks ?? Number.POSITIVE_INFINITY,
      fanOutBatch: o.fanOutBatch ?? 1_000,
      window: o.window ?? 1_000,
      totalWindow: o.totalWindow ?? 100_000,
      refillBatch: o.refillBatch ?? 100,
      maxUnrecorded: o.maxUnrecorded ?? 20_000,
    };
    this.#runnerOptions = {
      retryScheduleMs: this.#options.retryScheduleMs,
      maxInFlight: this.#options.maxInFlightPerWebhook,
      userAgent: this.#options.userAgent,
      fanOutBatch: this.#options.fanOutBatch,
      refillBatch: this.#options.refillBatch,
    };
    this.#attemptLogger = deps.logger.child({}, { redact: [] });
    this.#syncs = new SyncBatcher(deps.store);
    this.#refills = new EntityLoader(deps.store);
    this.#flusher = new Flusher(
      (records) => deps.store.record(records),
      deps.logger,
      () => {
        for (const runner of this.#runners.values()) runner.pump();
      },
    );
  }

  /** The leases this worker holds: webhook ids, `<id>#<part>` for partitions above 0. */
  get webhookIds(): string[] {
    return [...this.#runners.keys()];
  }

  /** Open deliveries this worker's runners hold in memory now. */
  get eventsInMemory(): number {
    let rows = 0;
    for (const runner of this.#runners.values()) rows += runner.heldRows;
    return rows;
  }

  /**
   * The most leases (webhook partitions) this worker claims now: its fair share by the last census, within
   * maxWebhooks.
   */
  get share(): number {
    const census = this.#census;
    const fair =
      census === undefined
        ? Number.POSITIVE_INFINITY
        : Math.max(1, Math.ceil(census.activeWebhooks / Math.max(1, census.liveWorkers)));
    return Math.min(fair, this.#options.maxWebhooks);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.deps.store.clearLeases) await this.deps.store.clearLeases();
    await this.#maintainLeases();
    this.#leaseTimer = setInterval(() => this.#requestLeases(), Math.max(50, this.#options.leaseTtlMs / 3));
    this.#leaseTimer.unref();
    this.#pollTimer = setInterval(() => this.#markAllDirty(), this.#options.backstopPollMs);
    this.#pollTimer.unref();
  }

  /** NOTIFY timehook_changes: "<tenant>:<lastVersion>", or "" after a reconnect (rescan everything). */
  onChangesNotification(payload: string): void {
    if (this.#stopping) return;
    if (payload === '') {
      this.#markAllDirty();
      this.#requestLeases();
      return;
    }
    const tenant = payload.slice(0, payload.lastIndexOf(':'));
    for (const runner of this.#byTenant.get(tenant) ?? []) runner.markDirty();
  }

  /** NOTIFY timehook_webhooks (created or changed): a webhook id, or "" after a reconnect. */
  onWebhookNotification(payload: string): void {
    if (this.#stopping) return;
    if (payload === '') {
      this.#markAllDirty();
      this.#requestLeases();
      return;
    }
    const held = this.#byWebhook.get(payload);
    for (const runner of held?.runners ?? []) runner.markDirty();
    // A new webhook, or a partition another worker released: maybe ours to claim.
    if (!held || held.runners.size < held.partitions) this.#requestLeases();
  }

  /** NOTIFY timehook_deliveries (a redelivery was queued): a webhook id, or "" after a reconnect. */
  onRedeliveryNotification(payload: string): void {
    if (this.#stopping) return;
    if (payload === '') {
      for (const runner of this.#runners.values()) runner.markRedelivered();
      return;
    }
    for (const runner of this.#byWebhook.get(payload)?.runners ?? []) runner.markRedelivered();
  }

  /**
   * Graceful stop (SPEC §4): no new attempts, in-flight attempts finish (bounded by the delivery timeout),
   * their records are written, and the leases are released so other workers take over at once.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearInterval(this.#leaseTimer);
    clearInterval(this.#pollTimer);
    const held = [...this.#runners.keys()];
    for (const runner of this.#runners.values()) runner.stop();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    await this.#leasing?.catch(() => undefined);
    const written = await this.#flusher.drain(10_000);
    try {
      // Deregistered first, so the workers woken by the release count one worker less and have room to claim.
      await this.deps.store.deregister?.(this.workerId);
      // Unwritten records mean acknowledged events still read as open: releasing now would let the next
      // holder send them again at once, so the leases are left to expire instead.
      if (held.length > 0 && written) await this.deps.store.release(this.workerId, held);
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'could not release delivery leases; they expire by themselves');
    }
    this.#runners.clear();
    this.#byTenant.clear();
    this.#byWebhook.clear();
  }

  #markAllDirty(): void {
    for (const runner of this.#runners.values()) runner.markDirty();
  }

  #track(work: Promise<unknown>): void {
    this.#inFlight.add(work);
    work.then(
      () => this.#inFlight.delete(work),
      (error: unknown) => {
        // Tracked work handles its own failures; one escaping here is a bug, never a reason to crash.
        this.#inFlight.delete(work);
        this.deps.logger.error({ err: error }, 'delivery work failed unexpectedly');
      },
    );
  }

  #requestLeases(): void {
    if (this.#stopping) return;
    if (this.#leasing) {
      this.#leaseAgain = true;
      return;
    }
    this.#leasing = this.#maintainLeases().finally(() => {
      this.#leasing = undefined;
      if (this.#leaseAgain) {
        this.#leaseAgain = false;
        this.#requestLeases();
      }
    });
  }

  /**
   * One lease round: renews held leases (dropping lost ones), heartbeats and reads the census, hands surplus
   * webhooks over, claims free ones up to the share, and settles stopped webhooks' deliveries. A store
   * failure ends the round; the next one comes with the timer (habit 9: back off, do not crash).
   */
  async #maintainLeases(): Promise<void> {
    const { store, logger } = this.deps;
    const ttl = this.#options.leaseTtlMs;
    try {
      const held = [...this.#runners.keys(), ...this.#handingOver.keys()];
      if (held.length > 0) {
        const asked = this.#now();
        const kept = new Set(await store.renew(this.workerId, held, ttl));
        for (const id of held) {
          const runner = this.#runners.get(id);
          if (!runner) continue; // being handed over: its lease is renewed until released
          if (kept.has(id)) {
            runner.leaseDeadline = asked + ttl;
          } else {
            logger.warn(
              { webhookId: runner.id, lease: id },
              'delivery lease lost; another worker owns this webhook partition now',
            );
            runner.stop();
            this.#forget(runner);
          }
        }
      }
      if (store.heartbeat && !this.#stopping) {
        this.#census = await store.heartbeat(this.workerId, ttl);
        this.#handOverSurplus();
      }
      const share = this.share;
      while (!this.#stopping && this.#holding() < share) {
        const limit = Math.min(this.#options.claimBatch, share - this.#holding());
        const asked = this.#now();
        const claimed = await store.claim(this.workerId, ttl, limit);
        for (const webhook of claimed) this.#adopt(webhook, asked + ttl);
        if (claimed.length < limit) break;
      }
      if (!this.#stopping) {
        const abandoned = await store.abandonStopped(ABANDON_BATCH);
        if (abandoned > 0) logger.info({ abandoned }, 'deliveries of disabled or deleted webhooks abandoned');
      }
    } catch (error) {
      logger.warn({ err: error }, 'delivery lease maintenance failed; retrying');
    }
  }

  /** Leases held, those being handed over included. */
  #holding(): number {
    return this.#runners.size + this.#handingOver.size;
  }

  /** Hands over the webhooks above the share once the surplus has lasted a lease round (the slack). */
  #handOverSurplus(): void {
    const surplus = this.#runners.size - this.share;
    if (surplus <= 0) {
      this.#surplusSince = undefined;
      return;
    }
    const now = this.#now();
    this.#surplusSince ??= now;
    if (now - this.#surplusSince < this.#options.leaseTtlMs / 6) return; // not yet a round old
    this.#surplusSince = undefined;
    const idlest = [...this.#runners.values()].sort((a, b) => a.inFlight - b.inFlight).slice(0, surplus);
    this.deps.logger.info(
      { leases: idlest.map((r) => r.key), census: this.#census, share: this.share },
      'handing delivery leases over to other workers',
    );
    for (const runner of idlest) this.#track(this.#handOver(runner));
  }

  /**
   * Gives one webhook to the other workers without repeating an event: stop starting attempts, let the
   * in-flight ones finish, write their records, then release the lease. When the records cannot be written
   * within a lease TTL (store trouble), the lease is left to expire instead: a later takeover may then repeat
   * those events, as after a crash.
   */
  async #handOver(runner: WebhookRunner): Promise<void> {
    this.#forget(runner);
    this.#handingOver.set(runner.key, runner);
    runner.stop();
    try {
      await runner.settled();
      if (await this.#flusher.drain(this.#options.leaseTtlMs)) {
        await this.deps.store.release(this.workerId, [runner.key]);
      } else {
        this.deps.logger.warn(
          { webhookId: runner.id, lease: runner.key },
          'could not hand a webhook over; its lease will expire',
        );
      }
    } catch (error) {
      this.deps.logger.warn(
        { err: error, webhookId: runner.id, lease: runner.key },
        'could not release a handed-over lease',
      );
    } finally {
      this.#handingOver.delete(runner.key);
    }
  }

  #adopt(webhook: LeasedWebhook, leaseDeadline: number): void {
    const { part, partitions } = webhook;
    const key = leaseKey(webhook.id, part);
    if (this.#stopping) {
      void this.deps.store.release(this.workerId, [key]).catch(() => undefined);
      return;
    }
    if (this.#handingOver.has(key)) return; // its hand-over releases it when drained
    const existing = this.#runners.get(key);
    if (existing) {
      // Our own lease had lapsed (renewals fell behind) and we claimed it again: keep the runner.
      existing.leaseDeadline = leaseDeadline;
      return;
    }
    const { store } = this.deps;
    const owner = this.workerId;
    const id = webhook.id;
    const runner = new WebhookRunner(
      id,
      key,
      webhook.tenantId,
      {
        sync: (p) => this.#syncs.sync({ webhookId: id, part, owner, ...p }),
        loadEntity: (entityId, fromId, throughId, limit) =>
          this.#refills.load({ webhookId: id, entityId, fromId, throughId, limit }),
        stopWebhook: (reason) => store.stopWebhook(id, reason),
      },
      {
        send: (request) => this.deps.send(request),
        record: (record) => this.#flusher.add(record),
        flushed: async () => {
          await this.#flusher.drain();
        },
        mayStartAttempts: () => !this.#stopping && this.#flusher.backlog < this.#options.maxUnrecorded,
        window: () => this.#windowPerRunner(),
        decryptKey: (sealed) => this.deps.decryptKey(sealed),
        observe: (outcome, durationMs, latencyMs) =>
          this.deps.observer.attempt(outcome, durationMs, latencyMs),
        logAttempt: (fields) => this.#attemptLogger.info(fields, 'delivery attempt'),
        onStopped: (r, why) => this.#onRunnerStopped(r, why),
        track: (work) => this.#track(work),
      },
      partitions === 1
        ? this.#runnerOptions
        : {
            ...this.#runnerOptions,
            maxInFlight: partitionShare(this.#runnerOptions.maxInFlight, part, partitions),
          },
      this.deps.logger,
      this.#now,
      this.#jitter,
    );
    runner.leaseDeadline = leaseDeadline;
    this.#runners.set(key, runner);
    let tenantRunners = this.#byTenant.get(webhook.tenantId);
    if (!tenantRunners) this.#byTenant.set(webhook.tenantId, (tenantRunners = new Set()));
    tenantRunners.add(runner);
    let webhookRunners = this.#byWebhook.get(id);
    if (!webhookRunners) this.#byWebhook.set(id, (webhookRunners = { runners: new Set(), partitions }));
    webhookRunners.runners.add(runner);
    runner.markDirty();
  }

  #forget(runner: WebhookRunner): void {
    if (this.#runners.get(runner.key) === runner) this.#runners.delete(runner.key);
    const tenantRunners = this.#byTenant.get(runner.tenantId);
    tenantRunners?.delete(runner);
    if (tenantRunners?.size === 0) this.#byTenant.delete(runner.tenantId);
    const webhookRunners = this.#byWebhook.get(runner.id);
    webhookRunners?.runners.delete(runner);
    if (webhookRunners?.runners.size === 0) this.#byWebhook.delete(runner.id);
  }

  /**
   * A runner's window: an equal share of the worker's total, at least MIN_WINDOW (enough to keep its in-flight
   * slots busy) and at most `window`. Memory then stays near totalWindow rows whether a worker holds one
   * webhook or thousands; a runner above a shrunken share just loads nothing until it is below half of it.
   */
  #windowPerRunner(): number {
    const share = Math.floor(this.#options.totalWindow / Math.max(1, this.#runners.size));
    return Math.min(this.#options.window, Math.max(MIN_WINDOW, share));
  }

  #onRunnerStopped(runner: WebhookRunner, why: 'inactive' | 'lease-lost' | 'disabled'): void {
    this.#forget(runner);
    if (why === 'lease-lost' || this.#stopping) return;
    // Disabled, expired or deleted: give the lease back and settle its open deliveries.
    const { store, logger } = this.deps;
    const work = store
      .release(this.workerId, [runner.key])
      .then(() => store.abandonStopped(ABANDON_BATCH))
      .catch((error: unknown) =>
        logger.warn({ err: error }, 'could not settle a stopped webhook; retrying later'),
      );
    this.#track(work);
  }
}
