// Several `timehook serve` processes on one fresh PostgreSQL database, for the scale-out tests (SPEC §4): an
// API process, worker processes started on demand, a client with every scope, a connection to the database
// for checks, and a ledger of the changes written and the deliveries received.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { parseChangeVersion } from '../../src/domain/change-version.ts';
import { absence, definition, person } from './collections.ts';
import {
  callConnector,
  createCliClient,
  createProcessStore,
  fetchToken,
  startServerProcess,
  workerIdOf,
  type ConnectorResponse,
  type ServerProcess,
} from './processes.ts';
import type { ReceivedRequest } from './receiver.ts';

export const TENANT = 'scale';

/** The skip reason of these tests on the embedded store (one process per data directory). */
export const POSTGRES_ONLY =
  !process.env.DATABASE_URL && 'PostgreSQL only: several processes share one database';

export interface WorkerProcess extends ServerProcess {
  /** The lease owner id it logged at start. */
  workerId: string;
  /** Its 'delivery attempt' log lines so far. */
  attempts(): number;
}

export interface Cluster {
  env: Record<string, string>;
  databaseName: string;
  /** A connection to the cluster's database, for checks. */
  db: pg.Client;
  api: ServerProcess;
  token: string;
  call(method: string, path: string, body?: unknown): Promise<ConnectorResponse>;
  /** Like call, asserting a 2xx answer. */
  ok(method: string, path: string, body?: unknown): Promise<ConnectorResponse['body']>;
  startWorker(): Promise<WorkerProcess>;
  /** Lease owners of the enabled webhooks' partitions and how many partitions each holds. */
  leaseOwners(): Promise<Map<string | null, number>>;
  /** Kills every process left and drops the database. */
  close(): Promise<void>;
}

/**
 * A fresh database, a client (CLI), an API process (`serve --role api`) and a seeded tenant: person 1,
 * absence definition 10, shift definition 20. Settings are added to every process's environment.
 */
export async function startCluster(settings: Record<string, string>): Promise<Cluster> {
  const store = await createProcessStore();
  const env: Record<string, string> = {
    ...store.env,
    TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
    TIMEHOOK_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ...settings,
  };
  const databaseName = new URL(env.DATABASE_URL!).pathname.slice(1);
  const processes = new Set<ServerProcess>();
  const db = new pg.Client({ connectionString: env.DATABASE_URL });
  await db.connect();
  db.on('error', () => undefined); // the outage test cuts this connection too
  const close = async () => {
    for (const p of processes)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all([...processes].map((p) => p.exited));
    await db.end().catch(() => undefined);
    await store.remove();
  };
  try {
    const credentials = await createCliClient(env, TENANT);
    const api = await startServerProcess(env, ['--role', 'api']);
    processes.add(api);
    const token = await fetchToken(api.url, TENANT, credentials);

    const call: Cluster['call'] = (method, path, body) =>
      callConnector(api.url, { method, path, token, userAgent: 'TimehookScaleOutTest/1.0', body });
    const ok: Cluster['ok'] = async (method, path, body) => {
      const res = await call(method, path, body);
      if (res.status < 200 || res.status >= 300) {
        const logged =
          res.status >= 500
            ? api
                .output()
                .split('\n')
                .filter((l) => l.includes('"level":50'))
            : [];
        assert.fail(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}\n${logged.join('\n')}`);
      }
      return res.body;
    };
    await ok('PUT', '/people/1', person(1));
    await ok('PUT', '/absence-definitions/10', definition(10));
    await ok('PUT', '/shift-definitions/20', definition(20));

    return {
      env,
      databaseName,
      db,
      api,
      token,
      call,
      ok,
      async startWorker() {
        const worker = await startServerProcess(env, ['--role', 'worker']);
        processes.add(worker);
        const workerId = workerIdOf(worker);
        return {
          ...worker,
          workerId,
          attempts: () => worker.output().split('"msg":"delivery attempt"').length - 1,
        };
      },
      async leaseOwners() {
        const rows = await db.query<{ owner: string | null; n: number }>(
          `select p.lease_owner as owner, count(*)::int as n
             from webhooks w join delivery_lanes p on p.webhook_id = w.id
            where w.status = 'Enabled' and w.deleted_at is null
              and (p.lease_until > now() or p.lease_owner is null)
            group by p.lease_owner`,
        );
        return new Map(rows.rows.map((r) => [r.owner, r.n]));
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** `n` absence upserts for ids from `firstId`, varied by `round` so that every one records a change. */
export const absenceBatch = (firstId: number, n: number, round: number) =>
  Array.from({ length: n }, (_, i) => ({
    ...absence({ durationInMinutes: 1 + (round % 1_000) }),
    id: firstId + i,
  }));

/**
 * The changes written and what a receiver made of them: every change (by version) must be acknowledged at
 * least once on every path, and no version of an entity may arrive before the previous version of that
 * entity was acknowledged on that path (SPEC §3.2).
 */
export class Ledger {
  readonly versions = new Set<number>();

  /** Records the versions of a batch answer (all its upserts recorded a change). */
  addBatch(
    result: { upserted: number; unchanged: number; deleted: number; lastChangeVersion: string },
    size: number,
  ) {
    assert.equal(result.upserted, size, 'every upsert recorded a change');
    assert.equal(result.unchanged, 0);
    const last = parseChangeVersion(result.lastChangeVersion)!;
    for (let v = last - size + 1; v <= last; v++) this.versions.add(v);
  }

  addVersion(changeVersion: string) {
    this.versions.add(parseChangeVersion(changeVersion)!);
  }

  /** Versions not yet acknowledged (answered 2xx) on `path`. */
  missing(requests: readonly ReceivedRequest[], path: string): number[] {
    const acked = new Set<number>();
    for (const r of requests) if (r.path === path && r.status === 200) acked.add(versionOf(r));
    return [...this.versions].filter((v) => !acked.has(v));
  }

  /**
   * Per-entity order on `path`: each arrival of version v finds the entity's previous version (among the
   * ledger's) acknowledged before it arrived. Returns the violations, described.
   */
  orderViolations(requests: readonly ReceivedRequest[], path: string): string[] {
    const mine = requests.filter((r) => r.path === path);
    const firstAck = new Map<number, number>();
    const entityOf = new Map<number, number>();
    for (const r of mine) {
      const body = JSON.parse(r.body) as { data: { id: number; changeVersion: string } };
      const v = parseChangeVersion(body.data.changeVersion)!;
      entityOf.set(v, body.data.id);
      if (r.status === 200 && r.answeredAt !== undefined)
        firstAck.set(v, Math.min(firstAck.get(v) ?? Infinity, r.answeredAt));
    }
    const byEntity = new Map<number, number[]>();
    for (const [v, e] of entityOf) if (this.versions.has(v)) byEntity.set(e, [...(byEntity.get(e) ?? []), v]);
    const previous = new Map<number, number>();
    for (const vs of byEntity.values()) {
      vs.sort((a, b) => a - b);
      for (let i = 1; i < vs.length; i++) previous.set(vs[i]!, vs[i - 1]!);
    }
    const violations: string[] = [];
    for (const r of mine) {
      const v = versionOf(r);
      const before = previous.get(v);
      if (before === undefined) continue;
      const acked = firstAck.get(before);
      if (acked === undefined || acked > r.arrivedAt) {
        violations.push(
          `entity ${entityOf.get(v)}: version ${v} arrived before version ${before} was acknowledged`,
        );
      }
    }
    return violations;
  }
}

export function versionOf(r: ReceivedRequest): number {
  return parseChangeVersion((JSON.parse(r.body) as { data: { changeVersion: string } }).data.changeVersion)!;
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
