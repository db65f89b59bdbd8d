// @ts-check
// The embedded store's worker thread: owns the PGlite instance and runs the statements pglite-db.ts posts to it,
// so SQL executes on a core of its own. It knows nothing of Timehook's tables; the data-dir lock stays with the
// main thread.
//
// Plain JavaScript on purpose: a worker thread does not inherit the TypeScript loader of its parent on Node 20,
// whether tsx came in by `--import tsx` (the tests) or by tsx's register() in code (bin/timehook.js), so a .ts
// entry fails with ERR_UNKNOWN_FILE_EXTENSION. Registering tsx again inside the worker would work but costs
// about 20 MB more and a second loader; a file that needs no transpiling loads the same way under every start.

import { Buffer } from 'node:buffer';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, types } from '@electric-sql/pglite';

/**
 * @typedef {import('@electric-sql/pglite').Transaction} Transaction
 * @typedef {{ id: number, op: 'query', sql: string, params: unknown[], tx: number, buffers: number[] | undefined }
 *   | { id: number, op: 'exec', sql: string, tx: number }
 *   | { op: 'begin', tx: number }
 *   | { id: number, op: 'end', tx: number, commit: boolean }
 *   | { id: number, op: 'listen', channel: string, sub: number }
 *   | { id: number, op: 'unlisten', sub: number }
 *   | { id: number, op: 'close' }} Request
 * @typedef {{ message: string, name: string, stack: string | undefined,
 *   fields: Record<string, string | number | boolean | null | undefined> }} WorkerError
 * @typedef {{ opened: Promise<Transaction>, endId: number, commit: () => void, rollback: () => void }} TransactionEntry
 */

const PARSERS = { [types.INT8]: (/** @type {string} */ value) => Number(value) };

/**
 * PGlite's start flags plus a 16 MB buffer pool instead of the 128 MB initdb writes to postgresql.conf.
 * PostgreSQL's shared memory is an anonymous mmap, which Emscripten serves from the WASM heap and zero-fills,
 * so the whole pool is resident from the start, and WASM memory never shrinks. Measured through openStore
 * (2-core machine, Node v20.20.2, PGlite 0.5.17): idle 378-392 MB -> 263-277 MB; after writing 200k rows of
 * 600 bytes and paging through them, 420-438 MB -> 299-311 MB. CPU time of bulk inserts, 1,000-insert
 * transactions, single-row updates and paged reads stayed within run-to-run noise (about 10%): the data
 * files sit in the OS page cache, so a buffer miss costs one read(), not a disk seek.
 * The -c flag overrides postgresql.conf, so existing data directories get it too.
 *
 * No VACUUM just because rows were inserted (autovacuum_vacuum_insert_threshold = -1): Timehook runs VACUUM here
 * by autovacuum's rules (store/upkeep.ts), and here it stops every other statement while it runs; freezing is
 * left to the transaction-age rule.
 */
const START_PARAMS = [
  ...PGlite.defaultStartParams,
  '-c',
  'shared_buffers=16MB',
  '-c',
  'autovacuum_vacuum_insert_threshold=-1',
];

/** What a rollback rejects the transaction callback with; never leaves this file. */
const ROLLED_BACK = new Error('rolled back on request of the main thread');

/** A promise-chain mutex: PGlite has one session, so one statement or transaction at a time. */
class Mutex {
  /** @type {Promise<unknown>} */
  #tail = Promise.resolve();

  /**
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  run(fn) {
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * An error as plain data that structured clone keeps: PGlite's DatabaseError carries its PostgreSQL fields
 * (code, detail, constraint, …) as own properties, which postMessage would drop from an Error. `params` is left
 * as a marker: the main thread puts the caller's own array back.
 * @param {unknown} error
 * @returns {WorkerError}
 */
function toWorkerError(error) {
  if (!(error instanceof Error))
    return { message: String(error), name: 'Error', stack: undefined, fields: {} };
  /** @type {WorkerError['fields']} */
  const fields = {};
  for (const [key, value] of Object.entries(
    /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (error)),
  )) {
    if (key === 'params') fields[key] = undefined;
    else if (
      value == null ||
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean'
    ) {
      fields[key] = value;
    }
  }
  return { message: error.message, name: error.name, stack: error.stack, fields };
}

if (!parentPort) throw new Error('pglite-worker.js runs only as the worker thread that pglite-db.ts starts.');
const port = parentPort;
/** @type {unknown} */
const options = workerData;
/** PGlite's data directory; in memory when undefined. */
const dataDir =
  typeof options === 'object' &&
  options !== null &&
  'dataDir' in options &&
  typeof options.dataDir === 'string'
    ? options.dataDir
    : undefined;

/**
 * @param {number} id
 * @param {unknown} error
 */
const fail = (id, error) => port.postMessage({ id, error: toWorkerError(error) });
/**
 * Answers request `id`. A value structured clone cannot copy fails that request instead of this thread.
 * @param {number} id
 * @param {unknown} [value]
 */
function reply(id, value) {
  try {
    port.postMessage({ id, value });
  } catch (error) {
    fail(id, error);
  }
}

const started = await PGlite.create({
  ...(dataDir === undefined ? {} : { dataDir }),
  parsers: PARSERS,
  startParams: START_PARAMS,
}).catch((/** @type {unknown} */ error) => {
  fail(0, error); // the main thread terminates this thread on it
  return undefined;
});
if (started) serve(started);

/**
 * Answers the main thread's requests on pg until it is closed and this thread terminated.
 * @param {PGlite} pg
 */
function serve(pg) {
  const mutex = new Mutex();
  /** @type {Map<number, TransactionEntry>} */
  const transactions = new Map();
  /** @type {Map<number, () => Promise<void>>} */
  const unlisteners = new Map();

  /**
   * Registers a transaction at once, so its statements (which the main thread posts without waiting) find it,
   * and queues its BEGIN behind every earlier request. The transaction then holds the mutex until `end` lets
   * PGlite's transaction() commit or roll back; the outcome is the answer to `end`.
   * @param {number} tx
   */
  function begin(tx) {
    /** @type {(handle: Transaction) => void} */
    let onOpen = () => undefined;
    /** @type {(error: unknown) => void} */
    let onFail = () => undefined;
    /** @type {TransactionEntry} */
    const entry = {
      opened: new Promise((resolve, reject) => {
        onOpen = resolve;
        onFail = reject;
      }),
      endId: 0,
      commit: () => undefined,
      rollback: () => undefined,
    };
    entry.opened.catch(() => undefined); // a failed BEGIN is the answer to the statements and to `end`
    transactions.set(tx, entry);
    void mutex.run(async () => {
      let opened = false;
      try {
        await pg.transaction(
          (handle) =>
            new Promise((commit, rollback) => {
              entry.commit = () => commit(undefined);
              entry.rollback = () => rollback(ROLLED_BACK);
              opened = true;
              onOpen(handle);
            }),
        );
        reply(entry.endId);
      } catch (error) {
        if (!opened) return onFail(error);
        if (error === ROLLED_BACK) reply(entry.endId);
        else fail(entry.endId, error);
      }
      transactions.delete(tx);
    });
  }

  /**
   * @param {Extract<Request, { op: 'end' }>} request
   */
  function end({ id, tx, commit }) {
    const entry = transactions.get(tx);
    if (!entry) return fail(id, new Error('Transaction is closed'));
    entry.endId = id;
    entry.opened.then(
      () => (commit ? entry.commit() : entry.rollback()),
      (error) => {
        transactions.delete(tx);
        fail(id, error);
      },
    );
  }

  /**
   * The handle of a transaction once BEGIN ran, or the error PGlite gives for a transaction used after it ended.
   * @param {number} tx
   * @returns {Promise<Transaction>}
   */
  function transactionOf(tx) {
    return transactions.get(tx)?.opened ?? Promise.reject(new Error('Transaction is closed'));
  }

  /**
   * Buffers arrive as plain Uint8Arrays; PGlite serializes a Buffer differently where it calls toString()
   * (a text parameter), so they become Buffers again.
   * @param {Extract<Request, { op: 'query' }>} request
   * @returns {Promise<unknown[]>}
   */
  async function query(request) {
    const { params, buffers } = request;
    if (buffers) {
      for (const i of buffers) {
        const bytes = /** @type {Uint8Array} */ (params[i]);
        params[i] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      }
    }
    const target = request.tx === 0 ? pg : await transactionOf(request.tx);
    /** @type {import('@electric-sql/pglite').Results<unknown>} */
    const result = await target.query(request.sql, params);
    return result.rows;
  }

  /**
   * @param {Extract<Request, { op: 'exec' }>} request
   */
  async function exec(request) {
    await (request.tx === 0 ? pg : await transactionOf(request.tx)).exec(request.sql);
  }

  /**
   * @param {Extract<Request, { op: 'listen' }>} request
   */
  async function listen({ channel, sub }) {
    unlisteners.set(sub, await pg.listen(channel, (payload) => port.postMessage({ sub, payload })));
  }

  /**
   * @param {number} sub
   */
  async function unlisten(sub) {
    const unlistenFn = unlisteners.get(sub);
    unlisteners.delete(sub);
    if (unlistenFn) await unlistenFn();
  }

  /**
   * @param {Promise<unknown>} work
   * @param {number} id
   */
  function answer(work, id) {
    work.then(
      (value) => reply(id, value),
      (error) => fail(id, error),
    );
  }

  // Statements of the open transaction bypass the mutex (the transaction holds it); everything else queues in
  // arrival order, which is the order of the calls in the main thread.
  port.on('message', (/** @type {Request} */ request) => {
    switch (request.op) {
      case 'query':
        return answer(request.tx === 0 ? mutex.run(() => query(request)) : query(request), request.id);
      case 'exec':
        return answer(request.tx === 0 ? mutex.run(() => exec(request)) : exec(request), request.id);
      case 'begin':
        return begin(request.tx);
      case 'end':
        return end(request);
      case 'listen':
        return answer(
          mutex.run(() => listen(request)),
          request.id,
        );
      case 'unlisten':
        return answer(
          mutex.run(() => unlisten(request.sub)),
          request.id,
        );
      case 'close':
        return answer(
          mutex.run(() => pg.close()),
          request.id,
        );
    }
  });
  reply(0);
}
