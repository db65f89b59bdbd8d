// Forward-only numbered migrations (migrations/NNNNNN_name.sql), each in its own transaction under an
// advisory lock, so concurrent start-ups apply each one exactly once.

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
/** The advisory lock every migration transaction takes first. */
export const MIGRATION_LOCK_KEY = 727_364_001;

interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{6}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 6)),
      name: file.slice(7, -4),
      sql: readFileSync(`${dir}/${file}`, 'utf8'),
    }));
}

/**
 * Applies every migration not yet applied; returns the versions this call applied. Each runs in its own
 * transaction under a transaction-level advisory lock, and the applied check happens under that lock, so
 * processes starting together apply each migration exactly once between them.
 */
export async function migrate(db: Db): Promise<number[]> {
  const applied: number[] = [];
  for (const migration of listMigrations()) {
    const done = await db.transaction(async (tx) => {
      // A migration may rewrite a large table, and a concurrent starter waits for it: no timeouts here.
      await tx.exec('set local statement_timeout = 0; set local lock_timeout = 0');
      await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await tx.exec(`create table if not exists timehook_migrations (
        version int primary key, name text not null, applied_at timestamptz not null default now())`);
      const rows = await tx.query('select 1 from timehook_migrations where version = $1', [
        migration.version,
      ]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query('insert into timehook_migrations (version, name) values ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return applied;
}

/** True when every known migration has been applied (for /readyz). */
export async function isMigrated(db: Db): Promise<boolean> {
  const latest = listMigrations().at(-1)?.version ?? 0;
  try {
    const rows = await db.query<{ v: number | null }>('select max(version) as v from timehook_migrations');
    return (rows[0]?.v ?? 0) >= latest;
  } catch {
    return false;
  }
}
