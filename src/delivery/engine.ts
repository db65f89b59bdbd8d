// Delivery engine v2 (docs/design/delivery.md): leases lanes (a webhook, or a partition of it), feeds each lane
// the changes of its webhook's collection in version order — woken by the commit's notification, never by a
// timer on the hot path — signs and sends through the sender, and records outcomes through one recorder. Per-
// entity order lives in lane.ts; the SQL in store/lanes.ts; HTTP in sender.ts.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { formatChangeVersion } from '../domain/change-version.ts';
import { eventBody } from '../domain/event.ts';
import type { CollectionName } from '../domain/scopes.ts';
import type { Logger } from '../log.ts';
import type { Db } from '../store/db.ts';
import { attachExternalReferencesToChanges } from '../store/external-references.ts';
import {
  abandonWebhook,
  claimLanes,
  clearAllLanes,
  laneKey,
  readLaneChanges,
  readLaneTarget,
  readEntityOpenRows,
  readLaneOpenHeads,
  readRedeliveries,
  releaseLanes,
  renewLanes,
  stoppedWebhooksWithOpenRows,
  writeOutcomes,
  type LaneChange,
  type LaneTarget,
  type OpenRow,
  type OutcomeRow,
} from '../store/lanes.ts';
import { disableWebhook, type DisabledReason } from '../store/webhooks.ts';
import { clearWorkers, deregisterWorker, heartbeatWorker } from '../store/workers.ts';
import { Lane, type AttemptResult, type LaneEvent, type LaneRecord } from './lane.ts';
import { classify } from './outcome.ts';
import { Recorder } from './recorder.ts';
import { nextAttemptAt } from './retry-policy.ts';
import type { SendRequest, SendResult } from './sender.ts';
import { decodeWebhookKey, messageId, signatureHeader } from './signing.ts';

/** Registrations of workers silent this long are deleted (they stopped counting after one lease TTL). */
const FORGET_WORKERS_AFTER_MS = 24 * 3_600_000;

export interface EngineOptions {
  retryScheduleMs: readonly number[];
  maxInFlightPerWebhook: number;
  leaseTtlMs: number;
  deliveryTimeoutMs: number;
  userAgent: string;
  /** Events one lane holds in memory at most. */
  window?: number;
  /** Lanes claimed per statement. */
  claimBatch?: number;
}

export interface EngineObserver {
  /** One finished attempt; latencyMs (commit → acknowledgement) for a delivered one. */
  attempt(
    outcome: 'delivered' | 'retry' | 'gone' | 'exhausted',
    durationMs: number,
    latencyMs?: number,
  ): void;
}

export interface EngineDeps {
  db: Db;
  send(request: SendRequest): Promise<SendResult>;
  decryptKey(sealed: string): string;
  logger: Logger;
  observer: EngineObserver;
  options: EngineOptions;
  now?: () => number;
  jitter?: () => number;
}

/** A lane this worker holds: its lane, its webhook as last read, and its lease deadline. */
interface Held {
  key: string;
  target: LaneTarget;
  lane: Lane;
  keys: Buffer[];
  previousKey: { key: Buffer; untilMs: number } | undefined;
  /** Until when this worker may start attempts (its last renewal's start + TTL − margin). */
  deadline: number;
  reading: boolean;
  readAgain: boolean;
  /** The read stopped for lack of room: read again when the window has room. */
  behind: boolean;
  /** Redeliveries taken in (`<version>:<seq>`), so a second notification does not take one twice. */
  redeliveries: Set<string>;
  /** Fires at validUntil: the webhook expires then, whether or not the expiry sweep has written it yet. */
  expiry: NodeJS.Timeout | undefined;
}

/** An attempt starts only with at least this long (or the delivery timeout, if shorter) left on the lease. */
const MIN_ATTEMPT_MS = 1000;

/** Timers wait at most this long (setTimeout cannot wait beyond about 24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 24 * 3_600_000;

type Recorded = Map<string, number>;

export class Engine {
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  readonly #deps: EngineDeps;
  readonly #options: Required<EngineOptions>;
  readonly #held = new Map<string, Held>();
  readonly #byTenant = new Map<string, Set<Held>>();
  readonly #recorder: Recorder<OutcomeRow, Recorded>;
  readonly #attemptLogger: Logger;
  readonly #now: () => number;
  readonly #jitter: () => number;
  #leaseTimer: NodeJS.Timeout | undefined;
  #leasing: Promise<void> | undefined;
  #leaseAgain = false;
  #stopping = false;
  /** The last lease round found this worker above its share. */
  #surplusSeen = false;
  /** Webhooks that changed (keys rotated, disabled…) while no lane of theirs was held here. */
  readonly #changedWhileClaiming = new Set<string>();

  constructor(deps: EngineDeps) {
    this.#deps = deps;
    this.#options = { window: 2000, claimBatch: 100, ...deps.options };
    this.#now = deps.now ?? Date.now;
    this.#jitter = deps.jitter ?? Math.random;
    // The attempt line's fields are fixed and hold no secret: no redaction pass.
    this.#attemptLogger = deps.logger.child({}, { redact: [] });
    this.#recorder = new Recorder<OutcomeRow, Recorded>({
      write: (batch) => this.#write(batch.records, batch.cursors),
      onError: (error) => deps.logger.warn({ err: error }, 'could not record delivery outcomes; retrying'),
    });
  }

  get laneKeys(): string[] {
    return [...this.#held.keys()];
  }

  /** Events the lanes hold in memory. */
  get eventsInMemory(): number {
    let n = 0;
    for (const h of this.#held.values()) n += h.lane.held;
    return n;
  }

  async start(): Promise<void> {
    if (this.#deps.db.kind === 'pglite') {
      // One process holds the data directory: leases and registrations left by a killed one are stale.
      await clearAllLanes(this.#deps.db);
      await clearWorkers(this.#deps.db);
    }
    await this.#leaseRound();
    this.#scheduleLeases();
  }

  /** Stops claiming and sending, lets attempts in flight finish and be recorded, releases the leases. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#leaseTimer);
    await this.#leasing;
    const held = [...this.#held.values()];
    for (const h of held) h.lane.stop();
    await Promise.all(held.map((h) => h.lane.idle()));
    await this.#recorder.close();
    for (const h of held) this.#forget(h);
    await releaseLanes(this.#deps.db, this.workerId).catch((error: unknown) =>
      this.#deps.logger.warn({ err: error }, 'could not release delivery leases'),
    );
    await deregisterWorker(this.#deps.db, this.workerId).catch(() => undefined);
  }

  // ---- wake-ups

  /** A commit's notification: `<tenant>:<last version>`; empty = the listener reconnected (read everything). */
  onChanges(payload: string): void {
    if (payload === '') {
      for (const h of this.#held.values()) this.#read(h);
      return;
    }
    const colon = payload.lastIndexOf(':');
    const tenant = payload.slice(0, colon);
    const version = Number(payload.slice(colon + 1));
    for (const h of this.#byTenant.get(tenant) ?? []) if (h.lane.through < version) this.#read(h);
  }

  /** A webhook was created, changed, disabled, expired or deleted (its id), or a lease was released. */
  onWebhook(payload: string): void {
    const lanes = [...this.#held.values()].filter((h) => h.target.webhookId === payload);
    if (lanes.length === 0) {
      // A lane being claimed now was read before this change: the round refreshes it once it is held.
      this.#changedWhileClaiming.add(payload);
      this.#leaseSoon();
      return;
    }
    for (const h of lanes) void this.#refresh(h);
  }

  /** A redelivery was asked for (the webhook id). */
  onRedelivery(payload: string): void {
    for (const h of this.#held.values()) {
      if (h.target.webhookId !== payload) continue;
      void readRedeliveries(this.#deps.db, h.target)
        .then((rows) => {
          const fresh = rows.filter((r) => !h.redeliveries.has(`${r.version}:${r.seq}`));
          for (const r of fresh) h.redeliveries.add(`${r.version}:${r.seq}`);
          h.lane.restore(fresh.map(fromOpenRow));
        })
        .catch((error: unknown) => this.#deps.logger.warn({ err: error }, 'could not load redeliveries'));
    }
  }

  // ---- leases

  #scheduleLeases(): void {
    if (this.#stopping) return;
    this.#leaseTimer = setTimeout(() => {
      void this.#leaseRound().finally(() => this.#scheduleLeases());
    }, this.#options.leaseTtlMs / 3);
    this.#leaseTimer.unref();
  }

  #leaseSoon(): void {
    if (this.#leasing) this.#leaseAgain = true;
    else void this.#leaseRound();
  }

  /** Renews what is held, drops what was lost, and claims up to this worker's fair share. */
  #leaseRound(): Promise<void> {
    this.#leasing ??= (async () => {
      do {
        this.#leaseAgain = false;
        try {
          await this.#renewAndClaim();
          this.#changedWhileClaiming.clear();
        } catch (error) {
          this.#deps.logger.warn({ err: error }, 'delivery lease round failed; retrying at the next one');
        }
      } while (this.#leaseAgain && !this.#stopping);
    })().finally(() => {
      this.#leasing = undefined;
    });
    return this.#leasing;
  }

  async #renewAndClaim(): Promise<void> {
    const { db } = this.#deps;
    await this.#sweepStopped();
    const ttl = this.#options.leaseTtlMs;
    const census = await heartbeatWorker(
      db,
      { id: this.workerId, host: hostname(), pid: process.pid },
      ttl,
      FORGET_WORKERS_AFTER_MS,
    );
    const startedAt = this.#now();
    const keys = [...this.#held.keys()];
    const kept = new Set(await renewLanes(db, this.workerId, ttl, keys));
    const deadline = startedAt + ttl - Math.min(ttl / 3, 2000);
    for (const key of keys) {
      const h = this.#held.get(key);
      if (!h) continue;
      if (kept.has(key)) {
        h.deadline = deadline;
        h.lane.poke();
      } else {
        // Lost (the store cannot have renewed it): another worker may own it now. Send nothing more.
        this.#deps.logger.warn({ lane: key }, 'delivery lease lost');
        h.lane.stop();
        this.#forget(h);
      }
    }
    if (this.#stopping) return;
    const share = Math.ceil(census.activeWebhooks / Math.max(1, census.liveWorkers));
    // More than the share two rounds running (a worker joined and stayed): hand the surplus over.
    if (this.#held.size > share) {
      if (this.#surplusSeen) await this.#handOver(this.#held.size - share);
      this.#surplusSeen = true;
      return;
    }
    this.#surplusSeen = false;
    const room = share - this.#held.size;
    if (room === 0) return;
    const claimStartedAt = this.#now();
    const claimed = await claimLanes(db, this.workerId, ttl, Math.min(room, this.#options.claimBatch));
    for (const target of claimed) await this.#adopt(target, claimStartedAt + ttl - Math.min(ttl / 3, 2000));
    for (const target of claimed) {
      const h = this.#held.get(laneKey(target.webhookId, target.part));
      if (h && this.#changedWhileClaiming.has(target.webhookId)) await this.#refresh(h);
    }
    if (claimed.length === this.#options.claimBatch) this.#leaseAgain = true;
  }

  /**
   * Gives `count` lanes up gracefully, the least busy first: no new attempt starts, the attempts in flight
   * finish and are recorded, then the lease is released (with a NOTIFY, so a worker below its share claims it
   * at once). The next holder finds every acknowledged event recorded, so nothing is sent twice.
   */
  async #handOver(count: number): Promise<void> {
    const lanes = [...this.#held.values()].sort((a, b) => a.lane.held - b.lane.held).slice(0, count);
    for (const h of lanes) {
      this.#forget(h);
      h.lane.stop();
    }
    await Promise.all(lanes.map((h) => h.lane.idle()));
    await releaseLanes(
      this.#deps.db,
      this.workerId,
      lanes.map((h) => h.key),
    );
    this.#deps.logger.info({ lanes: lanes.map((h) => h.key) }, 'delivery lanes handed over');
  }

  /** Takes a claimed lane: its open rows first, then its changes above the cursor. */
  async #adopt(target: LaneTarget, deadline: number): Promise<void> {
    const key = laneKey(target.webhookId, target.part);
    const h: Held = {
      key,
      target,
      lane: undefined as unknown as Lane,
      ...this.#keysOf(target),
      deadline,
      reading: false,
      readAgain: false,
      behind: false,
      redeliveries: new Set(),
      expiry: undefined,
    };
    h.lane = new Lane(
      {
        limit: this.#limitOf(target),
        window: this.#options.window,
        attempt: (event) => this.#attempt(h, event),
        record: (records) => this.#record(h, records),
        loadEntity: async (entityId, after, limit) =>
          (await readEntityOpenRows(this.#deps.db, target.webhookId, entityId, after.version, limit)).map(
            fromOpenRow,
          ),
        // Until validUntil an attempt may start, if it can end before the lease may lapse (see #attempt).
        canStart: () => {
          const now = this.#now();
          return (
            h.target.active &&
            now < h.target.validUntil.getTime() &&
            h.deadline - now >= Math.min(this.#options.deliveryTimeoutMs, MIN_ATTEMPT_MS)
          );
        },
        stop: (reason) => void this.#stopWebhook(h, reason),
        clock: {
          now: this.#now,
          setTimer: (fn, ms) => {
            const timer = setTimeout(fn, ms);
            return () => clearTimeout(timer);
          },
        },
      },
      target.cursor,
    );
    this.#held.set(key, h);
    this.#armExpiry(h);
    let tenant = this.#byTenant.get(target.tenantId);
    if (!tenant) this.#byTenant.set(target.tenantId, (tenant = new Set()));
    tenant.add(h);
    try {
      const { heads, redeliveries } = await readLaneOpenHeads(this.#deps.db, target, this.#options.window);
      h.lane.restore(heads.map(fromOpenRow), true);
      for (const r of redeliveries) h.redeliveries.add(`${r.version}:${r.seq}`);
      h.lane.restore(redeliveries.map(fromOpenRow));
    } catch (error) {
      this.#deps.logger.warn({ err: error, lane: key }, 'could not load open deliveries');
    }
    this.#read(h);
  }

  #limitOf(target: LaneTarget): number {
    const limit = this.#options.maxInFlightPerWebhook;
    return Math.max(
      1,
      Math.floor(limit / target.partitions) + (target.part < limit % target.partitions ? 1 : 0),
    );
  }

  #keysOf(target: LaneTarget): Pick<Held, 'keys' | 'previousKey'> {
    const decrypt = (sealed: string) => decodeWebhookKey(this.#deps.decryptKey(sealed));
    return {
      keys: [decrypt(target.keyEncrypted)],
      previousKey:
        target.previousKeyEncrypted && target.previousKeyValidUntil
          ? { key: decrypt(target.previousKeyEncrypted), untilMs: target.previousKeyValidUntil.getTime() }
          : undefined,
    };
  }

  #armExpiry(h: Held): void {
    clearTimeout(h.expiry);
    const wait = h.target.validUntil.getTime() - this.#now();
    h.expiry = setTimeout(
      () => {
        if (this.#now() >= h.target.validUntil.getTime()) void this.#refresh(h);
        else this.#armExpiry(h);
      },
      Math.min(Math.max(0, wait) + 5, MAX_TIMER_MS),
    );
    h.expiry.unref();
  }

  #forget(h: Held): void {
    clearTimeout(h.expiry);
    this.#held.delete(h.key);
    this.#byTenant.get(h.target.tenantId)?.delete(h);
  }

  /** Re-reads a held lane's webhook after a notification: new keys or URL, or stop. */
  async #refresh(h: Held): Promise<void> {
    try {
      const target = await readLaneTarget(this.#deps.db, h.target.webhookId, h.target.part);
      if (!target || !target.active) {
        await this.#abandon(h);
        return;
      }
      Object.assign(h, { target: { ...target, cursor: h.target.cursor } }, this.#keysOf(target));
      h.lane.poke();
    } catch (error) {
      this.#deps.logger.warn({ err: error, lane: h.key }, 'could not read the webhook');
    }
  }

  /** The webhook stopped: abandon the lane's events (in memory and open rows) and give the lease up. */
  async #abandon(h: Held): Promise<void> {
    if (!this.#held.has(h.key)) return;
    this.#forget(h);
    const left = h.lane.stop();
    await h.lane.idle();
    const webhookId = h.target.webhookId;
    await abandonWebhook(
      this.#deps.db,
      webhookId,
      left.map((e) => ({ ...outcomeBase(webhookId, e), attemptCount: e.attempts })),
    ).catch((error: unknown) => this.#deps.logger.warn({ err: error }, 'could not abandon deliveries'));
    await releaseLanes(this.#deps.db, this.workerId, [h.key]).catch(() => undefined);
  }

  async #stopWebhook(h: Held, reason: DisabledReason): Promise<void> {
    try {
      await disableWebhook(this.#deps.db, h.target.webhookId, reason);
      this.#deps.logger.info({ webhookId: h.target.webhookId, reason }, 'webhook disabled');
    } catch (error) {
      this.#deps.logger.warn({ err: error }, 'could not disable the webhook');
    }
    h.target = { ...h.target, active: false };
    await this.#abandon(h);
  }

  /** Abandons the open rows of webhooks that stopped while no worker held them (every lease round). */
  async #sweepStopped(): Promise<void> {
    try {
      for (const id of await stoppedWebhooksWithOpenRows(this.#deps.db, 1000)) {
        await abandonWebhook(this.#deps.db, id, []);
      }
    } catch (error) {
      this.#deps.logger.warn({ err: error }, 'could not abandon the deliveries of stopped webhooks');
    }
  }

  // ---- reading the change log

  /** Reads the lane's changes above `through` into its window, as long as there is room and more. */
  #read(h: Held): void {
    if (h.reading) {
      h.readAgain = true;
      return;
    }
    h.reading = true;
    void (async () => {
      try {
        do {
          h.readAgain = false;
          const room = h.lane.room;
          if (room === 0) {
            h.behind = true;
            break;
          }
          h.behind = false;
          const { changes, through } = await readLaneChanges(this.#deps.db, h.target, h.lane.through, room);
          const events = await this.#eventsOf(h, changes);
          if (!this.#held.has(h.key)) break;
          if (!h.lane.offer(events, through)) {
            h.behind = true;
            break;
          }
          this.#recorder.noteCursor(h.key, h.lane.cursor);
          if (changes.length === room) h.readAgain = true;
        } while (h.readAgain && this.#held.has(h.key));
      } catch (error) {
        this.#deps.logger.warn({ err: error, lane: h.key }, 'could not read changes; retrying');
        setTimeout(() => this.#read(h), 1000).unref();
      } finally {
        h.reading = false;
      }
    })();
  }

  /** The lane's new events of these changes (those without a row), with their bodies. */
  async #eventsOf(h: Held, changes: LaneChange[]): Promise<LaneEvent[]> {
    const fresh = changes.filter((c) => c.row === null);
    const selection = h.target.externalReferences;
    const decorated =
      Object.keys(selection).length === 0
        ? undefined
        : await attachExternalReferencesToChanges(
            this.#deps.db,
            h.target.tenantId,
            h.target.collection as CollectionName,
            fresh.map((c) => ({
              changeType: c.changeType,
              data: JSON.parse(c.data) as Record<string, unknown>,
            })),
            selection,
          );
    return fresh.map((c, i) => ({
      version: c.version,
      seq: 0,
      entityId: c.entityId,
      changeType: c.changeType,
      body: decorated
        ? eventBody(c.changeType, JSON.stringify(decorated[i]!.data))
        : eventBody(c.changeType, c.data),
      committedAt: c.committedAt.getTime(),
      attempts: 0,
      dueAt: 0,
      hasRow: false,
    }));
  }

  // ---- attempts and records

  async #attempt(h: Held, event: LaneEvent): Promise<AttemptResult> {
    const now = this.#now();
    const id = messageId(h.target.webhookId, event.version);
    const timestamp = Math.floor(now / 1000);
    const keys = h.previousKey && h.previousKey.untilMs > now ? [...h.keys, h.previousKey.key] : h.keys;
    const body = Buffer.from(event.body);
    let result: SendResult;
    try {
      result = await this.#deps.send({
        url: h.target.destinationUrl,
        headers: {
          'content-type': 'application/json',
          'user-agent': this.#options.userAgent,
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(id, timestamp, body, keys),
        },
        body,
        // Cut at the lease deadline: no attempt of this worker is in flight once another may own the lane.
        timeoutMs: Math.max(1, h.deadline - now),
        // Connections of its own: another webhook's hanging requests never hold the ones this one needs.
        poolKey: h.target.webhookId,
      });
    } catch (error) {
      // send() reports receiver failures as results; an exception here is a bug, not an outcome.
      this.#deps.logger.error({ err: error, webhookId: h.target.webhookId }, 'delivery attempt crashed');
      result = {
        statusCode: undefined,
        retryAfter: undefined,
        error: 'internal error',
        durationMs: 0,
        responseBody: undefined,
      };
    }
    const at = this.#now();
    const outcome = classify(result, at);
    const attempt = event.attempts + 1;
    let decision: AttemptResult['decision'];
    if (outcome.type === 'delivered' || outcome.type === 'gone') decision = { type: outcome.type };
    else {
      const next = nextAttemptAt(outcome, attempt, this.#options.retryScheduleMs, at, this.#jitter);
      decision = next.type === 'retry' ? { type: 'retry', atMs: next.atMs } : { type: 'exhausted' };
    }
    this.#deps.observer.attempt(
      decision.type,
      result.durationMs,
      decision.type === 'delivered' ? at - event.committedAt : undefined,
    );
    return { decision, report: { ...result, at: now, attempt } satisfies Report };
  }

  async #record(h: Held, records: LaneRecord[]): Promise<void> {
    const rows = records.map((r): OutcomeRow => {
      const report = r.report as Report | null;
      return {
        ...outcomeBase(h.target.webhookId, r.event),
        status: r.status,
        attemptCount: r.event.attempts,
        nextAttemptAt: r.status === 'Failed' ? r.event.dueAt : null,
        attempt: report && {
          at: report.at,
          durationMs: report.durationMs,
          statusCode: report.statusCode ?? null,
          error: report.error ?? null,
          responseBody: report.responseBody ?? null,
        },
      };
    });
    this.#recorder.noteCursor(h.key, h.lane.cursor);
    const ids = await this.#recorder.record(rows);
    if (this.#attemptLogger.isLevelEnabled('info')) {
      for (const r of rows) {
        if (!r.attempt) continue;
        this.#attemptLogger.info(
          {
            webhookId: r.webhookId,
            deliveryId: ids.get(`${r.webhookId}:${r.version}:${r.seq}`),
            changeVersion: formatChangeVersion(r.version),
            entityId: r.entityId,
            attempt: r.attemptCount,
            statusCode: r.attempt.statusCode ?? undefined,
            error: r.attempt.error ?? undefined,
            durationMs: Math.round(r.attempt.durationMs),
            outcome: r.status === 'Delivered' ? 'delivered' : 'retry',
            nextAttemptAt: r.nextAttemptAt === null ? undefined : new Date(r.nextAttemptAt).toISOString(),
          },
          'delivery attempt',
        );
      }
    }
    // Once the lane has taken the outcome in (after this returns), its cursor may stand higher: note it.
    setImmediate(() => {
      if (this.#held.has(h.key)) this.#recorder.noteCursor(h.key, h.lane.cursor);
    });
    // A lane that stopped reading for lack of room reads on once its window has room again.
    if (h.behind && h.lane.room * 2 >= this.#options.window) this.#read(h);
  }

  async #write(records: OutcomeRow[], cursors: Map<string, number>): Promise<Recorded> {
    const list = [...cursors].flatMap(([key, cursor]) => {
      const h = this.#held.get(key);
      return h ? [{ webhookId: h.target.webhookId, part: h.target.part, cursor }] : [];
    });
    return writeOutcomes(this.#deps.db, records, list);
  }
}

interface Report extends SendResult {
  /** When the attempt started (ms since the epoch). */
  at: number;
  attempt: number;
}

const outcomeBase = (webhookId: string, e: LaneEvent) => ({
  webhookId,
  version: e.version,
  seq: e.seq,
  entityId: e.entityId,
  changeType: e.changeType,
  body: e.body,
  committedAt: e.committedAt,
});

const fromOpenRow = (r: OpenRow): LaneEvent => ({
  version: r.version,
  seq: r.seq,
  entityId: r.entityId,
  changeType: r.changeType,
  body: r.body,
  committedAt: r.committedAt.getTime(),
  attempts: r.attemptCount,
  dueAt: r.nextAttemptAt?.getTime() ?? 0,
  hasRow: true,
});
