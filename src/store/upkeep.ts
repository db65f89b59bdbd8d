// VACUUM and ANALYZE for the embedded store, where nothing else runs them. PGlite runs PostgreSQL as one
// standalone backend, and autovacuum needs a postmaster to launch its workers; so on PGlite no table is ever
// vacuumed or analyzed unless Timehook does it:
// - Without VACUUM, the space of deleted rows and old row versions (the pruned change and delivery logs, each
//   absence update) is never marked free, so new rows always extend the files and the data directory only
//   grows. Transaction ids are never frozen either, and a standalone backend does not refuse new transactions
//   before the counter wraps around (it only warns): rows written 2^31 transactions earlier would then vanish.
// - Without ANALYZE the planner never has statistics, and a plan PostgreSQL caches while a table is small is
//   never replaced (migration 000011).
// A PostgreSQL server does all of this itself (autovacuum), so the maintenance loop runs this only on PGlite.
// The rules are autovacuum's, with the server's own settings: a table is vacuumed when its dead rows exceed
// autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor × its rows, when the rows inserted since its last
// vacuum exceed the insert threshold and scale factor likewise (so the visibility map and freezing keep up on
// tables that are only appended to), or when its oldest unfrozen transaction id is older than
// autovacuum_freeze_max_age; it is analyzed when the rows changed since the last analyze exceed the analyze
// threshold and scale factor. When the database's own oldest id passes that age, the whole database (the
// catalogs too) is vacuumed.

import type { Queryable } from './db.ts';

/** One table's upkeep: VACUUM (with ANALYZE when `analyze`), or ANALYZE alone. */
export interface UpkeepStep {
  table: string;
  vacuum: boolean;
  analyze: boolean;
}

/** What is due now: the tables of the current schema in order of name, then '' for the whole database. */
export async function upkeepDue(db: Queryable): Promise<UpkeepStep[]> {
  // The counters of this session's latest statements reach pg_stat_user_tables when it is next idle; forcing
  // that flush makes the reading current (PGlite has only this session).
  await db.query('select pg_stat_force_next_flush()');
  const tables = await db.query<UpkeepStep>(
    `with settings as (
       select current_setting('autovacuum_vacuum_threshold')::float8 as vt,
              current_setting('autovacuum_vacuum_scale_factor')::float8 as vs,
              current_setting('autovacuum_vacuum_insert_threshold')::float8 as it,
              current_setting('autovacuum_vacuum_insert_scale_factor')::float8 as "is",
              current_setting('autovacuum_analyze_threshold')::float8 as at,
              current_setting('autovacuum_analyze_scale_factor')::float8 as "as",
              current_setting('autovacuum_freeze_max_age')::float8 as freeze_age
     )
     select s.relname as "table",
            s.n_dead_tup > vt + vs * greatest(c.reltuples, 0)
              or (it >= 0 and s.n_ins_since_vacuum > it + "is" * greatest(c.reltuples, 0))
              or age(c.relfrozenxid) > freeze_age as vacuum,
            s.n_mod_since_analyze > at + "as" * greatest(c.reltuples, 0) as analyze
       from pg_stat_user_tables s
       join pg_class c on c.oid = s.relid
      cross join settings
      where s.schemaname = current_schema()
        and (s.n_dead_tup > vt + vs * greatest(c.reltuples, 0)
             or (it >= 0 and s.n_ins_since_vacuum > it + "is" * greatest(c.reltuples, 0))
             or age(c.relfrozenxid) > freeze_age
             or s.n_mod_since_analyze > at + "as" * greatest(c.reltuples, 0))
      order by s.relname`,
  );
  const database = await db.query<{ due: boolean }>(
    `select age(datfrozenxid) > current_setting('autovacuum_freeze_max_age')::float8 as due
       from pg_database where datname = current_database()`,
  );
  return database[0]?.due ? [...tables, { table: '', vacuum: true, analyze: false }] : tables;
}

/** Runs one step (outside any transaction: VACUUM cannot run inside one). */
export async function runUpkeep(db: Queryable, step: UpkeepStep): Promise<void> {
  const target = step.table === '' ? '' : ` "${step.table.replace(/"/g, '""')}"`;
  if (step.vacuum) await db.exec(`vacuum${step.analyze ? ' (analyze)' : ''}${target}`);
  else if (step.analyze) await db.exec(`analyze${target}`);
}
