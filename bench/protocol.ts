// The messages between bench/run.ts and its child processes (receiver.ts, ceiling.ts, peers/child.ts), sent
// over the IPC channel with advanced serialization (so Maps and Float64Arrays cross as they are). Types only.

/**
 * How a receiver port answers: "ok" 200; "down" 503; "hang" never; "flaky" 500 to the first attempt of about
 * one webhook-id in a hundred (bench/failures.ts) and 200 to everything else, that id's retries included.
 */
export type ReceiverMode = 'ok' | 'down' | 'hang' | 'flaky';

export type ReceiverMessage =
  | { t: 'keys'; id: number; keys: [path: string, keys: string[]][] }
  | { t: 'mode'; id: number; port: number; mode: ReceiverMode }
  | { t: 'counts'; id: number }
  | { t: 'report'; id: number; arrivals: boolean }
  | { t: 'reset'; id: number };

export type ReceiverReply = { t: 'ready'; ports: number[] } | { t: 'reply'; id: number; data: unknown };

export interface ReceiverCounts {
  /** First arrivals (distinct changeVersions per path) answered 200. */
  firsts: number;
  /** Requests answered 200, duplicates included. */
  requests: number;
  /** Requests answered 503 in "down" mode. */
  refused: number;
  /** Requests left hanging in "hang" mode. */
  hangs: number;
  /** First attempts answered 500 in "flaky" mode. */
  failedFirstAttempts: number;
}

/** What one URL path (one webhook) received. Times are epoch ms (performance.timeOrigin + now()). */
export interface PathReport {
  path: string;
  requests: number;
  firsts: number;
  duplicates: number;
  missingHeaders: number;
  badBodies: number;
  sigChecked: number;
  sigFailed: number;
  firstAt: number;
  lastAt: number;
  /** A few duplicates: the version, its entity, and how long after its first arrival it came again. */
  duplicateSamples: { version: number; entity: number; afterMs: number }[];
  /** entity id → changeVersions (as numbers) in the order of their first arrival. */
  entities: Map<number, number[]>;
  /** With arrivals: the first arrival of each version, in arrival order. */
  versions?: Float64Array;
  times?: Float64Array;
}

export interface ReceiverReport extends ReceiverCounts {
  paths: PathReport[];
}

export interface CeilingRequest {
  url: string;
  key: string;
  count: number;
  concurrency: number;
  entities: number;
  firstVersion: number;
  deadlineMs: number;
  /** Requests sent first, to `warmupUrl`, and not counted: JIT, connections and the receiver warm up. */
  warmup: number;
  warmupUrl: string;
}

export interface CeilingResult {
  sent: number;
  ok: number;
  errors: number;
  firstError: string | undefined;
  startedAt: number;
  endedAt: number;
  bodyBytes: number;
  /** The sender's CPU seconds in its warm-up and timed loop, without the process start. */
  loopCpuSeconds: number;
}

/** A peer's webhook: its name (in job payloads, queue names and webhook-ids), where it sends, and its key. */
export interface PeerWebhook {
  name: string;
  url: string;
  /** "whsec_<base64>", like a Timehook webhook's. */
  key: string;
}

export type PeerKind = 'graphile' | 'bullmq';

/** How a peer process (bench/peers/child.ts) sets itself up. */
export interface PeerConfig {
  kind: PeerKind;
  webhooks: PeerWebhook[];
  /** Jobs run at once: graphile-worker's concurrency, or each BullMQ Worker's (one Worker per webhook). */
  concurrency: number;
  maxAttempts: number;
  /** BullMQ's backoff delay (exponential); graphile-worker 0.16's backoff is fixed in its SQL. */
  retryDelayMs: number;
  /** graphile: its scratch database. */
  databaseUrl?: string;
  /** bullmq: the Redis server and the key prefix of this run's queues. */
  redisUrl?: string;
  redisPrefix?: string;
}

/** The changes a peer's loader writes: batches of (entity, round), each change to every webhook. */
export interface PeerWritePlan {
  batches: [entity: number, round: number][][];
  /** A steady stream: batch k is due k × intervalMs after the start. Undefined: as fast as maxInFlight allows. */
  intervalMs?: number;
  maxInFlight: number;
  /** The changeVersion of the first change; the rest follow in write order. */
  firstVersion: number;
}

/** What the loader wrote, one entry per change, and when (epoch ms). */
export interface PeerWriteResult {
  startedAt: number;
  endedAt: number;
  batches: number;
  changes: number;
  maxLateMs: number;
  entities: Float64Array;
  versions: Float64Array;
  /** When the insert of the change's batch was sent, and when it returned (committed). */
  sentAt: Float64Array;
  committedAt: Float64Array;
}

export interface PeerReady {
  /** bullmq: the Redis server's process id and version (its CPU is metered when it runs here). */
  redisPid?: number;
  redisVersion?: string;
}

/** What the peer's sender did over its life: POSTs made, and those that failed (non-2xx or an error). */
export interface PeerStats {
  attempts: number;
  failedAttempts: number;
  firstFailure: string | undefined;
}

export type PeerMessage =
  { t: 'start'; config: PeerConfig } | { t: 'write'; plan: PeerWritePlan } | { t: 'stop' };

export type PeerReply =
  | { t: 'ready'; info: PeerReady }
  | { t: 'written'; result: PeerWriteResult }
  | { t: 'stopped'; stats: PeerStats }
  | { t: 'failed'; error: string };
