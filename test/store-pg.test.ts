// The PostgreSQL adapter under trouble (SPEC §4): its session timeouts are set, a connection cut in the middle of
// a transaction fails that transaction instead of ending the process, and tryWithLock lets one session at a time
// do a job.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { isStoreUnavailable } from '../src/api/error-handler.ts';
import { prepared, type Db } from '../src/store/db.ts';
import { openPgDb } from '../src/store/pg-db.ts';
import { POSTGRES_ONLY } from './helpers/cluster.ts';

const url = process.env.DATABASE_URL;
let db: Db | undefined;
let admin: pg.Client | undefined;
const schema = `pgdb_${randomBytes(5).toString('hex')}`;
if (url) {
  admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  db = await openPgDb({
    connectionString: url,
    poolSize: 4,
    statementTimeoutMs: 30_000,
    lockTimeoutMs: 1_500,
    idleInTransactionTimeoutMs: 45_000,
    schema,
  });
}
after(async () => {
  await db?.close();
  await admin?.query(`drop schema if exists ${schema} cascade`);
  await admin?.end();
});

test(
  'statement, lock and idle-in-transaction timeouts are set on every connection',
  { skip: POSTGRES_ONLY },
  async () => {
    const rows = await db!.query<{ s: string; l: string; i: string }>(
      `select current_setting('statement_timeout') as s, current_setting('lock_timeout') as l,
            current_setting('idle_in_transaction_session_timeout') as i`,
    );
    assert.deepEqual(rows[0], { s: '30s', l: '1500ms', i: '45s' });
  },
);

test(
  'a statement marked prepared is prepared once per connection and reused; others are not prepared',
  { skip: POSTGRES_ONLY },
  async () => {
    const marked = prepared('select $1::int + 1 as n');
    const plain = 'select $1::int + 2 as n';
    // One transaction: one connection, whose prepared statements pg_prepared_statements lists.
    const seen = await db!.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await tx.query(marked, [i]), [{ n: i + 1 }]);
        assert.deepEqual(await tx.query(plain, [i]), [{ n: i + 2 }]);
      }
      return tx.query<{ statement: string }>(
        `select statement from pg_prepared_statements where statement like 'select $1::int + %'`,
      );
    });
    assert.deepEqual(
      seen.map((r) => r.statement),
      [marked],
    );
    // Through the pool as well (any connection), with the same result.
    for (let i = 0; i < 10; i++) assert.deepEqual(await db!.query(marked, [i]), [{ n: i + 1 }]);
  },
);

test(
  'a lock wait longer than the lock timeout fails as a store-unavailable error',
  { skip: POSTGRES_ONLY },
  async () => {
    await db!.exec('create table locked (id int primary key)');
    await db!.exec('insert into locked values (1)');
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query(`set search_path = ${schema}`);
      await holder.query('begin');
      await holder.query('select * from locked for update');
      const started = Date.now();
      const error = await db!.query('update locked set id = 2').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.equal((error as { code?: string }).code, '55P03');
      assert.ok(Date.now() - started < 10_000);
      assert.ok(isStoreUnavailable(error), 'answered 503, not 500');
    } finally {
      await holder.end();
    }
  },
);

test(
  'a connection cut between the statements of a transaction fails the transaction, and the process lives on',
  { skip: POSTGRES_ONLY },
  async () => {
    const failure = await db!
      .transaction(async (tx) => {
        const [backend] = await tx.query<{ pid: number }>('select pg_backend_pid() as pid');
        await admin!.query('select pg_terminate_backend($1)', [backend!.pid]);
        // The server's "terminating connection" arrives while no statement runs: the client emits 'error',
        // which would end the process if nobody listened.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await tx.query('select 1');
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(failure instanceof Error, 'the transaction failed');
    assert.ok(isStoreUnavailable(failure), `a store error: ${String(failure)}`);
    // The broken connection was not returned to the pool.
    for (let i = 0; i < 8; i++) assert.deepEqual(await db!.query('select 1 as one'), [{ one: 1 }]);
  },
);

test(
  'tryWithLock: one session at a time does the job; the others skip it at once',
  { skip: POSTGRES_ONLY },
  async () => {
    const KEY = 424_242;
    let inside = 0;
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const isIn = new Promise<void>((resolve) => (entered = resolve));
    const first = db!.tryWithLock(KEY, async (session) => {
      inside++;
      entered();
      await session.query('select 1');
      await holding;
    });
    await isIn;
    const started = Date.now();
    assert.equal(
      await db!.tryWithLock(KEY, async () => {
        inside++;
      }),
      false,
    );
    assert.ok(Date.now() - started < 1_000, 'it did not wait');
    release();
    assert.equal(await first, true);
    assert.equal(
      await db!.tryWithLock(KEY, async () => {
        inside++;
      }),
      true,
    );
    assert.equal(inside, 2);
  },
);
