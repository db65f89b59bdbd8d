// VACUUM for the embedded store, where nothing else runs it. PGlite runs PostgreSQL as one standalone backend,
// and autovacuum needs a postmaster to launch its workers; so on PGlite no table is ever vacuumed unless
// Timehook does it:
// - Without VACUUM, the space of deleted rows and old row versions (the pruned change and delivery logs, each
//   absence update) is never marked free, so new rows always extend the files and the data directory only
//   grows. Transaction ids are never frozen either, and a standalone backend does not refuse new transactions
//   before the counter wraps around (it only warns): rows written 2^31 transactions earlier would then vanish.
// A PostgreSQL server does this itself (autovacuum), so the maintenance loop runs it only on PGlite. The rules are
// autovacuum's, with the server's own settings: a table is vacuumed when its dead rows exceed
// autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor × its rows, when the rows inserted since its last
// vacuum exceed the insert threshold and scale factor likewise (off on PGlite, see pglite-worker.js), or when its
// oldest unfrozen transaction id is older than autovacuum_freeze_max_age. When the database's own oldest id
// passes that age, the whole database (the catalogs too) is vacuumed.
// No ANALYZE: while it runs every other statement of the store waits, and under bench workload 4's stream at
// 200 changes/s rounds with ANALYZE steps of 0.9-1.7 s (against 50 ms for the same ANALYZE alone) put the
// delivery p99 at 248-394 ms against 23-26 ms without them. VACUUM keeps each table's size in pg_class current,
// and PostgreSQL's default selectivities serve plans that find rows by key; the plan that needed better was
// fixed on its own (timehook_write_absence_batches plans every call).

import type { Queryable } from './db.ts';

/** One VACUUM: of a table of the current schema (its name as an SQL identifier), or of the whole database when
 * `table` is ''. */
export interface UpkeepStep {
  table: string;
}

/**
 * What is due now: the tables of the current schema in order of name (quoted for SQL), then '' for the whole
 * database.
 */
export async function upkeepDue(db: Queryable): Promise<UpkeepStep[]> {
  // The counters of this session's latest statements reach pg_stat_user_tables when it is next idle; forcing
  // that flush makes the reading current (PGlite has only this session).
  await db.query('select pg_stat_force_next_flush()');
  return db.query<UpkeepStep>(
    `with settings as (
       select current_setting('autovacuum_vacuum_threshold')::float8 as vt,
              current_setting('autovacuum_vacuum_scale_factor')::float8 as vs,
              current_setting('autovacuum_vacuum_insert_threshold')::float8 as it,
              current_setting('autovacuum_vacuum_insert_scale_factor')::float8 as "is",
              current_setting('autovacuum_freeze_max_age')::float8 as freeze_age
     )
     select "table" from (
       select 0 as k, quote_ident(s.relname) as "table"
         from pg_stat_user_tables s
         join pg_class c on c.oid = s.relid
        cross join settings
        where s.schemaname = current_schema()
          and (s.n_dead_tup > vt + vs * greatest(c.reltuples, 0)
               or (it >= 0 and s.n_ins_since_vacuum > it + "is" * greatest(c.reltuples, 0))
               or age(c.relfrozenxid) > freeze_age)
       union all
       select 1, '' from pg_database cross join settings
        where datname = current_database() and age(datfrozenxid) > freeze_age
     ) due
     order by k, "table"`,
  );
}

/** Runs one step (outside any transaction: VACUUM cannot run inside one). */
export async function runUpkeep(db: Queryable, step: UpkeepStep): Promise<void> {
  await db.exec(`vacuum ${step.table}`);
}
