// The messages between bench/run.ts and its child processes (receiver.ts, ceiling.ts), sent over the IPC
// channel with advanced serialization (so Maps and Float64Arrays cross as they are). Types only.

export type ReceiverMode = 'ok' | 'down' | 'hang';

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
