// Delivery partitions (TIMEHOOK_DELIVERY_PARTITIONS): a webhook created while the setting is N gets N leases,
// one per partition, and an entity always belongs to one partition (entity id mod N). Real `timehook serve`
// processes, a local receiver and a ledger show that two workers share one webhook, that a SIGKILLed worker's
// partition is taken over, that one process holding every partition keeps per-entity order, that a partition
// sends the events another partition's runner fanned out without waiting for a poll, and that a bad value stops
// the process with one line naming the variable.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import {
  absenceBatch,
  Ledger,
  POSTGRES_ONLY,
  sleep,
  startCluster,
  versionOf,
  type Cluster,
  type WorkerProcess,
} from '../helpers/cluster.ts';
import { definition, person } from '../helpers/collections.ts';
import {
  connectorOk,
  createCliClient,
  createProcessStore,
  fetchToken,
  runCli,
  startServerProcess,
  workerIdOf,
  type ConnectorResponse,
  type ServerProcess,
} from '../helpers/processes.ts';
import { reply, startReceiver, waitUntil, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';

const PATH = '/hook/partitioned';
const FIRST_ENTITY = 1_000;

/** The entity ids a process's 'delivery attempt' log lines name. */
function attemptedEntities(server: { output(): string }): Set<number> {
  const entities = new Set<number>();
  for (const line of server.output().split('\n')) {
    if (!line.includes('"msg":"delivery attempt"')) continue;
    entities.add((JSON.parse(line) as { entityId: number }).entityId);
  }
  return entities;
}

/** The entity id of a received event. */
const entityOf = (r: ReceivedRequest): number => (JSON.parse(r.body) as { data: { id: number } }).data.id;

/** The partitions (entity id mod `partitions`) of a set of entities. */
const partsOf = (entities: Iterable<number>, partitions: number): number[] =>
  [...new Set([...entities].map((e) => e % partitions))].sort((a, b) => a - b);

/**
 * Waits until every change of the ledger reached the receiver, then checks the per-entity order of first
 * arrivals (duplicates are allowed: after a crash an event may be sent again).
 */
async function allArrivedInOrder(ledger: Ledger, receiver: Receiver): Promise<void> {
  await waitUntil(
    () => ledger.missing(receiver.requests, PATH).length === 0,
    60_000,
    'every change acknowledged',
  );
  assert.deepEqual(ledger.missing(receiver.requests, PATH), [], 'changes never acknowledged');
  assert.deepEqual(ledger.orderViolations(receiver.requests, PATH), [], 'per-entity order');
}

/** Writes one round: an upsert of each of `entities` absences from FIRST_ENTITY, each a new version. */
async function writeRound(cluster: Cluster, ledger: Ledger, entities: number, round: number): Promise<void> {
  const upsert = absenceBatch(FIRST_ENTITY, entities, round);
  ledger.addBatch(await cluster.ok('POST', '/absences/batch', { upsert, delete: [] }), upsert.length);
}

/** A cluster with TIMEHOOK_DELIVERY_PARTITIONS=2, one webhook to `receiver`, and two workers holding one each. */
async function startPartitionedPair(
  leaseTtl: string,
  receiver: Receiver,
): Promise<{ cluster: Cluster; a: WorkerProcess; b: WorkerProcess }> {
  const cluster = await startCluster({ TIMEHOOK_DELIVERY_PARTITIONS: '2', TIMEHOOK_LEASE_TTL: leaseTtl });
  try {
    await cluster.ok('POST', '/webhooks', { destinationUrl: receiver.url(PATH), collectionName: 'absences' });
    const [a, b] = await Promise.all([cluster.startWorker(), cluster.startWorker()]);
    // Fair share over lease units: 2 partitions / 2 live workers = 1 each, whoever claimed first.
    await waitUntil(
      async () => {
        const owners = await cluster.leaseOwners();
        return owners.get(a.workerId) === 1 && owners.get(b.workerId) === 1;
      },
      20_000,
      'one partition leased by each worker',
    );
    return { cluster, a, b };
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

test(
  'two partitions, two workers: each worker holds and sends one partition of the same webhook, nothing is lost and per-entity order holds',
  { skip: POSTGRES_ONLY, timeout: 120_000 },
  async () => {
    const ENTITIES = 40;
    const ROUNDS = 8;
    const receiver = await startReceiver(() => reply.delayed(5));
    const { cluster, a, b } = await startPartitionedPair('3s', receiver);
    try {
      const ledger = new Ledger();
      for (let round = 0; round < ROUNDS; round++) {
        await writeRound(cluster, ledger, ENTITIES, round);
        await sleep(100);
      }
      await allArrivedInOrder(ledger, receiver);

      const sent = { a: attemptedEntities(a), b: attemptedEntities(b) };
      console.log(
        JSON.stringify({
          changes: ledger.versions.size,
          requests: receiver.requests.length,
          attempts: { a: a.attempts(), b: b.attempts() },
          entities: { a: sent.a.size, b: sent.b.size },
        }),
      );
      assert.ok(a.attempts() > 0 && b.attempts() > 0, 'both workers sent events of the one webhook');
      // Each worker sent only the entities of the partition it holds, and between them all of them.
      assert.equal(
        partsOf(sent.a, 2).length,
        1,
        `worker A sent entities of partitions ${partsOf(sent.a, 2).join(', ')}`,
      );
      assert.equal(
        partsOf(sent.b, 2).length,
        1,
        `worker B sent entities of partitions ${partsOf(sent.b, 2).join(', ')}`,
      );
      assert.notDeepEqual(partsOf(sent.a, 2), partsOf(sent.b, 2), 'the workers sent different partitions');
      assert.equal(sent.a.size + sent.b.size, ENTITIES);
      assert.equal(
        receiver.requests.length,
        ledger.versions.size,
        'no event sent twice while no worker died',
      );
    } finally {
      await receiver.close();
      await cluster.close();
    }
  },
);

test(
  "two partitions: a SIGKILLed worker's partition is taken over by the survivor within the lease time; nothing is lost and per-entity order holds",
  { skip: POSTGRES_ONLY, timeout: 120_000 },
  async () => {
    const LEASE_TTL_MS = 2_000;
    const ENTITIES = 40;
    const ROUNDS = 12;
    const receiver = await startReceiver(() => reply.delayed(5));
    const { cluster, a, b } = await startPartitionedPair(`${LEASE_TTL_MS}ms`, receiver);
    try {
      const ledger = new Ledger();
      let killedAt = 0;
      let survivorAttemptsAtKill = 0;
      for (let round = 0; round < ROUNDS; round++) {
        await writeRound(cluster, ledger, ENTITIES, round);
        if (round === ROUNDS / 2 - 1) {
          await waitUntil(() => a.attempts() >= 40 && b.attempts() >= 40, 30_000, 'both workers delivering');
          a.child.kill('SIGKILL');
          killedAt = Date.now();
          survivorAttemptsAtKill = b.attempts();
          await a.exited;
        }
        await sleep(100);
      }

      // Takeover: the survivor holds both partitions once A's lease expired (and A stopped counting as live).
      await waitUntil(
        async () => (await cluster.leaseOwners()).get(b.workerId) === 2,
        30_000,
        'the surviving worker holding both partitions',
      );
      const takeoverMs = Date.now() - killedAt;
      assert.ok(
        takeoverMs <= LEASE_TTL_MS + LEASE_TTL_MS / 3 + 2_000,
        `takeover after ${takeoverMs} ms (lease TTL ${LEASE_TTL_MS} ms)`,
      );

      // Duplicates are allowed after a crash; the order of first acknowledgements is not negotiable.
      await allArrivedInOrder(ledger, receiver);
      const survivorSent = attemptedEntities(b);
      console.log(
        JSON.stringify({
          changes: ledger.versions.size,
          requests: receiver.requests.length,
          repeatedAfterTakeover: receiver.requests.length - ledger.versions.size,
          attempts: { a: a.attempts(), survivorAtKill: survivorAttemptsAtKill, survivor: b.attempts() },
          takeoverMs,
        }),
      );
      assert.deepEqual(partsOf(survivorSent, 2), [0, 1], 'the survivor sent both partitions in the end');
      assert.equal(b.child.exitCode, null, 'the survivor is still running');
      assert.equal(await b.stop(), 0, 'the survivor stops gracefully');
    } finally {
      await receiver.close();
      await cluster.close();
    }
  },
);

interface SingleProcess {
  server: ServerProcess;
  /** A connector request, asserting a 2xx answer; the body. */
  ok: (method: string, path: string, body?: unknown) => Promise<ConnectorResponse['body']>;
  /** On PostgreSQL, a connection to the process's database (the embedded store is locked by the process). */
  db: pg.Client | undefined;
  /** Kills the process if it still runs, closes the connection and removes the store. */
  close(): Promise<void>;
}

/** One `timehook serve` (role all) on a fresh store with TIMEHOOK_DELIVERY_PARTITIONS, and a seeded tenant. */
async function startSingleProcess(partitions: number): Promise<SingleProcess> {
  const store = await createProcessStore();
  const env: Record<string, string> = {
    ...store.env,
    TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
    TIMEHOOK_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    TIMEHOOK_DELIVERY_PARTITIONS: String(partitions),
  };
  let server: ServerProcess | undefined;
  const db = env.DATABASE_URL ? new pg.Client({ connectionString: env.DATABASE_URL }) : undefined;
  const close = async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null)
      server.child.kill('SIGKILL');
    await server?.exited;
    await db?.end().catch(() => undefined);
    await store.remove();
  };
  try {
    const credentials = await createCliClient(env, 'partitions');
    server = await startServerProcess(env);
    const url = server.url;
    const token = await fetchToken(url, 'partitions', credentials);
    const ok = connectorOk(url, token, 'TimehookPartitionsTest/1.0');
    await ok('PUT', '/people/1', person(1));
    await ok('PUT', '/absence-definitions/10', definition(10));
    await ok('PUT', '/shift-definitions/20', definition(20));
    await db?.connect();
    return { server, ok, db, close };
  } catch (error) {
    await close();
    throw error;
  }
}

test(
  'one serve process with TIMEHOOK_DELIVERY_PARTITIONS=3 holds all three partitions of a new webhook and keeps per-entity order',
  {
    timeout: 120_000,
  },
  async () => {
    const PARTITIONS = 3;
    const ENTITIES = 150;
    const ROUNDS = 6;
    const receiver = await startReceiver(() => reply.delayed(2));
    const single = await startSingleProcess(PARTITIONS).catch(async (error: unknown) => {
      await receiver.close();
      throw error;
    });
    const { server, ok, db } = single;
    try {
      const webhook = (await ok('POST', '/webhooks', {
        destinationUrl: receiver.url(PATH),
        collectionName: 'absences',
      })) as { id: string };

      if (db) {
        // PostgreSQL: the partition rows are visible from outside the process.
        const workerId = workerIdOf(server);
        const partitions = async () =>
          (
            await db.query<{ part: number; lease_owner: string | null; held: boolean }>(
              `select part, lease_owner, coalesce(lease_until > now(), false) as held
               from delivery_lanes where webhook_id = $1 order by part`,
              [webhook.id],
            )
          ).rows;
        const count = await db.query<{ n: number }>(
          'select count(*)::int as n from delivery_lanes where webhook_id = $1',
          [webhook.id],
        );
        assert.equal(count.rows[0]!.n, PARTITIONS, 'one delivery_lanes row per partition');
        await waitUntil(
          async () => (await partitions()).every((p) => p.held && p.lease_owner === workerId),
          15_000,
          'the one process holding every partition',
        );
        assert.deepEqual(
          (await partitions()).map((p) => p.part),
          [0, 1, 2],
        );
      }

      const ledger = new Ledger();
      for (let round = 0; round < ROUNDS; round++) {
        const upsert = absenceBatch(FIRST_ENTITY, ENTITIES, round);
        ledger.addBatch(await ok('POST', '/absences/batch', { upsert, delete: [] }), upsert.length);
        await sleep(50);
      }
      await allArrivedInOrder(ledger, receiver);
      assert.equal(receiver.requests.length, ledger.versions.size, 'each change sent once');
      const sent = attemptedEntities(server);
      assert.equal(sent.size, ENTITIES, 'the one process sent every entity');
      assert.deepEqual(partsOf(sent, PARTITIONS), [0, 1, 2], 'of every partition');
      assert.equal(await server.stop(), 0, 'SIGTERM exits 0');
    } finally {
      await receiver.close();
      await single.close();
    }
  },
);

test(
  "two partitions: events fanned out by the other partition's runner while a runner's window is full are sent once it has room, without waiting for the backstop poll",
  {
    timeout: 120_000,
  },
  async () => {
    // Any partition's runner may run the webhook's fan-out. A runner whose window is more than half full syncs
    // without loading; when the other partition's runner did the fan-out, the new events of this partition must
    // still be loaded as soon as the window has room, not at the next backstop poll (every 5 s) or change.
    const PARTITIONS = 2;
    const FIRST_ROUND = 1_200; // 600 entities per partition: more than half a runner's window (1,000)
    const SECOND_ROUND = 10;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const receiver = await startReceiver(async () => {
      await gate;
      return reply.ok();
    });
    const single = await startSingleProcess(PARTITIONS).catch(async (error: unknown) => {
      await receiver.close();
      throw error;
    });
    const { ok } = single;
    try {
      await ok('POST', '/webhooks', { destinationUrl: receiver.url(PATH), collectionName: 'absences' });
      const first = new Ledger();
      const upsert1 = absenceBatch(FIRST_ENTITY, FIRST_ROUND, 1);
      first.addBatch(await ok('POST', '/absences/batch', { upsert: upsert1, delete: [] }), upsert1.length);
      // Both runners loaded their 600 and hold their in-flight slots (8 each) at the closed gate.
      await waitUntil(() => receiver.requests.length >= 16, 15_000, 'both partitions sending');
      const second = new Ledger();
      const upsert2 = absenceBatch(FIRST_ENTITY, SECOND_ROUND, 2); // entities of both partitions
      second.addBatch(await ok('POST', '/absences/batch', { upsert: upsert2, delete: [] }), upsert2.length);
      await sleep(300); // both runners' syncs for the new changes run while their windows are full
      openGate();
      await waitUntil(
        () =>
          first.missing(receiver.requests, PATH).length === 0 &&
          second.missing(receiver.requests, PATH).length === 0,
        30_000,
        'every change acknowledged',
      );
      const gaps: number[] = [];
      for (let part = 0; part < PARTITIONS; part++) {
        const mine = receiver.requests.filter((r) => entityOf(r) % PARTITIONS === part);
        const lastFirst = Math.max(
          ...mine.filter((r) => first.versions.has(versionOf(r))).map((r) => r.arrivedAt),
        );
        const lastSecond = Math.max(
          ...mine.filter((r) => second.versions.has(versionOf(r))).map((r) => r.arrivedAt),
        );
        gaps.push(lastSecond - lastFirst);
      }
      console.log(JSON.stringify({ secondRoundAfterFirstMs: gaps }));
      assert.deepEqual(second.orderViolations(receiver.requests, PATH), [], 'per-entity order');
      for (const [part, gap] of gaps.entries())
        assert.ok(
          gap < 1_000,
          `partition ${part}: the second round arrived ${gap} ms after the first drained`,
        );
    } finally {
      openGate();
      await receiver.close();
      await single.close();
    }
  },
);

test('TIMEHOOK_DELIVERY_PARTITIONS defaults to 1, accepts 1 to 64, and no more than the in-flight limit', () => {
  assert.equal(loadConfig({}).deliveryPartitions, 1);
  assert.equal(loadConfig({ TIMEHOOK_DELIVERY_PARTITIONS: '1' }).deliveryPartitions, 1);
  assert.equal(loadConfig({ TIMEHOOK_DELIVERY_PARTITIONS: '16' }).deliveryPartitions, 16);
  assert.equal(
    loadConfig({ TIMEHOOK_DELIVERY_PARTITIONS: '64', TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK: '64' })
      .deliveryPartitions,
    64,
  );
  // Each partition sends at least one event at a time: 17 partitions would exceed the default limit of 16.
  assert.throws(
    () => loadConfig({ TIMEHOOK_DELIVERY_PARTITIONS: '17' }),
    /TIMEHOOK_DELIVERY_PARTITIONS="17" is not valid: expected at most TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK \(16\)/,
  );
  assert.throws(
    () => loadConfig({ TIMEHOOK_DELIVERY_PARTITIONS: '4', TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK: '2' }),
    /at most TIMEHOOK_MAX_IN_FLIGHT_PER_WEBHOOK \(2\)/,
  );
});

test(
  'serve stops with one clear line naming TIMEHOOK_DELIVERY_PARTITIONS for 0, 65 and abc',
  { timeout: 120_000 },
  async () => {
    const store = await createProcessStore();
    try {
      for (const value of ['0', '65', 'abc']) {
        const result = await runCli(
          ['serve'],
          { ...store.env, PORT: '0', TIMEHOOK_DELIVERY_PARTITIONS: value },
          30_000,
        );
        assert.notEqual(result.code, null, `serve with ${value} was still running after 30 s`);
        assert.notEqual(result.code, 0, `serve with ${value} exited 0`);
        assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
        assert.match(result.stderr, new RegExp(`TIMEHOOK_DELIVERY_PARTITIONS="${value}" is not valid`));
        assert.match(result.stderr, /from 1 to 64/);
      }
    } finally {
      await store.remove();
    }
  },
);
