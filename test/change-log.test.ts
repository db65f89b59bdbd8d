import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { formatChangeVersion, parseChangeVersion } from '../src/domain/change-version.ts';
import { appendChanges } from '../src/store/changes.ts';
import { migrate } from '../src/store/migrate.ts';
import { currentVersion, ensureTenant, prunedThroughVersion } from '../src/store/tenants.ts';
import { newTenant, openTestDb } from './helpers/harness.ts';
import { pruneAllChanges } from './helpers/prune.ts';

const { db, drop } = await openTestDb();
await migrate(db);
after(async () => {
  await db.close();
  await drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('changeVersion', () => {
  const cases: [number, string][] = [
    [0, '00000000000000000000'],
    [1, '00000000000000000001'],
    [0xa3f, '00000000000000000A3F'],
    [Number.MAX_SAFE_INTEGER, '0000001FFFFFFFFFFFFF'],
  ];
  for (const [value, text] of cases) {
    test(`${value} is written as ${text} and read back`, () => {
      assert.equal(formatChangeVersion(value), text);
      assert.equal(parseChangeVersion(text), value);
    });
  }

  test('string order equals numeric order', () => {
    const values = [1, 15, 16, 255, 256, 4095, 65_536, 2 ** 40];
    const texts = values.map(formatChangeVersion);
    assert.deepEqual([...texts].sort(), texts);
  });

  test('rejects text that is not 20 upper-case hex digits', () => {
    for (const text of ['', 'A3F', '00000000000000000a3f', '0000000000000000000G', '000000000000000000000']) {
      assert.equal(parseChangeVersion(text), undefined, text);
    }
  });
});

describe('the change log', () => {
  test('one counter serves every collection of a tenant, and tenants do not share it', async () => {
    const a = newTenant();
    const b = newTenant();
    await ensureTenant(db, a);
    await ensureTenant(db, b);
    const first = await db.transaction((tx) =>
      appendChanges(tx, a, [
        { collection: 'people', entityId: 1, changeType: 'InsertOrUpdate', data: { id: 1 } },
        { collection: 'absences', entityId: 7, changeType: 'Delete', data: { id: 7 } },
      ]),
    );
    const other = await db.transaction((tx) =>
      appendChanges(tx, b, [
        { collection: 'people', entityId: 1, changeType: 'InsertOrUpdate', data: { id: 1 } },
      ]),
    );
    assert.deepEqual(first, [1, 2]);
    assert.deepEqual(other, [1]);
    const rows = await db.query<{ data: { changeVersion: string; id: number } }>(
      'select data from changes where tenant_id = $1 order by version',
      [a],
    );
    assert.deepEqual(
      rows.map((r) => r.data),
      [
        { changeVersion: '00000000000000000001', id: 1 },
        { changeVersion: '00000000000000000002', id: 7 },
      ],
    );
    assert.equal(await currentVersion(db, a), 2);
  });

  test('a rolled-back transaction leaves no change and no gap', async () => {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    await assert.rejects(
      db.transaction(async (tx) => {
        await appendChanges(tx, tenant, [
          { collection: 'people', entityId: 1, changeType: 'InsertOrUpdate', data: { id: 1 } },
        ]);
        throw new Error('abort');
      }),
    );
    const versions = await db.transaction((tx) =>
      appendChanges(tx, tenant, [
        { collection: 'people', entityId: 2, changeType: 'InsertOrUpdate', data: { id: 2 } },
      ]),
    );
    assert.deepEqual(versions, [1]);
  });

  test('a reader following the log by version never misses a change committed by concurrent writers', async () => {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    const writers = 8;
    const transactionsPerWriter = 25;
    let writing = true;
    const seen = new Set<number>();
    let cursor = 0;
    const reader = (async () => {
      for (;;) {
        const done = !writing;
        const rows = await db.query<{ version: number }>(
          'select version from changes where tenant_id = $1 and version > $2 order by version',
          [tenant, cursor],
        );
        for (const row of rows) seen.add(row.version);
        if (rows.length > 0) cursor = rows.at(-1)!.version;
        if (done) return;
        await sleep(1);
      }
    })();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < transactionsPerWriter; i++) {
          await db.transaction(async (tx) => {
            await appendChanges(tx, tenant, [
              {
                collection: 'absences',
                entityId: w * 1000 + i,
                changeType: 'InsertOrUpdate',
                data: { id: w },
              },
            ]);
            // Hold the transaction open a little, so commits of concurrent writers interleave.
            await sleep(Math.random() * 3);
          });
        }
      }),
    );
    writing = false;
    await reader;
    const total = writers * transactionsPerWriter;
    assert.equal(seen.size, total, `the reader saw ${seen.size} of ${total} changes`);
  });

  test('pruning removes old changes in batches and raises the pruned-through version', async () => {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    await db.transaction((tx) =>
      appendChanges(
        tx,
        tenant,
        Array.from({ length: 5 }, (_, i) => ({
          collection: 'people',
          entityId: i,
          changeType: 'InsertOrUpdate' as const,
          data: { id: i },
        })),
      ),
    );
    await db.query(
      `update changes set committed_at = now() - interval '40 days' where tenant_id = $1 and version <= 3`,
      [tenant],
    );
    const future = new Date(Date.now() - 30 * 86_400_000);
    const pruned = await pruneAllChanges(db, future, 2);
    assert.ok(pruned >= 3);
    const left = await db.query<{ version: number }>(
      'select version from changes where tenant_id = $1 order by version',
      [tenant],
    );
    assert.deepEqual(
      left.map((r) => r.version),
      [4, 5],
    );
    assert.equal(await prunedThroughVersion(db, tenant), 3);
  });
  const peopleChanges = (tenant: string, count: number) =>
    db.transaction((tx) =>
      appendChanges(
        tx,
        tenant,
        Array.from({ length: count }, (_, i) => ({
          collection: 'people',
          entityId: i + 1,
          changeType: 'InsertOrUpdate' as const,
          data: { id: i + 1 },
        })),
      ),
    );
  const versionsLeft = async (tenant: string) =>
    (
      await db.query<{ version: number }>(
        'select version from changes where tenant_id = $1 order by version',
        [tenant],
      )
    ).map((r) => r.version);

  test('pruning deletes only the front of a log: a younger change stops it, and what follows waits', async () => {
    const tenant = newTenant();
    await ensureTenant(db, tenant);
    await peopleChanges(tenant, 5);
    await db.query(
      `update changes set committed_at = now() - interval '40 days' where tenant_id = $1 and version <> 3`,
      [tenant],
    );
    await pruneAllChanges(db, new Date(Date.now() - 30 * 86_400_000), 10);
    assert.deepEqual(await versionsLeft(tenant), [3, 4, 5]);
    assert.equal(await prunedThroughVersion(db, tenant), 2);
    // Once 3 is old too, the rest goes.
    await db.query(`update changes set committed_at = now() - interval '40 days' where tenant_id = $1`, [
      tenant,
    ]);
    await pruneAllChanges(db, new Date(Date.now() - 30 * 86_400_000), 10);
    assert.deepEqual(await versionsLeft(tenant), []);
    assert.equal(await prunedThroughVersion(db, tenant), 5);
  });

  test('pruning goes through every tenant in batches of at most its limit', async () => {
    const tenants = [newTenant(), newTenant(), newTenant()];
    for (const tenant of tenants) {
      await ensureTenant(db, tenant);
      await peopleChanges(tenant, 5);
    }
    await db.query(`update changes set committed_at = now() - interval '40 days' where tenant_id = any($1)`, [
      tenants.slice(0, 2),
    ]);
    await pruneAllChanges(db, new Date(Date.now() - 30 * 86_400_000), 2);
    for (const tenant of tenants.slice(0, 2)) {
      assert.deepEqual(await versionsLeft(tenant), []);
      assert.equal(await prunedThroughVersion(db, tenant), 5);
    }
    assert.deepEqual(await versionsLeft(tenants[2]!), [1, 2, 3, 4, 5], 'young: kept');
    assert.equal(await prunedThroughVersion(db, tenants[2]!), 0);
  });
});
