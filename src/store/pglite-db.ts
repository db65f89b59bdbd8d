// The embedded adapter: PGlite in this process, one data directory, one writer.
// Every statement and transaction is serialized (PGlite has a single session), and the data directory
// is held with a lock file so a second process fails clearly instead of silently losing writes.

import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { Mutex, type Db, type Queryable } from './db.ts';

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

const PARSERS = { [types.INT8]: (value: string) => Number(value) };

/**
 * PGlite's start flags plus a 16 MB buffer pool instead of the 128 MB initdb writes to postgresql.conf.
 * PostgreSQL's shared memory is an anonymous mmap, which Emscripten serves from the WASM heap and zero-fills,
 * so the whole pool is resident from the start, and WASM memory never shrinks. Measured through openStore
 * (2-core machine, Node v20.20.2, PGlite 0.5.17): idle 378-392 MB -> 263-277 MB; after writing 200k rows of
 * 600 bytes and paging through them, 420-438 MB -> 299-311 MB. CPU time of bulk inserts, 1,000-insert
 * transactions, single-row updates and paged reads stayed within run-to-run noise (about 10%): the data
 * files sit in the OS page cache, so a buffer miss costs one read(), not a disk seek.
 * The -c flag overrides postgresql.conf, so existing data directories get it too.
 */
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  readonly #mutex = new Mutex();

  constructor(
    private readonly pg: PGlite,
    private readonly release: () => void,
  ) {}

  query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.#mutex.run(async () => (await this.pg.query<T>(sql, params as unknown[])).rows);
  }

  exec(sql: string): Promise<void> {
    return this.#mutex.run(async () => {
      await this.pg.exec(sql);
    });
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#mutex.run(() =>
      this.pg.transaction(async (tx) =>
        fn({
          query: async <R>(sql: string, params: readonly unknown[] = []) =>
            (await tx.query<R>(sql, params as unknown[])).rows,
          exec: async (sql: string) => {
            await tx.exec(sql);
          },
        }),
      ),
    );
  }

  async listen(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    const unlisten = await this.#mutex.run(() => this.pg.listen(channel, handler));
    return () => this.#mutex.run(() => unlisten());
  }

  /** One process, one session: nobody else can hold the lock, and every statement already takes turns. */
  async tryWithLock(_key: number, fn: (session: Queryable) => Promise<void>): Promise<boolean> {
    await fn(this);
    return true;
  }

  async ping(): Promise<boolean> {
    return !this.pg.closed;
  }

  async close(): Promise<void> {
    await this.#mutex.run(async () => {
      if (!this.pg.closed) await this.pg.close();
    });
    this.release();
  }
}

/** Opens PGlite on dataDir (created if missing), or in memory when dataDir is undefined (tests). */
export async function openPgliteDb(dataDir: string | undefined): Promise<Db> {
  if (dataDir === undefined) {
    const pg = await PGlite.create({ parsers: PARSERS, startParams: START_PARAMS });
    return new PgliteDb(pg, () => undefined);
  }
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const release = acquireDataDirLock(dir);
  try {
    const pg = await PGlite.create({
      dataDir: join(dir, 'pgdata'),
      parsers: PARSERS,
      startParams: START_PARAMS,
    });
    return new PgliteDb(pg, release);
  } catch (error) {
    release();
    throw error;
  }
}
