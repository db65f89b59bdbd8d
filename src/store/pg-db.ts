// The server adapter: a pg Pool on DATABASE_URL, for many processes sharing one PostgreSQL.
// int8 is parsed to number here exactly as in the PGlite adapter, so callers never see the difference.

import pg from 'pg';
import { preparedName, type Db, type Queryable } from './db.ts';

const INT8_OID = 20;

export interface PgOptions {
  connectionString: string;
  poolSize: number;
  /** statement_timeout: a statement running longer is cancelled (57014). */
  statementTimeoutMs: number;
  /** lock_timeout: a statement waiting longer for a lock is cancelled (55P03). */
  lockTimeoutMs?: number;
  /** idle_in_transaction_session_timeout: a session idle this long inside a transaction is ended. */
  idleInTransactionTimeoutMs?: number;
  /** A schema to put first on the search_path (tests use one schema per file). */
  schema?: string;
}

/** How long ping() waits for an answer before reporting the store unreachable. */
const PING_TIMEOUT_MS = 2_000;
/** The LISTEN connection is retried with backoff up to this interval (notifications are lost while it is down). */
const LISTEN_RECONNECT_MAX_MS = 2_000;

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
    return (await this.pool.query(queryConfig(sql, params))).rows as T[];
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#withClient(async (client) => {
      await client.query('begin');
      try {
        const result = await fn(clientQueryable(client));
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      }
    });
  }

  async tryWithLock(key: number, fn: (session: Queryable) => Promise<void>): Promise<boolean> {
    return this.#withClient(async (client) => {
      const rows = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [
        key,
      ]);
      if (!rows.rows[0]?.locked) return false;
      try {
        await fn(clientQueryable(client));
      } finally {
        // When this fails the session is dropped (below), which releases the lock as well.
        await client.query('select pg_advisory_unlock($1)', [key]);
      }
      return true;
    });
  }

  /**
   * Runs fn with a client of its own. While checked out, a client's connection errors (server restart,
   * pg_terminate_backend, an idle-in-transaction timeout) are emitted outside any query; the pool does not
   * listen then, and an unheard 'error' event would end the process. They are heard here, and a client that
   * had one (or whose work failed on a broken connection) is destroyed instead of going back to the pool.
   */
  async #withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (error) {
      if (isConnectionError(error)) broken = true;
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
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
    try {
      for (const channel of this.#listeners.keys()) await client.query(`listen ${quoteIdent(channel)}`);
    } catch (error) {
      client.release(true);
      throw error;
    }
    this.#listenClient = client;
  }

  #scheduleReconnect(delayMs: number): void {
    const timer = setTimeout(() => {
      this.#connectListener().then(
        () => {
          for (const handlers of this.#listeners.values()) for (const h of handlers) h('');
        },
        () => {
          if (!this.#closed) this.#scheduleReconnect(Math.min(delayMs * 2, LISTEN_RECONNECT_MAX_MS));
        },
      );
    }, delayMs);
    timer.unref();
  }

  /** False when the store does not answer within PING_TIMEOUT_MS (refused, blocked or unreachable). */
  async ping(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.pool.query('select 1').then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
        }),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
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

/** Errors that say the connection itself is gone (as opposed to a failed statement on a good connection). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code.startsWith('08') || code.startsWith('57P') || code.startsWith('E')))
    return true;
  return /Connection terminated|connection error|not queryable/i.test((error as Error | null)?.message ?? '');
}

function queryConfig(sql: string, params: readonly unknown[]): pg.QueryConfig {
  const name = preparedName(sql);
  return name === undefined
    ? { text: sql, values: params as unknown[] }
    : { name, text: sql, values: params as unknown[] };
}

function clientQueryable(client: pg.PoolClient): Queryable {
  return {
    query: async <R>(sql: string, params: readonly unknown[] = []) =>
      (await client.query(queryConfig(sql, params))).rows as R[],
    exec: async (sql: string) => {
      await client.query(sql);
    },
  };
}

export async function openPgDb(options: PgOptions): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize,
    statement_timeout: options.statementTimeoutMs,
    ...(options.lockTimeoutMs ? { lock_timeout: options.lockTimeoutMs } : {}),
    ...(options.idleInTransactionTimeoutMs
      ? { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs }
      : {}),
    // A connection that silently died (network, host) is noticed by TCP keepalive, not only at the next query.
    keepAlive: true,
    connectionTimeoutMillis: 10_000,
    types: { getTypeParser: typeParser },
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  pool.on('error', () => undefined); // an idle client's connection dropped; the next query reconnects
  return new PgDb(pool);
}
