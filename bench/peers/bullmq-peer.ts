// Peer (b): BullMQ + undici on Redis. A Queue per webhook, addBulk from the loader, and per webhook a Worker
// with concurrency 16 that signs and POSTs; a non-2xx answer throws, so BullMQ retries the job (attempts with
// exponential backoff). BullMQ has no per-entity order: a retried job is overtaken by the entity's later ones.

import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { PeerConfig, PeerReady } from '../protocol.ts';
import { deliverJob, type Change, type DeliverJob, type Peer, type Sender } from './peer.ts';

export async function startBullmqPeer(
  config: PeerConfig,
  sender: Sender,
): Promise<{ peer: Peer; info: PeerReady }> {
  const url = new URL(config.redisUrl ?? 'redis://127.0.0.1:6379');
  const connection = {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: Number(url.pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  };
  const prefix = config.redisPrefix ?? 'bull';
  const queues = config.webhooks.map((w) => new Queue<DeliverJob>(w.name, { connection, prefix }));
  const workers = config.webhooks.map(
    (w) =>
      new Worker<DeliverJob>(w.name, (job: Job<DeliverJob>) => sender.send(job.data), {
        connection,
        prefix,
        concurrency: config.concurrency,
      }),
  );
  for (const worker of workers) {
    worker.on('error', (error) => process.stderr.write(`bullmq peer: ${error.message}\n`));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const server = await serverInfo(connection);
  const opts = {
    attempts: config.maxAttempts,
    backoff: { type: 'exponential', delay: config.retryDelayMs },
    removeOnComplete: true,
    removeOnFail: 1000,
  };
  const peer: Peer = {
    async enqueue(changes: readonly Change[]) {
      await Promise.all(
        queues.map((queue, i) =>
          queue.addBulk(
            changes.map((change) => ({
              name: 'deliver',
              data: deliverJob(i, config.webhooks[i]!.name, change),
              opts,
            })),
          ),
        ),
      );
    },
    async stop() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(queues.map((q) => q.close()));
    },
  };
  return {
    peer,
    info: {
      redisPid: Number(/^process_id:(\d+)/m.exec(server)?.[1]) || undefined,
      redisVersion: /^redis_version:(\S+)/m.exec(server)?.[1],
    },
  };
}

/** The Redis server's INFO server section (its pid and version, for the bench's records). */
async function serverInfo(connection: { host: string; port: number; db: number }): Promise<string> {
  const redis = new Redis({ ...connection, maxRetriesPerRequest: 1 });
  try {
    return await redis.info('server');
  } finally {
    redis.disconnect();
  }
}
