// One lane of delivery engine v2 (docs/design/delivery.md): the events of one leased webhook (or partition)
// in memory, and the one place per-entity order lives. An entity's next event is released only when the
// previous one's outcome is durable, so after a crash at most the last acknowledged event of an entity is
// sent again. While an entity's head fails, its later events are spilled: written as Pending rows and dropped
// from memory, and read back in order once the head is delivered, so a failing entity never fills the window.
// Knows nothing of SQL or HTTP: attempts, records and loads are handed in as functions.

import { Deque, MinHeap } from './queues.ts';

/** One event of the lane: a change as this webhook receives it. */
export interface LaneEvent {
  /** The change's tenant-wide version (changeVersion). */
  readonly version: number;
  /** 0 for the event itself; 1, 2… for redeliveries of it. */
  readonly seq: number;
  readonly entityId: number;
  readonly changeType: 'InsertOrUpdate' | 'Delete';
  /** The exact bytes of every attempt. */
  readonly body: string;
  /** When the change was committed (ms since the epoch), for the commit-to-acknowledge latency. */
  readonly committedAt: number;
  /** Attempts made so far (0 for a fresh event). */
  attempts: number;
  /** When the next attempt is due (ms since the epoch); 0 = now. */
  dueAt: number;
  /** The event has a deliveries row (restored from one, or recorded since). */
  hasRow: boolean;
}

/** What one attempt came to, decided by the engine from the answer, the retry policy and the clock. */
export type AttemptDecision =
  | { type: 'delivered' }
  | { type: 'retry'; atMs: number }
  /** The retry schedule is used up: the webhook becomes RetriesExhausted. */
  | { type: 'exhausted' }
  /** 410: the webhook becomes EndpointGone. */
  | { type: 'gone' };

export interface AttemptResult {
  decision: AttemptDecision;
  /** What the recorder keeps of the attempt (status, duration, error, answer). */
  report: unknown;
}

/** An outcome for the recorder: the event's new status, with the attempt that led to it. */
export interface LaneRecord {
  event: LaneEvent;
  /** Pending: a spilled event, written with its body to be read back later. */
  status: 'Delivered' | 'Failed' | 'Pending';
  /** The attempt's report, or null when no attempt was made (Pending). */
  report: unknown;
}

export interface Clock {
  now(): number;
  /** Calls fn after ms; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export interface LaneDeps {
  /** Attempts in flight at most (TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK). */
  readonly limit: number;
  /** Events held in memory at most; past it the lane stops taking events (they wait in the change log). */
  readonly window: number;
  /** One signed POST of the event and its decision. Never rejects. */
  attempt(event: LaneEvent): Promise<AttemptResult>;
  /** Writes the records in one batch; resolves once they are durable. Rejects only when the lane must stop. */
  record(records: LaneRecord[]): Promise<void>;
  /**
   * The entity's rows (spilled or open) after (version, seq), in order, at most `limit`, as events with rows.
   */
  loadEntity(entityId: number, after: { version: number; seq: number }, limit: number): Promise<LaneEvent[]>;
  /** May an attempt start now (the lease is good for longer than an attempt can take)? */
  canStart(): boolean;
  /** The webhook must stop: its endpoint is gone or an event exhausted its retries. */
  stop(reason: 'EndpointGone' | 'RetriesExhausted'): void;
  clock: Clock;
}

interface EntityQueue {
  /** The entity's events in memory in version order; events[0] is the head. */
  readonly events: Deque<LaneEvent>;
  /** The head is being attempted, or its outcome is being recorded. */
  busy: boolean;
  /** Later events of the entity may be in the store (spilled or open rows), not in memory. */
  spilled: boolean;
  /** Spill writes in flight, and spill writes started since the last load began. */
  spilling: number;
  spilledSinceLoad: number;
  loading: boolean;
  /** The last event of the entity that entered memory (where a load continues from). */
  last: { version: number; seq: number };
}

/** Rows of one entity read back per load. */
export const ENTITY_LOAD = 100;

/**
 * The lane. Offer it events in version order (offer), and it sends them: per entity one at a time in order,
 * across entities up to `limit` at once, due retries on timers, fresh events first when both wait.
 */
export class Lane {
  readonly #deps: LaneDeps;
  readonly #entities = new Map<number, EntityQueue>();
  /** Entities whose head is ready to send now, in the order they became ready. */
  readonly #ready = new Deque<number>();
  /** Entities whose head waits for a retry, by due time. */
  readonly #retries = new MinHeap<number>();
  /** Entities whose retry is due, in due order, waiting for a slot. */
  readonly #dueRetries = new Deque<number>();
  /** Versions taken in and not yet recorded, in version order (a version leaves the front once recorded). */
  readonly #open = new Deque<number>();
  readonly #recorded = new Set<number>();
  #held = 0;
  #inFlight = 0;
  #retriesInFlight = 0;
  #through: number;
  #cancelTimer: (() => void) | undefined;
  #timerAt = Infinity;
  #stopped = false;
  readonly #idleWaiters: (() => void)[] = [];

  /** `through`: the version the lane's store cursor stands at; events come from above it. */
  constructor(deps: LaneDeps, through: number) {
    this.#deps = deps;
    this.#through = through;
  }

  /** The highest version taken in (or skipped); the next events come from above it. */
  get through(): number {
    return this.#through;
  }

  /** Every version at or below this has its row: the lane's cursor. */
  get cursor(): number {
    this.#dropRecordedFront();
    const lowest = this.#open.peek();
    return lowest === undefined ? this.#through : lowest - 1;
  }

  /** Events held in memory. */
  get held(): number {
    return this.#held;
  }

  get room(): number {
    return Math.max(0, this.#deps.window - this.#held);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Takes events in version order (each above `through`, none twice) and raises `through` to `upTo`, which
   * also covers versions of other collections in between. Returns false, taking nothing, when the events do
   * not fit in the window.
   */
  offer(events: readonly LaneEvent[], upTo: number): boolean {
    if (this.#stopped) return false;
    if (events.length > this.room) return false;
    for (const event of events) {
      if (event.version <= this.#through && event.seq === 0) continue;
      this.#take(event);
    }
    this.#through = Math.max(this.#through, upTo);
    this.#pump();
    return true;
  }

  /**
   * Takes events that already have rows, in version order per entity: redeliveries, or at a claim the first open
   * row of each entity (`more`: the entity may have further rows, read back when this one is delivered).
   */
  restore(events: readonly LaneEvent[], more = false): void {
    if (this.#stopped) return;
    for (const event of events) {
      this.#take({ ...event, hasRow: true });
      if (more) this.#entities.get(event.entityId)!.spilled = true;
    }
    this.#pump();
  }

  /** Tries to start attempts again (the lease was renewed, so canStart may say yes now). */
  poke(): void {
    this.#pump();
  }

  /** Resolves once no attempt is in flight (after stop: once the last attempts are recorded). */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #settled(): void {
    if (this.#inFlight > 0) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /**
   * Stops starting attempts; attempts in flight finish and are recorded (see idle). Returns the events held
   * that are not in flight, for the caller to abandon or leave owed.
   */
  stop(): LaneEvent[] {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const left: LaneEvent[] = [];
    for (const queue of this.#entities.values()) {
      if (queue.busy) queue.events.shift();
      for (let e = queue.events.shift(); e; e = queue.events.shift()) left.push(e);
    }
    this.#entities.clear();
    this.#ready.clear();
    this.#retries.clear();
    this.#held = 0;
    return left;
  }

  #queueOf(entityId: number): EntityQueue {
    let queue = this.#entities.get(entityId);
    if (!queue) {
      queue = {
        events: new Deque(),
        busy: false,
        spilled: false,
        spilling: 0,
        spilledSinceLoad: 0,
        loading: false,
        last: { version: 0, seq: 0 },
      };
      this.#entities.set(entityId, queue);
    }
    return queue;
  }

  #take(event: LaneEvent): void {
    const queue = this.#queueOf(event.entityId);
    if (!event.hasRow) this.#open.push(event.version);
    if (queue.spilled && !event.hasRow) {
      void this.#spill(event.entityId, queue, [event]);
      return;
    }
    queue.events.push(event);
    queue.last = { version: event.version, seq: event.seq };
    this.#held++;
    if (queue.events.size === 1 && !queue.busy) this.#schedule(event.entityId, event);
  }

  /** Writes an entity's events as Pending rows and keeps them out of memory until they are read back. */
  async #spill(entityId: number, queue: EntityQueue, events: LaneEvent[]): Promise<void> {
    queue.spilled = true;
    queue.spilling++;
    queue.spilledSinceLoad++;
    const ok = await this.#recordQuietly(events.map((event) => ({ event, status: 'Pending', report: null })));
    queue.spilling--;
    if (!ok || this.#stopped) return;
    for (const e of events) {
      e.hasRow = true;
      this.#recorded.add(e.version);
    }
    if (queue.events.size === 0 && !queue.busy) void this.#load(entityId, queue);
  }

  /** Reads a spilled entity's next rows back into memory once its spill writes are durable. */
  async #load(entityId: number, queue: EntityQueue): Promise<void> {
    if (queue.loading || queue.spilling > 0 || this.#stopped) return;
    queue.loading = true;
    queue.spilledSinceLoad = 0;
    let rows: LaneEvent[];
    try {
      rows = await this.#deps.loadEntity(entityId, queue.last, ENTITY_LOAD);
    } catch {
      queue.loading = false;
      this.stop();
      return;
    }
    queue.loading = false;
    if (this.#stopped) return;
    for (const row of rows) {
      queue.events.push({ ...row, hasRow: true });
      queue.last = { version: row.version, seq: row.seq };
      this.#held++;
    }
    if (rows.length < ENTITY_LOAD && queue.spilling === 0 && queue.spilledSinceLoad === 0)
      queue.spilled = false;
    const head = queue.events.peek();
    if (head && !queue.busy) this.#schedule(entityId, head);
    else if (!head && queue.spilled) void this.#load(entityId, queue);
    else if (!head && !queue.busy && queue.spilling === 0) this.#entities.delete(entityId);
    this.#pump();
  }

  /** Puts an entity whose head is not busy where it waits: ready now, or on the retry heap. */
  #schedule(entityId: number, head: LaneEvent): void {
    if (head.dueAt <= this.#deps.clock.now()) this.#ready.push(entityId);
    else this.#retries.push(head.dueAt, entityId);
  }

  #pump(): void {
    if (this.#stopped) return;
    const now = this.#deps.clock.now();
    while (this.#retries.size > 0 && this.#retries.peekKey()! <= now) {
      const entityId = this.#retries.pop()!;
      this.#dueRetries.push(entityId);
    }
    while (this.#inFlight < this.#deps.limit && this.#deps.canStart()) {
      const entityId = this.#nextEntity();
      if (entityId === undefined) break;
      const queue = this.#entities.get(entityId);
      const head = queue?.events.peek();
      if (!queue || !head || queue.busy) continue;
      queue.busy = true;
      this.#inFlight++;
      const isRetry = head.attempts > 0;
      if (isRetry) this.#retriesInFlight++;
      void this.#attempt(entityId, queue, head, isRetry);
    }
    this.#armTimer();
  }

  /** Fresh events first; due retries take at most half the slots while fresh events wait. */
  #nextEntity(): number | undefined {
    const retryShare = this.#retriesInFlight < Math.max(1, Math.floor(this.#deps.limit / 2));
    if (this.#dueRetries.size > 0 && (this.#ready.size === 0 || retryShare)) return this.#dueRetries.shift();
    return this.#ready.shift();
  }

  async #attempt(entityId: number, queue: EntityQueue, head: LaneEvent, isRetry: boolean): Promise<void> {
    const result = await this.#deps.attempt(head);
    head.attempts++;
    this.#inFlight--;
    if (isRetry) this.#retriesInFlight--;
    const decision = result.decision;
    if (decision.type === 'retry') head.dueAt = decision.atMs;
    if (this.#stopped) {
      // A stopped lane still records what its last attempts came to (an acknowledged event is not sent again).
      const status = decision.type === 'delivered' ? 'Delivered' : 'Failed';
      await this.#recordQuietly([{ event: head, status, report: result.report }]);
      this.#settled();
      return;
    }
    if (decision.type === 'gone' || decision.type === 'exhausted') {
      await this.#recordQuietly([{ event: head, status: 'Failed', report: result.report }]);
      this.#deps.stop(decision.type === 'gone' ? 'EndpointGone' : 'RetriesExhausted');
      return;
    }
    // The slot is free for other entities while this outcome is recorded.
    this.#pump();
    const status = decision.type === 'delivered' ? 'Delivered' : 'Failed';
    if (!(await this.#recordQuietly([{ event: head, status, report: result.report }]))) return;
    if (!head.hasRow) {
      head.hasRow = true;
      this.#recorded.add(head.version);
    }
    queue.busy = false;
    if (decision.type === 'delivered') {
      queue.events.shift();
      this.#held--;
      const next = queue.events.peek();
      if (next) this.#schedule(entityId, next);
      else if (queue.spilled) void this.#load(entityId, queue);
      else this.#entities.delete(entityId);
    } else {
      this.#retries.push(head.dueAt, entityId);
      // The head waits for its retry: its followers wait in the store, not in the window.
      const tail: LaneEvent[] = [];
      for (let e = queue.events.shift(); e; e = queue.events.shift()) if (e !== head) tail.push(e);
      queue.events.push(head);
      // Redeliveries stay in memory: they are read back only when asked for, not with the entity's rows.
      for (const e of tail) if (e.seq > 0) queue.events.push(e);
      // From now until the entity's rows are drained, its later events go to the store as well.
      queue.spilled = true;
      const spilled = tail.filter((e) => e.seq === 0);
      if (spilled.length > 0) {
        this.#held -= spilled.length;
        queue.last = { version: head.version, seq: head.seq };
        const fresh = spilled.filter((e) => !e.hasRow);
        if (fresh.length > 0) void this.#spill(entityId, queue, fresh);
      }
    }
    this.#pump();
    this.#settled();
  }

  /** Records; on a store failure the lane stops (the engine releases it and the events stay owed). */
  async #recordQuietly(records: LaneRecord[]): Promise<boolean> {
    try {
      await this.#deps.record(records);
      return true;
    } catch {
      this.stop();
      return false;
    }
  }

  #dropRecordedFront(): void {
    for (let v = this.#open.peek(); v !== undefined && this.#recorded.has(v); v = this.#open.peek()) {
      this.#open.shift();
      this.#recorded.delete(v);
    }
  }

  #armTimer(): void {
    const next = this.#retries.peekKey();
    if (next === undefined || next >= this.#timerAt) return;
    this.#cancelTimer?.();
    this.#timerAt = next;
    this.#cancelTimer = this.#deps.clock.setTimer(
      () => {
        this.#timerAt = Infinity;
        this.#cancelTimer = undefined;
        this.#pump();
      },
      Math.max(0, next - this.#deps.clock.now()),
    );
  }
}
