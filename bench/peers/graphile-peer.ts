// Peer (a): graphile-worker 0.16 + undici, a queue per entity. Each change becomes a job
// add_jobs('deliver', payload, queue_name => '<webhook>:<entity>'), so the jobs of one entity run one at a
// time, in order; a runner with concurrency 16 signs and POSTs, and a non-2xx answer throws, so graphile-worker
// retries the job with its own backoff (exp(attempts) seconds, fixed in 0.16's SQL).

import { Logger, run, type Task } from 'graphile-worker';
import pg from 'pg';
import type { PeerConfig } from '../protocol.ts';
import { deliverJob, type Change, type DeliverJob, type Peer, type Sender } from './peer.ts';

/** One statement per batch: graphile_worker.add_jobs over the batch's jobs (0.16 has no addJobs in JS). */
const ADD_JOBS = `
  select count(*) from graphile_worker.add_jobs(array(
    select row('deliver', payload::json, queue_name, null, $3::int, null, null, null)::graphile_worker.job_spec
      from unnest($1::text[], $2::text[]) as spec(queue_name, payload)))`;

/** graphile-worker logs every failed attempt at error level; those are expected here (the flaky receiver). */
const logger = new Logger(() => (level, message, meta) => {
  const severe = String(level) === 'error' || String(level) === 'warning';
  if (severe && meta?.failure !== true) process.stderr.write(`graphile peer: ${message}\n`);
});

export async function startGraphilePeer(config: PeerConfig, sender: Sender): Promise<Peer> {
  const connectionString = config.databaseUrl;
  if (!connectionString) throw new Error('the graphile-worker peer needs databaseUrl');
  const deliver: Task = async (payload) => sender.send(payload as DeliverJob);
  const runner = await run({
    connectionString,
    concurrency: config.concurrency,
    maxPoolSize: config.concurrency,
    noHandleSignals: true,
    taskList: { deliver },
    logger,
  });
  const pool = new pg.Pool({ connectionString, max: 4 });
  return {
    async enqueue(changes: readonly Change[]) {
      const queues: string[] = [];
      const payloads: string[] = [];
      config.webhooks.forEach((webhook, i) => {
        for (const change of changes) {
          queues.push(`${webhook.name}:${change.entity}`);
          payloads.push(JSON.stringify(deliverJob(i, webhook.name, change)));
        }
      });
      await pool.query(ADD_JOBS, [queues, payloads, config.maxAttempts]);
    },
    async stop() {
      await runner.stop();
      await pool.end();
    },
  };
}
