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

const preparedNames = new Map<string, string>();

/**
 * Marks a hot statement of constant text to be prepared once per connection on PostgreSQL: later calls skip
 * parsing and planning (about a third of a small statement's server CPU here). Returns the text unchanged; the
 * PGlite adapter ignores the mark. Each marked text costs a prepared statement on every pooled connection, so
 * mark only the few statements that run per batch of deliveries, never a text built per call.
 */
export function prepared(sql: string): string {
  if (!preparedNames.has(sql)) preparedNames.set(sql, `timehook_${preparedNames.size + 1}`);
  return sql;
}

/** The name under which a statement marked by prepared() is prepared, or undefined. */
export function preparedName(sql: string): string | undefined {
  return preparedNames.get(sql);
}

/**
 * A numeric array parameter as PostgreSQL's array text, e.g. {1,NULL,3}, built in one pass: the pg driver's own
 * conversion quotes and escapes every element (two regular expressions each), about twice the cost for the
 * numeric arrays of a batch. Finite numbers only (ids, counts, epoch milliseconds).
 */
export function numberArray(values: readonly (number | null)[]): string {
  let text = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    text += (i === 0 ? '' : ',') + (value === null ? 'NULL' : String(value));
  }
  return `${text}}`;
}
