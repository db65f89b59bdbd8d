// The server adapter: a pg Pool on DATABASE_URL, for many processes sharing one PostgreSQL.
// int8 is parsed to number here exactly as in the PGlite adapter, so callers never see the difference.

import pg from 'pg';
import type { Db, Queryable } from './db.ts';

const INT8_OID = 20;

export interface PgOptions {
  connectionString: string;
  poolSize: number;
  statementTimeoutMs: number;
  /** A schema to put first on the search_path (tests use one schema per file). */
  schema?: string;
}

function typeParser(oid: number, format?: string): (value: string) => unknown {
  if (oid === INT8_OID) return Number;
  return pg.types.getTypeParser(oid, format as 'text') as (value: string) => unknown;
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

class PgDb implements Db {
  readonly kind = 'pg' as const;
  readonly #listeners = new Map<string, Set<(payload: string) => void>>();
  #listenClient: pg.PoolClient | undefined;
  #closed = false;

  constructor(private readonly pool: pg.Pool) {}

  async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.pool.query({ text: sql, values: params as unknown[] })).rows as T[];
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      const result = await fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) =>
          (await client.query({ text: sql, values: params as unknown[] })).rows as R[],
        exec: async (sql: string) => {
          await client.query(sql);
        },
      });
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * LISTEN on one dedicated connection. When that connection drops (server restart, network), it is
   * re-established with backoff and every handler is called once with an empty payload, because
   * notifications sent while it was down are lost: listeners must then rescan.
   */
  async listen(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    let handlers = this.#listeners.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.#listeners.set(channel, handlers);
      if (this.#listenClient) await this.#listenClient.query(`listen ${quoteIdent(channel)}`);
    }
    handlers.add(handler);
    if (!this.#listenClient) await this.#connectListener();
    return async () => {
      handlers.delete(handler);
    };
  }

  async #connectListener(): Promise<void> {
    const client = await this.pool.connect();
    const onDrop = () => {
      if (this.#listenClient !== client) return; // already handled, or released by close()
      this.#listenClient = undefined;
      client.release(true);
      if (!this.#closed) this.#scheduleReconnect(250);
    };
    client.on('error', onDrop);
    client.on('end', onDrop);
    client.on('notification', (msg) => {
      for (const h of this.#listeners.get(msg.channel) ?? []) h(msg.payload ?? '');
    });
    for (const channel of this.#listeners.keys()) await client.query(`listen ${quoteIdent(channel)}`);
    this.#listenClient = client;
  }

  #scheduleReconnect(delayMs: number): void {
    const timer = setTimeout(() => {
      this.#connectListener().then(
        () => {
          for (const handlers of this.#listeners.values()) for (const h of handlers) h('');
        },
        () => {
          if (!this.#closed) this.#scheduleReconnect(Math.min(delayMs * 2, 5_000));
        },
      );
    }, delayMs);
    timer.unref();
  }

  async ping(): Promise<boolean> {
    try {
      await this.pool.query('select 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const listener = this.#listenClient;
    this.#listenClient = undefined;
    listener?.release();
    await this.pool.end();
  }
}

export async function openPgDb(options: PgOptions): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize,
    statement_timeout: options.statementTimeoutMs,
    connectionTimeoutMillis: 10_000,
    types: { getTypeParser: typeParser },
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  pool.on('error', () => undefined); // an idle client's connection dropped; the next query reconnects
  return new PgDb(pool);
}
