// One leased webhook's sending: the in-memory per-entity FIFO queues, the per-webhook in-flight bound, the
// retry timers and the window of open deliveries loaded from the store. See dispatcher.ts for the design;
// this file knows nothing of SQL or HTTP (it is handed functions for both).

import type { Logger } from '../log.ts';
import type { AttemptRecord, DispatchTarget, OpenDelivery, SyncResult } from '../store/deliveries.ts';
import type { DisabledReason } from '../store/webhooks.ts';
import { formatChangeVersion } from '../domain/change-version.ts';
import { classify, type Outcome } from './outcome.ts';
import { Deque, MinHeap } from './queues.ts';
import { nextAttemptAt } from './retry-policy.ts';
import type { SendRequest, SendResult } from './sender.ts';
import { decodeWebhookKey, messageId, signatureHeader } from './signing.ts';

/** The store operations a runner uses (bound to its webhook and worker by the dispatcher). */
export interface RunnerStore {
  /**
   * Moves up to `limit` new changes into deliveries, then loads up to `space` open deliveries above afterId
   * (store syncDeliveries); plain = known to have no externalReferences; low = where the runner's open work
   * starts, for the webhook's low-water mark (0: leave it).
   */
  sync(params: {
    limit: number;
    plain: boolean;
    afterId: number;
    space: number;
    low: number;
  }): Promise<SyncResult>;
  loadEntity(entityId: number, fromId: number, throughId: number, limit: number): Promise<OpenDelivery[]>;
  /** Disables the webhook and abandons its open deliveries. */
  stopWebhook(reason: DisabledReason): Promise<boolean>;
}

export type AttemptOutcomeLabel = 'delivered' | 'retry' | 'gone' | 'exhausted';

export interface RunnerHooks {
  send(request: SendRequest): Promise<SendResult>;
  /** Queues the bookkeeping of a finished attempt (batched by the dispatcher). */
  record(record: AttemptRecord): void;
  /** Resolves once every record handed to `record` so far is written. */
  flushed(): Promise<void>;
  /** False while the bookkeeping backlog is too long: start no new attempts. */
  mayStartAttempts(): boolean;
  /** Open deliveries this runner may hold in memory now (its share of the worker's total). */
  window(): number;
  decryptKey(sealed: string): string;
  /** Counts an attempt; latencyMs (commit → acknowledgement) is set for a delivered one. */
  observe(outcome: AttemptOutcomeLabel, durationMs: number, latencyMs?: number): void;
  /** Writes the attempt's log line (SPEC §5) at info; `fields` hold no secret (see dispatcher.ts). */
  logAttempt(fields: Record<string, unknown>): void;
  /** The runner stopped for good (webhook stopped, lease lost): the dispatcher forgets it. */
  onStopped(runner: WebhookRunner, why: 'inactive' | 'lease-lost' | 'disabled'): void;
  /** Tracks a promise the graceful stop must wait for. */
  track(work: Promise<unknown>): void;
}

export interface RunnerOptions {
  retryScheduleMs: readonly number[];
  maxInFlight: number;
  userAgent: string;
  /** Changes moved into deliveries per transaction. */
  fanOutBatch: number;
  /** Rows read per entity refill. */
  refillBatch: number;
}

interface Entity {
  id: number;
  /** Loaded open deliveries of this entity, in id order; queue[0] is the next to send. */
  queue: OpenDelivery[];
  /** True when the queue holds every open delivery of this entity with id <= scanFrom. */
  complete: boolean;
  /** When not complete: the open deliveries with id >= missingFrom (and <= scanFrom) are not in memory. */
  missingFrom: number;
  state: 'idle' | 'ready' | 'waiting' | 'sending' | 'refilling';
  /**
   * Set while the entity waits for a retry with no rows in memory (its head was let go, see #place): the
   * head's id and attempt count, so that the refill at its due time goes on with the retry schedule even if
   * the record of the failed attempt is not written yet.
   */
  spilled: { id: number; attemptCount: number; dueMs: number } | undefined;
}

interface Target {
  url: string;
  keys: Buffer[];
  previousKey: { key: Buffer; untilMs: number } | undefined;
  validUntilMs: number;
  active: boolean;
}

const SYNC_RETRY_MAX_MS = 5_000;
/**
 * How often a sync proposes a new low-water mark: the store checks the rows it passes (those acknowledged
 * since), so proposing it on every sync would read each acknowledged row once more.
 */
const LOW_WATER_INTERVAL_MS = 1_000;

export class WebhookRunner {
  #target: Target | undefined;
  readonly #keyCache = new Map<string, Buffer>();
  readonly #entities = new Map<number, Entity>();
  readonly #fresh = new Deque<Entity>();
  readonly #retries = new Deque<Entity>();
  #preferRetry = false;
  readonly #waiting = new MinHeap<Entity>();
  /** Entities whose retry is due but whose rows were let go: read back as the window has room. */
  readonly #dueSpilled = new Deque<Entity>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #inFlight = 0;
  /** The attempts started and not yet settled (recorded), for a hand-over that must wait for them. */
  readonly #attempts = new Set<Promise<unknown>>();
  /** Rows in memory. */
  #loaded = 0;
  /** Window room promised to refills in flight. */
  #reserved = 0;
  /** Entities waiting for a retry that hold their head row (the others hold no rows; see #place). */
  #heldWaiting = 0;
  /** Every open delivery with id <= scanFrom has been seen by the loader. */
  #scanFrom = 0;
  #scanExhausted = false;
  #dirty = true;
  /** The webhook has no externalReferences (learned from the first fan-out): the one-statement fan-out. */
  #plain = false;
  #syncing: Promise<void> | undefined;
  #syncFailures = 0;
  #lowProposedAt = 0;
  #stopped = false;
  /** Local deadline of the lease (renewal time + TTL): no attempt starts after it. */
  leaseDeadline = 0;

  constructor(
    /** The webhook's id. */
    readonly id: string,
    /** The lease this runner sends under: one partition of the webhook (store/delivery-leases.ts leaseKey). */
    readonly key: string,
    readonly tenantId: string,
    private readonly store: RunnerStore,
    private readonly hooks: RunnerHooks,
    private readonly options: RunnerOptions,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly jitter: () => number,
  ) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Open deliveries held in memory (the window, the heads of waiting entities, those being sent). */
  get heldRows(): number {
    return this.#loaded;
  }

  /** Something may have changed (new changes, the webhook, a redelivery): fan out and reload. */
  markDirty(): void {
    if (this.#stopped) return;
    this.#dirty = true;
    this.#kickSync();
  }

  /** A redelivery was queued: it sits beyond the window's high-water mark; load it. */
  markRedelivered(): void {
    this.#scanExhausted = false;
    this.markDirty();
  }

  /**
   * Resolves once every attempt started so far has settled and handed its record to the dispatcher
   * (after stop(): nothing of this runner is in flight any more).
   */
  async settled(): Promise<void> {
    while (this.#attempts.size > 0) await Promise.allSettled([...this.#attempts]);
  }

  /** Stops for good: no new attempts, nothing reloaded. In-flight attempts finish and are recorded. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#entities.clear();
    this.#fresh.clear();
    this.#retries.clear();
    this.#waiting.clear();
    this.#dueSpilled.clear();
    this.#keyCache.clear();
  }

  /** Starts attempts while slots are free; called after every event that may free one. */
  pump(): void {
    if (this.#stopped || !this.#target) return;
    const now = this.now();
    this.#promoteDue(now);
    this.#readmit();
    const target = this.#target;
    if (!target.active || now >= target.validUntilMs || now >= this.leaseDeadline) {
      // Expired by our clock, or the lease may have lapsed: send nothing; the sync (or the lease
      // renewal) settles what happens next.
      this.#arm(now + 1_000);
      return;
    }
    while (this.#inFlight < this.options.maxInFlight && this.hooks.mayStartAttempts()) {
      const entity = this.#nextReady();
      if (!entity) break;
      this.#startAttempt(entity, target, now);
    }
    this.#maybeLoad();
    this.#readmit(); // a trim in #maybeLoad may have made room
    const next = this.#waiting.peekKey();
    if (next !== undefined) this.#arm(next);
  }

  // ---- scheduling ----

  #arm(atMs: number): void {
    if (this.#stopped) return;
    if (this.#timer && atMs >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = atMs;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(0, atMs - this.now()),
    );
    this.#timer.unref();
  }

  #promoteDue(now: number): void {
    while ((this.#waiting.peekKey() ?? Number.POSITIVE_INFINITY) <= now) {
      const entity = this.#waiting.pop()!;
      if (entity.spilled) {
        this.#dueSpilled.push(entity);
        continue;
      }
      this.#heldWaiting--;
      entity.state = 'ready';
      this.#retries.push(entity);
    }
  }

  /**
   * Reads back the rows of entities whose retry is due while the window has room (each refill takes at least
   * the head), so that many entities falling due at once do not all come back into memory together.
   */
  #readmit(): void {
    while (this.#dueSpilled.size > 0 && this.#windowRows() < this.hooks.window()) {
      this.#refill(this.#dueSpilled.shift()!); // #place then finds its head due
    }
  }

  /** Fresh events and retries take turns, so neither starves the other (SPEC §3.3). */
  #nextReady(): Entity | undefined {
    const first = this.#preferRetry ? this.#retries : this.#fresh;
    const second = this.#preferRetry ? this.#fresh : this.#retries;
    const entity = first.shift() ?? second.shift();
    if (entity) this.#preferRetry = !this.#preferRetry;
    return entity;
  }

  /** Puts an entity that is not sending into the right place for its head. */
  #place(entity: Entity): void {
    if (this.#stopped) return;
    const head = entity.queue[0];
    if (!head) {
      if (entity.complete) {
        this.#entities.delete(entity.id);
        entity.state = 'idle';
      } else {
        this.#refill(entity);
      }
      return;
    }
    // A never-attempted event is due at once, whatever the store's clock wrote into next_attempt_at.
    const due = head.attemptCount === 0 ? 0 : head.nextAttemptAt.getTime();
    if (due <= this.now()) {
      entity.state = 'ready';
      (head.attemptCount === 0 ? this.#fresh : this.#retries).push(entity);
    } else {
      entity.state = 'waiting';
      if (this.#heldWaiting >= this.hooks.window()) {
        // As many waiting heads as a window already: let this entity's rows go (they stay open in the store)
        // and keep only its place in the timer heap, so that a backlog over millions of entities behind a
        // failing receiver costs about a hundred bytes per entity instead of its head event.
        entity.spilled = { id: head.id, attemptCount: head.attemptCount, dueMs: due };
        this.#letGo(entity, 0);
      } else {
        this.#heldWaiting++;
      }
      this.#waiting.push(due, entity);
    }
  }

  // ---- loading ----

  #kickSync(): void {
    if (this.#syncing || this.#stopped) return;
    this.#syncing = this.#sync().finally(() => {
      this.#syncing = undefined;
      if (!this.#stopped && (this.#dirty || this.#wantsLoad())) this.#kickSync();
    });
    this.hooks.track(this.#syncing);
  }

  /**
   * Rows that count against the window: all but the heads of the entities waiting for a retry (at most a
   * window of them are held; see #place), and refills.
   */
  #windowRows(): number {
    return this.#loaded - this.#heldWaiting + this.#reserved;
  }

  /**
   * Load when rows may wait beyond scanFrom and the window is at most half full: loads come in chunks of at
   * least half a window, not one statement per acknowledged event.
   */
  #wantsLoad(): boolean {
    return !this.#scanExhausted && this.#roomToLoad() > 0;
  }

  /** The window's free rows when it is at most half full (a load worth a statement), else 0. */
  #roomToLoad(): number {
    const window = this.hooks.window();
    const rows = this.#windowRows();
    return rows <= window / 2 ? window - rows : 0;
  }

  #maybeLoad(): void {
    if (this.#scanExhausted || this.#syncing) return;
    if (
      !this.#wantsLoad() &&
      this.#fresh.size + this.#retries.size === 0 &&
      this.#inFlight < this.options.maxInFlight
    ) {
      // Slots are free and nothing is ready, yet the window is too full to load: it holds events queued
      // behind entities that wait for a retry or are being sent. Drop those tails (they are refilled after
      // their head is acknowledged) to look further.
      this.#trim();
    }
    if (this.#wantsLoad()) this.#kickSync();
  }

  /** Drops the loaded tails (all but the head) of entities that are waiting for a retry or sending. */
  #trim(): void {
    for (const entity of this.#entities.values()) {
      if (entity.queue.length <= 1 || (entity.state !== 'waiting' && entity.state !== 'sending')) continue;
      this.#letGo(entity, 1);
    }
  }

  /**
   * Lets an entity's loaded rows from queue[keep] on go (they stay open in the store): the entity becomes
   * incomplete from the first of them, and a refill reads them back.
   */
  #letGo(entity: Entity, keep: number): void {
    const dropped = entity.queue.splice(keep);
    if (dropped.length === 0) return;
    this.#loaded -= dropped.length;
    entity.missingFrom = entity.complete ? dropped[0]!.id : Math.min(entity.missingFrom, dropped[0]!.id);
    entity.complete = false;
  }

  /**
   * Fans out (when dirty) and loads (when the window has room and rows may wait beyond scanFrom) in one store
   * call, one batch at a time, so a long fan-out backlog never keeps loaded work from being sent. One sync runs
   * at a time per webhook.
   */
  async #sync(): Promise<void> {
    try {
      while (!this.#stopped) {
        const fanOut = this.#dirty;
        const room = this.#roomToLoad();
        // A fan-out may make new rows: load them in the same call when the window has room for a chunk (the
        // load comes after the fan-out there), even if nothing was left to load before.
        const space = fanOut || !this.#scanExhausted ? room : 0;
        if (!fanOut && space === 0) break;
        this.#dirty = false;
        const result = await this.store.sync({
          limit: fanOut ? this.options.fanOutBatch : 0,
          plain: this.#plain,
          afterId: this.#scanFrom,
          space,
          low: this.#proposeLow(),
        });
        if (!result.held) {
          this.#finish('lease-lost');
          return;
        }
        this.#applyTarget(result.target);
        if (!result.target.active) {
          this.#finish('inactive');
          return;
        }
        this.#plain = Object.keys(result.target.externalReferences).length === 0;
        if (fanOut && !result.caughtUp) this.#dirty = true;
        // New rows may lie beyond scanFrom: ours, or (with partitions) another partition holder's fan-out of
        // the changes that woke us, which left nothing for ours to do.
        if (result.fannedOut > 0 || (fanOut && result.target.partitions > 1)) this.#scanExhausted = false;
        // Loaded after the fan-out, under the same lock: the rows include the deliveries just made.
        if (space > 0) this.#accept(result.rows, space);
        this.#syncFailures = 0;
        this.pump();
      }
    } catch (error) {
      this.#syncFailures++;
      const delay = Math.min(100 * 2 ** this.#syncFailures, SYNC_RETRY_MAX_MS);
      this.logger.warn(
        { err: error, webhookId: this.id, retryInMs: delay },
        'delivery sync failed; retrying',
      );
      this.#dirty = true;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /**
   * The lowest delivery id that may still be open as far as this runner knows (every open delivery at or below
   * scanFrom is in memory, except the missing tails of incomplete entities), at most once per
   * LOW_WATER_INTERVAL_MS; 0 otherwise. Records of acknowledgements may not be written yet: the store checks.
   */
  #proposeLow(): number {
    const now = this.now();
    if (this.#scanFrom === 0 || now - this.#lowProposedAt < LOW_WATER_INTERVAL_MS) return 0;
    this.#lowProposedAt = now;
    let low = this.#scanFrom + 1;
    for (const entity of this.#entities.values()) {
      const head = entity.queue[0];
      if (head && head.id < low) low = head.id;
      if (!entity.complete && entity.missingFrom < low) low = entity.missingFrom;
    }
    return low;
  }

  /** Takes rows of the loader (id order, all above scanFrom) into the entity queues. */
  #accept(rows: OpenDelivery[], limit: number): void {
    for (const row of rows) {
      if (row.id <= this.#scanFrom) continue;
      this.#scanFrom = row.id;
      let entity = this.#entities.get(row.entityId);
      if (!entity) {
        entity = {
          id: row.entityId,
          queue: [],
          complete: true,
          missingFrom: 0,
          state: 'idle',
          spilled: undefined,
        };
        this.#entities.set(row.entityId, entity);
      }
      if (!entity.complete) continue; // its refill reads it
      entity.queue.push(row);
      this.#loaded++;
      if (entity.state === 'idle') this.#place(entity);
    }
    if (limit > 0) this.#scanExhausted = rows.length < limit;
  }

  /**
   * Reloads an incomplete entity's next rows. A refill takes what room the window has left (at least the head):
   * a backlog over many entities drains by refills, and unbounded ones would pull the whole backlog into memory
   * (1 M pending over 10,000 entities peaked at 1.4 GB before this bound).
   */
  #refill(entity: Entity): void {
    entity.state = 'refilling';
    const through = this.#scanFrom;
    const limit = Math.max(1, Math.min(this.options.refillBatch, this.hooks.window() - this.#windowRows()));
    this.#reserved += limit;
    const work = this.store.loadEntity(entity.id, entity.missingFrom, through, limit).then(
      (rows) => {
        this.#reserved -= limit;
        if (this.#stopped) return;
        const spilled = entity.spilled;
        entity.spilled = undefined;
        const head = rows[0];
        if (spilled && head?.id === spilled.id && head.attemptCount < spilled.attemptCount) {
          head.attemptCount = spilled.attemptCount;
          head.nextAttemptAt = new Date(spilled.dueMs);
        }
        for (const row of rows) entity.queue.push(row);
        this.#loaded += rows.length;
        if (rows.length >= limit) {
          entity.missingFrom = rows.at(-1)!.id + 1;
        } else if (through === this.#scanFrom) {
          entity.complete = true;
        } else {
          entity.missingFrom = through + 1;
        }
        entity.state = 'idle';
        this.#place(entity);
        this.pump();
      },
      (error: unknown) => {
        this.logger.warn({ err: error, webhookId: this.id }, 'delivery refill failed; retrying');
        this.#reserved -= limit;
        setTimeout(() => {
          if (this.#stopped) return;
          entity.state = 'idle';
          this.#place(entity);
          this.pump();
        }, 1_000).unref();
      },
    );
    this.hooks.track(work);
  }

  #applyTarget(t: DispatchTarget): void {
    const key = (sealed: string): Buffer => {
      let bytes = this.#keyCache.get(sealed);
      if (!bytes) {
        bytes = decodeWebhookKey(this.hooks.decryptKey(sealed));
        this.#keyCache.set(sealed, bytes);
      }
      return bytes;
    };
    const keep = new Set([t.keyEncrypted, t.previousKeyEncrypted]);
    for (const sealed of this.#keyCache.keys()) if (!keep.has(sealed)) this.#keyCache.delete(sealed);
    this.#target = {
      url: t.destinationUrl,
      keys: [key(t.keyEncrypted)],
      previousKey:
        t.previousKeyEncrypted && t.previousKeyValidUntil
          ? { key: key(t.previousKeyEncrypted), untilMs: t.previousKeyValidUntil.getTime() }
          : undefined,
      validUntilMs: t.validUntil.getTime(),
      active: t.active,
    };
  }

  #finish(why: 'inactive' | 'lease-lost' | 'disabled'): void {
    this.stop();
    this.hooks.onStopped(this, why);
  }

  // ---- attempts ----

  #startAttempt(entity: Entity, target: Target, now: number): void {
    const delivery = entity.queue[0]!;
    entity.state = 'sending';
    this.#inFlight++;
    const id = messageId(this.id, delivery.changeVersion);
    const timestamp = Math.floor(now / 1000);
    const keys =
      target.previousKey && target.previousKey.untilMs > now
        ? [...target.keys, target.previousKey.key]
        : target.keys;
    const body = Buffer.from(delivery.body);
    const startedAt = new Date(now);
    const work = this.hooks
      .send({
        url: target.url,
        headers: {
          'content-type': 'application/json',
          'user-agent': this.options.userAgent,
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(id, timestamp, body, keys),
        },
        body,
      })
      .then(
        (result) => this.#settle(entity, delivery, result, startedAt),
        (error: unknown) => {
          // send() reports receiver failures as results; an exception here is a bug, not an outcome.
          this.logger.error(
            { err: error, webhookId: this.id, deliveryId: delivery.id },
            'delivery attempt crashed',
          );
          return this.#settle(
            entity,
            delivery,
            {
              statusCode: undefined,
              retryAfter: undefined,
              error: 'internal error',
              durationMs: 0,
              responseBody: undefined,
            },
            startedAt,
          );
        },
      );
    this.#attempts.add(work);
    // The dispatcher's track() reports a failure. (Inline callbacks: a named closure per attempt costs a
    // defineProperty under tsx's keepNames.)
    work.then(
      () => this.#attempts.delete(work),
      () => this.#attempts.delete(work),
    );
    this.hooks.track(work);
  }

  /** One line per attempt (SPEC §5); receiver failures are expected outcomes, logged at info. */
  #logAttempt(
    delivery: OpenDelivery,
    attempt: number,
    result: SendResult,
    fields: Record<string, unknown>,
  ): void {
    if (!this.logger.isLevelEnabled('info')) return;
    this.hooks.logAttempt({
      webhookId: this.id,
      deliveryId: delivery.id,
      changeVersion: formatChangeVersion(delivery.changeVersion),
      entityId: delivery.entityId,
      attempt,
      statusCode: result.statusCode,
      error: result.error,
      durationMs: Math.round(result.durationMs),
      ...fields,
    });
  }

  async #settle(entity: Entity, delivery: OpenDelivery, result: SendResult, startedAt: Date): Promise<void> {
    this.#inFlight--;
    const now = this.now();
    const attempt = delivery.attemptCount + 1;
    const outcome: Outcome = classify(result, now);
    const base = {
      deliveryId: delivery.id,
      attempt,
      at: startedAt,
      durationMs: result.durationMs,
      statusCode: result.statusCode ?? null,
      error: result.error ?? null,
      responseBody: result.responseBody ?? null,
    };
    if (outcome.type === 'delivered') {
      this.hooks.record({ ...base, result: 'Delivered', nextAttemptAt: null });
      const latencyMs = now - delivery.committedAt.getTime();
      this.hooks.observe('delivered', result.durationMs, latencyMs);
      this.#logAttempt(delivery, attempt, result, { outcome: 'delivered' });
      if (this.#stopped) return;
      entity.queue.shift();
      this.#loaded--;
      entity.state = 'idle';
      this.#place(entity);
      this.pump();
      return;
    }

    const decision =
      outcome.type === 'retry'
        ? nextAttemptAt(outcome, attempt, this.options.retryScheduleMs, now, this.jitter)
        : undefined;
    if (outcome.type === 'retry' && decision?.type === 'retry') {
      this.hooks.record({ ...base, result: 'Failed', nextAttemptAt: new Date(decision.atMs) });
      this.hooks.observe('retry', result.durationMs);
      this.#logAttempt(delivery, attempt, result, {
        outcome: 'retry',
        ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
        nextAttemptAt: new Date(decision.atMs).toISOString(),
      });
      if (this.#stopped) return;
      delivery.attemptCount = attempt;
      delivery.nextAttemptAt = new Date(decision.atMs);
      entity.state = 'idle';
      this.#place(entity);
      this.pump();
      return;
    }

    // 410, or the retry schedule is used up: the webhook is disabled and its open deliveries abandoned.
    const reason: DisabledReason = outcome.type === 'gone' ? 'EndpointGone' : 'RetriesExhausted';
    const label: AttemptOutcomeLabel = outcome.type === 'gone' ? 'gone' : 'exhausted';
    this.hooks.record({ ...base, result: 'Failed', nextAttemptAt: null });
    this.hooks.observe(label, result.durationMs);
    this.#logAttempt(delivery, attempt, result, { outcome: label });
    if (this.#stopped) return;
    // Send nothing more, settle the bookkeeping, then disable; only then let the dispatcher release the
    // lease, so no other claim can pick the webhook up while it is still Enabled.
    this.stop();
    await this.hooks.flushed();
    for (let tries = 1; ; tries++) {
      try {
        const changed = await this.store.stopWebhook(reason);
        if (changed) {
          this.logger.warn(
            { webhookId: this.id, reason, deliveryId: delivery.id, attempts: attempt },
            reason === 'EndpointGone'
              ? 'webhook disabled: the endpoint answered 410 Gone'
              : 'webhook disabled: an event exhausted the retry schedule',
          );
        }
        break;
      } catch (error) {
        if (tries >= 5) {
          this.logger.error({ err: error, webhookId: this.id, reason }, 'could not disable the webhook');
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** tries));
      }
    }
    this.hooks.onStopped(this, 'disabled');
  }
}
