// The parent side of a peer process (bench/peers/child.ts): start it on resources of its own — a scratch
// PostgreSQL database for graphile-worker, a key prefix on Redis for BullMQ — hand it the changes to write,
// read its CPU, stop it, and remove what it left behind.

import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { alive, cpuSeconds, forkTs, mainThreadCpuSeconds, onCleanup } from '../children.ts';
import type {
  PeerConfig,
  PeerKind,
  PeerMessage,
  PeerReady,
  PeerReply,
  PeerStats,
  PeerWebhook,
  PeerWritePlan,
  PeerWriteResult,
} from '../protocol.ts';
import { createStore } from '../service.ts';

/** Where the peers run: the PostgreSQL server to create scratch databases on, and the Redis server. */
export interface PeerServers {
  pgUrl: string;
  redisUrl: string;
}

export interface PeerOptions {
  concurrency: number;
  maxAttempts: number;
  retryDelayMs: number;
}

export const PEER_NAMES: Record<PeerKind, string> = {
  graphile: 'graphile-worker peer',
  bullmq: 'BullMQ peer',
};

type Expected = Exclude<PeerReply['t'], 'failed'>;
type ReplyOf<T extends Expected> = Extract<PeerReply, { t: T }>;

/** One peer process with its resources; close() stops it and removes them. */
export class PeerProcess {
  readonly #unregister: () => void;

  private constructor(
    readonly kind: PeerKind,
    readonly child: ChildProcess,
    readonly info: PeerReady,
    /** The scratch database (graphile), whose server's CPU is metered with the peer's. */
    readonly pg: { adminUrl: string; database: string } | undefined,
    readonly remove: () => Promise<void>,
  ) {
    this.#unregister = onCleanup(remove);
  }

  /** Starts a peer of `kind` sending to `webhooks`; resolves once its worker is running. */
  static async start(
    kind: PeerKind,
    servers: PeerServers,
    webhooks: PeerWebhook[],
    options: PeerOptions,
  ): Promise<PeerProcess> {
    const config: PeerConfig = { kind, webhooks, ...options };
    let pg: PeerProcess['pg'];
    let remove: () => Promise<void>;
    if (kind === 'graphile') {
      const store = await createStore('postgres', servers.pgUrl);
      config.databaseUrl = store.pg!.url;
      pg = { adminUrl: store.pg!.adminUrl, database: store.pg!.database };
      remove = () => store.remove();
    } else {
      const prefix = `timehook_bench_${randomBytes(5).toString('hex')}`;
      config.redisUrl = servers.redisUrl;
      config.redisPrefix = prefix;
      remove = () => deleteKeys(servers.redisUrl, `${prefix}:*`);
    }
    const child = forkTs('./peers/child.ts', []);
    try {
      const ready = await next(child, 'ready', 60_000, () => tell(child, { t: 'start', config }));
      return new PeerProcess(kind, child, ready.info, pg, remove);
    } catch (error) {
      if (alive(child)) child.kill('SIGKILL');
      await remove();
      throw error;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  cpuSeconds(): number | undefined {
    return cpuSeconds(this.child.pid);
  }

  mainThreadCpuSeconds(): number | undefined {
    return mainThreadCpuSeconds(this.child.pid);
  }

  /** Runs the loader; resolves with what it wrote once every insert has returned. */
  write(plan: PeerWritePlan, timeoutMs: number): Promise<PeerWriteResult> {
    return next(this.child, 'written', timeoutMs, () => tell(this.child, { t: 'write', plan })).then(
      (m) => m.result,
    );
  }

  /** Stops the peer (its jobs in flight finish), then removes its database or keys. */
  async close(): Promise<PeerStats | undefined> {
    let stats: PeerStats | undefined;
    try {
      if (alive(this.child)) {
        stats = (await next(this.child, 'stopped', 30_000, () => tell(this.child, { t: 'stop' }))).stats;
      }
    } finally {
      if (alive(this.child)) this.child.kill('SIGKILL');
      this.#unregister();
      await this.remove();
    }
    return stats;
  }
}

/** Sends the peer process a message (typed, unlike ChildProcess.send). */
function tell(child: ChildProcess, message: PeerMessage): void {
  child.send(message);
}

/** The child's next reply of type `t`, after `send()`; rejects on its failure, its exit, or the timeout. */
function next<T extends Expected>(
  child: ChildProcess,
  t: T,
  timeoutMs: number,
  send: () => void,
): Promise<ReplyOf<T>> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: PeerReply) => {
      if (message.t === t) {
        done();
        resolve(message as ReplyOf<T>);
      } else if (message.t === 'failed') {
        done();
        reject(new Error(`the peer process failed: ${message.error}`));
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`the peer process exited (${String(code)}) before it answered ${t}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the peer process did not answer ${t} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    send();
  });
}

/** Whether Redis answers PING within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 2_000): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** Deletes the keys matching `pattern` (one run's prefix), in batches. */
async function deleteKeys(url: string, pattern: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    for await (const keys of redis.scanStream({ match: pattern, count: 1000 })) {
      if ((keys as string[]).length > 0) await redis.unlink(...(keys as string[]));
    }
  } finally {
    redis.disconnect();
  }
}
