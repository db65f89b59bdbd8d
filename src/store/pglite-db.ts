// The embedded adapter: PGlite on a worker thread of this process, one data directory, one writer.
// SQL runs on its own core while this thread serves HTTP. Every statement and transaction is serialized (PGlite
// has a single session), and the data directory is held with a lock file so a second process fails clearly
// instead of silently losing writes. PGlite itself, its parsers and start flags live in pglite-worker.js.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { StoreUnavailableError } from '../errors.ts';
import type { Db, NotificationHandler, Queryable } from './db.ts';

const LOCK_FILE = 'timehook.lock';

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `The data directory ${dataDir} is in use by another Timehook process (pid ${pid}). ` +
        `Stop that process first, or work through its HTTP API; a second writer would lose data.`,
    );
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data directory's lock file, or throws DataDirLockedError naming the live holder.
 * A lock left by a dead process (kill -9, power loss) is taken over, so a restart after a crash just works.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(path, 'utf8').trim());
    } catch {
      continue; // removed between our open and read: try again
    }
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new DataDirLockedError(dataDir, holder);
    }
    try {
      unlinkSync(path); // stale: its process is gone
    } catch {
      // another starter removed it first; the next open decides
    }
  }
  throw new Error(`Could not take the lock file ${path}; another process keeps replacing it.`);
}

/**
 * What the main thread posts to the worker; `tx` is 0 outside a transaction. `begin` has no answer: the
 * statements of the transaction follow it at once and wait in the worker for BEGIN, and `end` answers with the
 * outcome (or BEGIN's error). Everything outside a transaction queues in the worker in the order it was posted.
 */
type Request =
  | {
      id: number;
      op: 'query';
      sql: string;
      params: readonly unknown[];
      tx: number;
      buffers: number[] | undefined;
    }
  | { id: number; op: 'exec'; sql: string; tx: number }
  | { op: 'begin'; tx: number }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'listen'; channel: string; sub: number }
  | { id: number; op: 'unlisten'; sub: number }
  | { id: number; op: 'close' };

/** An error as the worker sends it: Error's own data plus every primitive own field (code, detail, …). */
interface WorkerError {
  message: string;
  name: string;
  stack: string | undefined;
  fields: Record<string, string | number | boolean | null | undefined>;
}

/** What the worker posts back: the answer to request `id` (rows for a query), or a notification for `sub`. */
type Reply =
  | { id: number; value: unknown; error?: undefined }
  | { id: number; value?: undefined; error: WorkerError }
  | { id?: undefined; sub: number; payload: string };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** The caller's parameters, put back on a failed statement's error as PGlite does in-process. */
  params: readonly unknown[] | undefined;
}

const WORKER_URL = new URL('./pglite-worker.js', import.meta.url);
/** Request id of the worker's first answer: PGlite started, or why it did not. */
const OPEN_ID = 0;

/** Re-creates PGlite's error field by field, so callers inspecting `code`, `constraint`, … see no difference. */
function fromWorkerError(sent: WorkerError, params: readonly unknown[] | undefined): Error {
  const error = Object.assign(new Error(sent.message), sent.fields);
  if ('params' in sent.fields) (error as { params?: unknown }).params = params;
  if (!Object.hasOwn(sent.fields, 'name') && sent.name !== 'Error') {
    Object.defineProperty(error, 'name', { value: sent.name, writable: true, configurable: true });
  }
  error.stack = sent.stack;
  return error;
}

/** Indexes of the Buffer parameters: structured clone turns them into plain Uint8Arrays, the worker turns them back. */
function bufferIndexes(params: readonly unknown[]): number[] | undefined {
  let indexes: number[] | undefined;
  for (let i = 0; i < params.length; i++) if (Buffer.isBuffer(params[i])) (indexes ??= []).push(i);
  return indexes;
}

class PgliteWorkerDb implements Db {
  readonly kind = 'pglite' as const;
  readonly #worker: Worker;
  readonly #release: () => void;
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<number, NotificationHandler>();
  #nextId = OPEN_ID + 1;
  #nextTx = 1;
  #nextSub = 1;
  #openTransactions = 0;
  #referenced = false;
  /** Set by close(): new work is refused; the statements of open transactions still run. */
  #closing = false;
  #closed: Promise<void> | undefined;
  /** Set once the worker is gone (closed, or died): every pending and later call rejects with it. */
  #failure: Error | undefined;
  /** Resolves once PGlite runs in the worker. */
  readonly started: Promise<unknown>;

  constructor(worker: Worker, release: () => void) {
    this.#worker = worker;
    this.#release = release;
    this.started = new Promise((resolve, reject) => {
      this.#pending.set(OPEN_ID, { resolve, reject, params: undefined });
    });
    this.#hold();
    worker.on('message', (reply: Reply) => this.#onReply(reply));
    worker.on('error', (error) =>
      this.#fail(
        new StoreUnavailableError(
          `The embedded store's worker thread failed (${error.message}); the store is unavailable until Timehook restarts.`,
          { cause: error },
        ),
      ),
    );
    worker.on('messageerror', (error) => {
      // An answer that cannot be read would leave its caller waiting forever: give up on the worker instead.
      this.#fail(
        new StoreUnavailableError(`The embedded store sent an unreadable answer (${error.message}).`),
      );
      void worker.terminate();
    });
    worker.on('exit', (code) =>
      this.#fail(
        this.#closed
          ? closedError()
          : new StoreUnavailableError(
              `The embedded store's worker thread exited unexpectedly (exit code ${code}); ` +
                'the store is unavailable until Timehook restarts.',
            ),
      ),
    );
  }

  query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.#query(sql, params, 0) as Promise<T[]>;
  }

  exec(sql: string): Promise<void> {
    return this.#exec(sql, 0);
  }

  /**
   * BEGIN runs in the worker once every earlier call is done, and the worker takes nothing else until this
   * transaction's end arrives: fn's statements are the only ones that run meanwhile. BEGIN is not waited for
   * here, which saves a round trip per transaction; a failed BEGIN fails fn's statements and the commit.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    if (this.#closing) throw closedError();
    if (this.#failure) throw this.#failure;
    const tx = this.#nextTx++;
    this.#openTransactions++;
    this.#hold();
    try {
      this.#worker.postMessage({ op: 'begin', tx } satisfies Request);
      let result: T;
      try {
        result = await fn({
          query: <R>(sql: string, params: readonly unknown[] = []) =>
            this.#query(sql, params, tx) as Promise<R[]>,
          exec: (sql: string) => this.#exec(sql, tx),
        });
      } catch (error) {
        await this.#request({ id: this.#nextId++, op: 'end', tx, commit: false }).catch(() => undefined);
        throw error;
      }
      await this.#request({ id: this.#nextId++, op: 'end', tx, commit: true });
      return result;
    } finally {
      this.#openTransactions--;
      this.#releaseIfIdle();
    }
  }

  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    if (this.#closing) throw closedError();
    const sub = this.#nextSub++;
    this.#handlers.set(sub, handler);
    try {
      await this.#request({ id: this.#nextId++, op: 'listen', channel, sub });
    } catch (error) {
      this.#handlers.delete(sub);
      throw error;
    }
    return async () => {
      try {
        if (this.#closing) throw closedError();
        await this.#request({ id: this.#nextId++, op: 'unlisten', sub });
      } finally {
        this.#handlers.delete(sub);
      }
    };
  }

  /** One process, one session: nobody else can hold the lock, and every statement already takes turns. */
  async tryWithLock(_key: number, fn: (session: Queryable) => Promise<void>): Promise<boolean> {
    await fn(this);
    return true;
  }

  async ping(): Promise<boolean> {
    return !this.#closing && this.#failure === undefined;
  }

  /** Waits for the work already asked for, closes PGlite (flushing it to disk), stops the worker, frees the lock. */
  close(): Promise<void> {
    this.#closing = true;
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  /** Test-only: stops the worker thread the way a crash would, without closing PGlite. */
  async crashForTests(): Promise<void> {
    await this.#worker.terminate();
  }

  async #shutdown(): Promise<void> {
    try {
      if (this.#failure === undefined) await this.#request({ id: this.#nextId++, op: 'close' });
    } finally {
      await this.#worker.terminate();
      this.#fail(closedError());
      this.#release();
    }
  }

  #query(sql: string, params: readonly unknown[], tx: number): Promise<unknown> {
    if (this.#closing && tx === 0) return Promise.reject(closedError());
    const buffers = bufferIndexes(params);
    const sent = buffers ? params.map((p) => (Buffer.isBuffer(p) ? new Uint8Array(p) : p)) : params;
    return this.#request({ id: this.#nextId++, op: 'query', sql, params: sent, tx, buffers }, params);
  }

  async #exec(sql: string, tx: number): Promise<void> {
    if (this.#closing && tx === 0) throw closedError();
    await this.#request({ id: this.#nextId++, op: 'exec', sql, tx });
  }

  #request(request: Exclude<Request, { op: 'begin' }>, params?: readonly unknown[]): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#worker.postMessage(request); // throws DataCloneError for a parameter structured clone cannot copy
      this.#pending.set(request.id, { resolve, reject, params });
      this.#hold();
    });
  }

  #onReply(reply: Reply): void {
    if (reply.id === undefined) {
      this.#handlers.get(reply.sub)?.(reply.payload);
      return;
    }
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    this.#releaseIfIdle();
    if (reply.error) pending.reject(fromWorkerError(reply.error, pending.params));
    else pending.resolve(reply.value);
  }

  /** Rejects everything pending and marks the store unusable; the first reason wins. */
  #fail(error: Error): void {
    this.#failure ??= error;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#handlers.clear();
    this.#releaseIfIdle();
    for (const p of pending) p.reject(this.#failure);
  }

  /**
   * The worker keeps the process alive only while work is in flight, as PGlite in-process did: an idle store
   * someone forgot to close never holds the process open, and a pending write is never cut off by exit.
   */
  #hold(): void {
    if (this.#referenced) return;
    this.#referenced = true;
    this.#worker.ref();
  }

  #releaseIfIdle(): void {
    if (!this.#referenced || this.#pending.size > 0 || this.#openTransactions > 0) return;
    this.#referenced = false;
    this.#worker.unref();
  }
}

const closedError = (): StoreUnavailableError =>
  new StoreUnavailableError(
    'The embedded store is closed (PGlite is closed); no statement runs after close().',
  );

/**
 * The worker's young generation, in MB (V8's default is far larger on 64-bit). The worker only turns
 * statements and rows into messages, so its garbage is short-lived and a small nursery suffices. Measured
 * on the backlog workload (bench workload 6, embedded, a 2-core machine shared with other work): 10,000 events,
 * peak RSS 335 -> 308 MB; 1,000,000 events, 505 MB (a run with heavy other load on the machine) -> 439 MB.
 * Throughput (workload 2) back to back stayed within noise (3,682 vs 3,927/s); a 2 MB nursery cost throughput.
 */
const WORKER_YOUNG_GENERATION_MB = 8;

/**
 * Starts PGlite on a worker thread. execArgv is emptied so the worker does not inherit `--import tsx` (it has
 * no TypeScript to load; see pglite-worker.js).
 */
async function startWorker(pgDataDir: string | undefined, release: () => void): Promise<Db> {
  const worker = new Worker(WORKER_URL, {
    workerData: { dataDir: pgDataDir },
    execArgv: [],
    resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
  });
  const db = new PgliteWorkerDb(worker, release);
  try {
    await db.started;
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return db;
}

/** Test-only: kills the worker thread of an embedded store as a crash would; see pglite-worker.test.ts. */
export async function crashPgliteWorkerForTests(db: Db): Promise<void> {
  if (!(db instanceof PgliteWorkerDb))
    throw new TypeError('crashPgliteWorkerForTests needs a store of openPgliteDb.');
  await db.crashForTests();
}

/**
 * Opens PGlite on dataDir (created if missing), or in memory when dataDir is undefined (tests). The lock file is
 * taken here, by the main thread, and names this process.
 */
export async function openPgliteDb(dataDir: string | undefined): Promise<Db> {
  if (dataDir === undefined) return startWorker(undefined, () => undefined);
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const release = acquireDataDirLock(dir);
  const pgdata = join(dir, 'pgdata');
  try {
    if (!existsSync(join(pgdata, 'PG_VERSION'))) {
      // A new data directory: PGlite runs initdb in the WebAssembly instance that then serves, and WebAssembly
      // memory never shrinks, so that process would keep initdb's peak for good (752 MB resident once ready,
      // against 240-258 MB when started on an existing directory). initdb gets a worker of its own, which is
      // stopped (its memory freed) before the serving one starts.
      await (await startWorker(pgdata, () => undefined)).close();
    }
    return await startWorker(pgdata, release);
  } catch (error) {
    release();
    throw error;
  }
}
