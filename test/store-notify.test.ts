import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { migrate } from '../src/store/migrate.ts';
import { openTestDb, usingPostgres } from './helpers/harness.ts';

const { db, drop } = await openTestDb();
await migrate(db);
after(async () => {
  await db.close();
  await drop();
});

function nextPayload(received: string[], from: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      if (received.length > from) return resolve(received[from]!);
      if (Date.now() - started > timeoutMs) return reject(new Error('no notification arrived'));
      setTimeout(check, 10);
    };
    check();
  });
}

test('a NOTIFY sent inside a transaction reaches listeners only after commit', async () => {
  const received: string[] = [];
  const unlisten = await db.listen('test_channel', (payload) => received.push(payload));
  try {
    await db.transaction(async (tx) => {
      await tx.query(`select pg_notify('test_channel', 'hello')`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(received.length, 0, 'not delivered before commit');
    });
    assert.equal(await nextPayload(received, 0), 'hello');
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query(`select pg_notify('test_channel', 'rolled back')`);
        throw new Error('abort');
      }),
    );
    await db.query(`select pg_notify('test_channel', 'after')`);
    assert.equal(await nextPayload(received, 1), 'after');
  } finally {
    await unlisten();
  }
});

test(
  'after the listening connection is killed, listeners are told to rescan and hear new notifications',
  { skip: !usingPostgres() && 'PostgreSQL only: PGlite has no separate connections' },
  async () => {
    const received: string[] = [];
    const unlisten = await db.listen('test_reconnect', (payload) => received.push(payload));
    try {
      await db.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
        where pid <> pg_backend_pid() and datname = current_database() and query like 'listen%'`,
      );
      assert.equal(await nextPayload(received, 0), '', 'a rescan signal after reconnecting');
      await db.query(`select pg_notify('test_reconnect', 'again')`);
      assert.equal(await nextPayload(received, 1), 'again');
    } finally {
      await unlisten();
    }
  },
);
