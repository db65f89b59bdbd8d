// The embedded store runs PGlite on a worker thread: through the Db port it must behave as PGlite in-process does.
// Values and errors are compared with an in-process PGlite (same int8 parser) as the oracle; transactions,
// notifications, shutdown, persistence and a crashed worker are checked through the port alone.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PGlite, types } from '@electric-sql/pglite';
import { StoreUnavailableError } from '../../src/errors.ts';
import type { Db } from '../../src/store/db.ts';
import { crashPgliteWorkerForTests, openPgliteDb } from '../../src/store/pglite-db.ts';

const db = await openPgliteDb(undefined);
const oracle = await PGlite.create({ parsers: { [types.INT8]: (value: string) => Number(value) } });
after(async () => {
  await db.close();
  await oracle.close();
});

const SCHEMA = `
  create table people (id int primary key, email text not null constraint people_email_key unique);
  create function refuse() returns void language plpgsql as $$
    begin raise exception 'refused: %', 'always' using detail = 'by design', hint = 'do not call refuse()'; end $$;`;
await db.exec(SCHEMA);
await oracle.exec(SCHEMA);

/** Runs the same statement on the worker store and on the in-process oracle; returns both outcomes. */
async function both(sql: string, params: unknown[] = []) {
  const settle = (p: Promise<unknown>) =>
    p.then(
      (value) => ({ value, error: undefined }),
      (error: Error) => ({ value: undefined, error }),
    );
  return {
    worker: await settle(db.query(sql, params)),
    inProcess: await settle(oracle.query(sql, params).then((r) => r.rows)),
  };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function eventually(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 5);
    };
    poll();
  });
}

test('every value type round-trips exactly as with PGlite in-process', async () => {
  const params = [
    'héllo, wörld',
    42,
    1_234_567_890_123,
    true,
    new Date('2024-05-06T07:08:09.123Z'),
    { a: 1, b: [true, null, 'x'], c: { d: 'e' } },
    [1, 'two'],
    Buffer.from([0, 1, 254, 255]),
    new Uint8Array([9, 8, 7]),
    ['a', 'b,c', null, 'd"e'],
    [1, 2, 3],
    null,
    Buffer.from('utf8 ✓'),
    '12.50',
    1.5,
    [new Date(0), new Date('2030-01-01T00:00:00Z')],
    undefined,
  ];
  const { worker, inProcess } = await both(
    `select $1::text as text, $2::int as int, $3::bigint as big, $4::boolean as bool, $5::timestamptz as ts,
            $6::jsonb as jsonb, $7::json as json, $8::bytea as bytes, $9::bytea as u8, $10::text[] as texts,
            $11::int[] as ints, $12::text as nul, $13::text as buffer_text, $14::numeric as num,
            $15::float8 as float, $16::timestamptz[] as dates, $17::int as undef,
            9007199254740993::bigint as huge, '2024-01-02 03:04:05.678+00'::timestamptz as lit_ts,
            '{"a":[1,{"b":null}]}'::jsonb as lit_json, '\\x0102ff'::bytea as lit_bytes, null::int as lit_null,
            'infinity'::timestamptz as inf, array[1, 2]::bigint[] as bigs, count(*) as counted`,
    params,
  );
  assert.equal(worker.error, undefined);
  assert.deepEqual(worker.value, inProcess.value);
  const [row] = worker.value as Record<string, unknown>[];
  assert.equal(row!.big, 1_234_567_890_123);
  assert.equal(row!.counted, 1, 'int8 comes back as a JS number');
  assert.ok(row!.ts instanceof Date);
  assert.equal(row!.ts.toISOString(), '2024-05-06T07:08:09.123Z');
  assert.deepEqual(row!.jsonb, params[5]);
  assert.ok(row!.bytes instanceof Uint8Array);
  assert.deepEqual([...row!.bytes], [0, 1, 254, 255]);
  assert.equal(row!.buffer_text, 'utf8 ✓', 'a Buffer parameter is still a Buffer to PGlite');
  assert.equal(row!.nul, null);
  assert.equal(row!.undef, null);
});

test('a unique violation rejects with the same code, detail and constraint as in-process', async () => {
  await db.query('insert into people (id, email) values ($1, $2)', [1, 'a@example.com']);
  await oracle.query('insert into people (id, email) values ($1, $2)', [1, 'a@example.com']);
  const { worker, inProcess } = await both('insert into people (id, email) values ($1, $2)', [
    2,
    'a@example.com',
  ]);
  const error = worker.error as Error & Record<string, unknown>;
  assert.ok(error instanceof Error);
  assert.equal(error.code, '23505');
  assert.equal(error.constraint, 'people_email_key');
  assert.equal(error.table, 'people');
  assert.equal(error.detail, 'Key (email)=(a@example.com) already exists.');
  assert.equal(error.message, inProcess.error!.message);
  assert.deepEqual({ ...error }, { ...inProcess.error });
});

test('a raised exception rejects with P0001 and its detail and hint, as in-process', async () => {
  const { worker, inProcess } = await both('select refuse()');
  const error = worker.error as Error & Record<string, unknown>;
  assert.equal(error.message, 'refused: always');
  assert.equal(error.code, 'P0001');
  assert.equal(error.detail, 'by design');
  assert.equal(error.hint, 'do not call refuse()');
  assert.equal(error.severity, 'ERROR');
  assert.match(String(error.where), /PL\/pgSQL function refuse/);
  assert.deepEqual({ ...error }, { ...inProcess.error });
  await assert.rejects(db.exec('select refuse()'), { code: 'P0001', message: 'refused: always' });
});

test('a failing statement inside transaction() rolls the whole transaction back', async () => {
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.query('insert into people (id, email) values ($1, $2)', [10, 'ten@example.com']);
      await tx.query('insert into people (id, email) values ($1, $2)', [11, 'a@example.com']);
    }),
    { code: '23505' },
  );
  assert.deepEqual(await db.query('select id from people where id in (10, 11)'), []);
  const committed = await db.transaction(async (tx) => {
    await tx.query('insert into people (id, email) values ($1, $2)', [12, 'twelve@example.com']);
    return 'done';
  });
  assert.equal(committed, 'done');
  assert.deepEqual(await db.query('select id from people where id = 12'), [{ id: 12 }]);
});

test('a transaction that swallowed a failed statement is reported as rolled back, as in-process', async () => {
  const swallow = async (tx: { query: (sql: string) => Promise<unknown> }) => {
    await tx.query('select refuse()').catch(() => undefined);
  };
  const inProcess = await oracle.transaction(swallow).catch((error: Error) => error);
  await assert.rejects(db.transaction(swallow), { code: '25P02', message: (inProcess as Error).message });
});

test('an exception thrown by fn rolls back and rejects with that exception', async () => {
  const thrown = new Error('changed my mind');
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.query('insert into people (id, email) values ($1, $2)', [20, 'twenty@example.com']);
      throw thrown;
    }),
    (error) => error === thrown,
  );
  assert.deepEqual(await db.query('select id from people where id = 20'), []);
});

test('concurrent transactions and queries never interleave', async () => {
  await db.exec('create table turns (who text not null)');
  const order: string[] = [];
  const run = (who: string) =>
    db.transaction(async (tx) => {
      await tx.query('insert into turns (who) values ($1)', [who]);
      await delay(30); // the main thread is free meanwhile; nothing else may run on the session
      const [row] = await tx.query<{ n: number }>('select count(*) as n from turns');
      order.push(`${who} saw ${row!.n}`);
    });
  const first = run('first');
  const outside = db.query<{ n: number }>('select count(*) as n from turns').then(([row]) => {
    order.push(`query saw ${row!.n}`);
  });
  const second = run('second');
  await Promise.all([first, outside, second]);
  assert.deepEqual(order, ['first saw 1', 'query saw 1', 'second saw 2']);
});

test('tryWithLock runs fn on the one session and returns true', async () => {
  let answered: unknown;
  const held = await db.tryWithLock(42, async (session) => {
    answered = await session.query('select 7 as n');
  });
  assert.equal(held, true);
  assert.deepEqual(answered, [{ n: 7 }]);
});

test('notifications from a statement or a trigger reach the listener until it unsubscribes', async () => {
  await db.exec(`
    create table pings (id int);
    create function ping_notify() returns trigger language plpgsql as $$
      begin perform pg_notify('pings', 'row ' || new.id); return new; end $$;
    create trigger pings_notify after insert on pings for each row execute function ping_notify();`);
  const received: string[] = [];
  const unlisten = await db.listen('pings', (payload) => received.push(payload));
  await db.query(`select pg_notify('pings', 'direct')`);
  await db.query('insert into pings (id) values (1)');
  await eventually(() => received.length === 2, 'two notifications');
  assert.deepEqual(received, ['direct', 'row 1']);
  await unlisten();
  await db.query('insert into pings (id) values (2)');
  await db.query(`select pg_notify('pings', 'after unlisten')`);
  await delay(50);
  assert.deepEqual(received, ['direct', 'row 1']);
});

test('after close() every call rejects clearly, ping() is false and a second close is harmless', async () => {
  const own = await openPgliteDb(undefined);
  assert.equal(await own.ping(), true);
  await own.close();
  assert.equal(await own.ping(), false);
  await assert.rejects(own.query('select 1'), (error) => {
    assert.ok(error instanceof StoreUnavailableError);
    assert.match(error.message, /closed/);
    return true;
  });
  await assert.rejects(
    own.transaction(async () => undefined),
    StoreUnavailableError,
  );
  await assert.rejects(
    own.listen('x', () => undefined),
    StoreUnavailableError,
  );
  await own.close();
});

test('a store on a data directory keeps its data across close and reopen, and holds the lock meanwhile', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'timehook-pglite-worker-'));
  try {
    const first = await openPgliteDb(dir);
    assert.equal(readFileSync(join(dir, 'timehook.lock'), 'utf8'), String(process.pid));
    await first.exec('create table kept (n int)');
    // Not awaited: close() must wait for them and flush them to disk.
    const writes = [1, 2, 3].map((n) => first.query('insert into kept (n) values ($1)', [n]));
    await first.close();
    await Promise.all(writes);
    assert.equal(existsSync(join(dir, 'timehook.lock')), false, 'the lock file is released');
    const second = await openPgliteDb(dir);
    try {
      assert.deepEqual(await second.query('select n from kept order by n'), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker that dies makes pending and later calls reject and ping() false', async () => {
  const own: Db = await openPgliteDb(undefined);
  const pending = own.query('select count(*) from generate_series(1, 50000000)');
  const inTransaction = own.transaction(async (tx) => {
    await tx.query('select 1');
  });
  await crashPgliteWorkerForTests(own);
  const unavailable = (error: unknown) => {
    assert.ok(error instanceof StoreUnavailableError);
    assert.match(error.message, /worker thread exited unexpectedly/);
    return true;
  };
  await assert.rejects(pending, unavailable);
  await assert.rejects(inTransaction, unavailable);
  await assert.rejects(own.query('select 1'), unavailable);
  assert.equal(await own.ping(), false);
  await own.close();
});
