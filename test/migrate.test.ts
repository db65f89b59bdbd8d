// Migrations: a fresh store migrates to exactly the schema committed in migrations/schema.sql (on the embedded
// store and, with DATABASE_URL, on PostgreSQL), and concurrent start-ups migrate safely (SPEC §4): several
// `timehook migrate` processes started at once on a fresh PostgreSQL database apply each migration exactly
// once between them, under the advisory lock.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import pg from 'pg';
import { listMigrations, migrate, MIGRATION_LOCK_KEY } from '../src/store/migrate.ts';
import { describeSchema, SCHEMA_DUMP_FILE } from '../src/store/schema-dump.ts';
import { POSTGRES_ONLY } from './helpers/cluster.ts';
import { openTestDb } from './helpers/harness.ts';
import { createProcessStore, runCli } from './helpers/processes.ts';
import { waitUntil } from './helpers/receiver.ts';

/** The first line where two texts differ, with a little context from each, for a readable failure. */
function firstDifference(expected: string, actual: string): string {
  const want = expected.split('\n');
  const got = actual.split('\n');
  let line = 0;
  while (line < want.length && want[line] === got[line]) line++;
  const excerpt = (lines: string[]) =>
    lines
      .slice(Math.max(0, line - 2), line + 3)
      .map((text, i) => `  ${Math.max(0, line - 2) + i + 1}: ${text}`)
      .join('\n');
  return `first difference at line ${line + 1}\nmigrations/schema.sql:\n${excerpt(want)}\nmigrated:\n${excerpt(got)}`;
}

test('a fresh store applies every migration once, and a second migrate applies none', async () => {
  const { db, drop } = await openTestDb();
  try {
    assert.deepEqual(
      await migrate(db),
      listMigrations().map((m) => m.version),
    );
    assert.deepEqual(await migrate(db), []);
  } finally {
    await db.close();
    await drop();
  }
});

test('a fresh store migrates to exactly the schema in migrations/schema.sql', async () => {
  const { db, drop } = await openTestDb();
  try {
    await migrate(db);
    const actual = await describeSchema(db);
    const expected = readFileSync(SCHEMA_DUMP_FILE, 'utf8');
    assert.ok(
      actual === expected,
      `The migrated schema differs from migrations/schema.sql, ${firstDifference(expected, actual)}\n` +
        'When the change is intended, run `npm run schema:dump` and commit migrations/schema.sql with the ' +
        'migration that makes it.',
    );
  } finally {
    await db.close();
    await drop();
  }
});

test(
  'four `timehook migrate` processes at once on a fresh database apply each migration exactly once',
  { skip: POSTGRES_ONLY, timeout: 60_000 },
  async () => {
    const store = await createProcessStore();
    const client = new pg.Client({ connectionString: store.env.DATABASE_URL });
    await client.connect();
    try {
      // Hold the migration lock until all four wait for it, so that they really race for every migration.
      await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const running = Array.from({ length: 4 }, () => runCli(['migrate'], store.env));
      await waitUntil(
        async () => {
          const rows = await client.query<{ n: number }>(
            `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`,
          );
          return rows.rows[0]!.n === 4;
        },
        30_000,
        'four processes waiting for the migration lock',
      );
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      const results = await Promise.all(running);
      for (const r of results) {
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /up to date/);
      }
      // Each process says which migrations it applied itself: together, every one exactly once.
      const reported = results.flatMap((r) =>
        [...(/Applied migrations? ([\d, ]+);/.exec(r.stdout)?.[1]?.matchAll(/\d{6}/g) ?? [])].map((m) =>
          Number(m[0]),
        ),
      );
      const known = listMigrations().map((m) => m.version);
      assert.deepEqual(
        [...reported].sort((a, b) => a - b),
        known,
        `applied per process: ${results.map((r) => r.stdout.trim()).join(' | ')}`,
      );

      const rows = await client.query<{ version: number }>(
        'select version from timehook_migrations order by version',
      );
      assert.deepEqual(
        rows.rows.map((r) => r.version),
        known,
      );
      // A later start finds nothing to do.
      const again = await runCli(['migrate'], store.env);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout.trim(), 'Migrations are up to date.');
    } finally {
      await client.end();
      await store.remove();
    }
  },
);
