// What a peer is to its process (bench/peers/child.ts): a way to enqueue a batch of changes, one job per change
// and webhook, committed when the promise resolves; and a way to stop. Plus the one job both peers carry and
// the sender both use: sign (Standard Webhooks) and POST with undici, throwing on anything but 2xx.

import { createHmac } from 'node:crypto';
import { request } from 'undici';
import { absence, formatVersion } from '../fixtures.ts';
import type { PeerStats, PeerWebhook } from '../protocol.ts';

export interface Change {
  entity: number;
  round: number;
  version: number;
}

export interface Peer {
  enqueue(changes: readonly Change[]): Promise<void>;
  /** Stops taking jobs, waits for those running, and closes its connections. */
  stop(): Promise<void>;
}

/** A job's payload: which webhook, the event's webhook-id (the same on every retry), and the event. */
export interface DeliverJob {
  webhook: number;
  id: string;
  event: { changeType: 'InsertOrUpdate'; data: Record<string, unknown> };
}

/** The job for `change` to webhook number `webhook`: the event Timehook would send (bench/fixtures.ts eventBody). */
export function deliverJob(webhook: number, name: string, change: Change): DeliverJob {
  const changeVersion = formatVersion(change.version);
  return {
    webhook,
    id: `msg_${name}_${changeVersion}`,
    event: {
      changeType: 'InsertOrUpdate',
      data: { changeVersion, ...absence(change.entity, change.round) },
    },
  };
}

/** Signs and POSTs a job's event to its webhook; counts attempts and failures for the process's report. */
export class Sender {
  readonly stats: PeerStats = { attempts: 0, failedAttempts: 0, firstFailure: undefined };
  readonly #targets: { url: string; key: Buffer }[];

  constructor(webhooks: readonly PeerWebhook[]) {
    this.#targets = webhooks.map((w) => ({
      url: w.url,
      key: Buffer.from(w.key.replace(/^whsec_/, ''), 'base64'),
    }));
  }

  /** Resolves on a 2xx answer; throws otherwise, so the queue retries the job. */
  async send(job: DeliverJob): Promise<void> {
    const target = this.#targets[job.webhook]!;
    const body = JSON.stringify(job.event);
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', target.key)
      .update(`${job.id}.${timestamp}.`)
      .update(body)
      .digest('base64');
    this.stats.attempts++;
    try {
      const response = await request(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': job.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': `v1,${signature}`,
        },
        body,
      });
      await response.body.dump();
      if (response.statusCode < 200 || response.statusCode >= 300) {
        throw new Error(`${target.url} answered ${response.statusCode}`);
      }
    } catch (error) {
      this.stats.failedAttempts++;
      this.stats.firstFailure ??= (error as Error).message;
      throw error;
    }
  }
}
