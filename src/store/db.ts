// The Db port: the one interface every store function is written against, with a PGlite and a pg adapter.
// Nothing outside store/ issues SQL; callers get functions named by intent.

export interface Queryable {
  /** Runs one statement with positional parameters ($1…) and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export type NotificationHandler = (payload: string) => void;

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'pg';
  /** Runs fn inside one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribes to NOTIFY on a channel; resolves to an unsubscribe function. */
  listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>>;
  /**
   * Runs fn on one session while it holds the advisory lock `key`, taken without waiting: resolves false at
   * once when another session holds it. Statements of fn run outside any transaction (each commits on its own),
   * so long work in bounded batches never holds row locks for long; the lock dies with its session.
   */
  tryWithLock(key: number, fn: (session: Queryable) => Promise<void>): Promise<boolean>;
  /** True when a trivial query answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
