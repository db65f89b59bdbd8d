// The ceiling: the most this machine can send to the benchmark receiver with no store at all — a plain undici
// Pool loop that builds the same event bodies the service sends, signs each with HMAC-SHA256 (Standard
// Webhooks headers) and keeps `concurrency` requests in flight. Forked by bench/run.ts, one run per process.

import { createHmac } from 'node:crypto';
import { Pool } from 'undici';
import { eventBody, formatVersion } from './fixtures.ts';
import type { CeilingRequest, CeilingResult } from './protocol.ts';

const now = () => performance.timeOrigin + performance.now();

async function run(job: CeilingRequest): Promise<CeilingResult> {
  const cpu = process.cpuUsage();
  if (job.warmup > 0) {
    await loop({ ...job, url: job.warmupUrl, count: job.warmup, firstVersion: 1, warmup: 0 });
  }
  const result = await loop(job);
  const used = process.cpuUsage(cpu);
  return { ...result, loopCpuSeconds: (used.user + used.system) / 1e6 };
}

async function loop(job: CeilingRequest): Promise<CeilingResult> {
  const url = new URL(job.url);
  const key = Buffer.from(job.key.replace(/^whsec_/, ''), 'base64');
  const pool = new Pool(url.origin, { connections: job.concurrency, pipelining: 1 });
  const result: CeilingResult = {
    sent: 0,
    ok: 0,
    errors: 0,
    firstError: undefined,
    startedAt: now(),
    endedAt: 0,
    bodyBytes: 0,
    loopCpuSeconds: 0,
  };
  const deadline = Date.now() + job.deadlineMs;
  let next = 0;
  const worker = async () => {
    while (next < job.count && Date.now() < deadline) {
      const i = next++;
      const version = job.firstVersion + i;
      const body = eventBody(1 + (i % job.entities), Math.floor(i / job.entities), version);
      const id = `msg_ceiling_${formatVersion(version)}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
      result.sent++;
      result.bodyBytes += Buffer.byteLength(body);
      try {
        const response = await pool.request({
          method: 'POST',
          path: url.pathname,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'TimehookBenchCeiling/1.0',
            'webhook-id': id,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': `v1,${signature}`,
          },
          body,
        });
        await response.body.dump();
        if (response.statusCode >= 200 && response.statusCode < 300) result.ok++;
        else {
          result.errors++;
          result.firstError ??= `status ${response.statusCode}`;
        }
      } catch (error) {
        result.errors++;
        result.firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  result.endedAt = now();
  await pool.close();
  return result;
}

if (!process.send) throw new Error('bench/ceiling.ts must be forked with an IPC channel.');
process.once('message', (job: CeilingRequest) => {
  void run(job).then(
    (result) => process.send!({ t: 'done', result }, () => process.exit(0)),
    (error: Error) =>
      process.send!({ t: 'failed', error: error.stack ?? error.message }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(0));
