// The test harness plus a running delivery worker on the same store (PGlite in memory, or a fresh PostgreSQL
// schema with DATABASE_URL), and helpers to create webhooks and read the delivery log through the HTTP API.
// Local receivers need TIMEHOOK_ALLOW_INSECURE_DESTINATIONS=true, which this harness sets by default.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { Registry } from 'prom-client';
import type { EngineOptions } from '../../src/delivery/engine.ts';
import { startDeliveryWorker, type DeliveryWorker } from '../../src/delivery/worker.ts';
import { createLogger } from '../../src/log.ts';
import { classifyAddress } from '../../src/net/destination-guard.ts';
import { createHarness, type Harness } from './harness.ts';

/** A delivery as the log API renders it (SPEC §1.3). */
export interface DeliveryView {
  id: number;
  changeVersion: string;
  changeType: string;
  entityId: number;
  status: 'Pending' | 'Failed' | 'Delivered' | 'Abandoned';
  attemptCount: number;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  createdAt: string;
  redeliveryOf: number | null;
}

export interface AttemptJson {
  at: string;
  durationMs: number;
  statusCode?: number;
  error?: string;
  responseBody: string;
}

export interface DeliveryDetail extends DeliveryView {
  attempts: AttemptJson[];
}

export interface DeliveryHarness extends Harness {
  worker: DeliveryWorker;
  metrics: Registry;
  /** Stops the worker (graceful) and starts a fresh one on the same store. */
  restartWorker(): Promise<void>;
  /** POST /webhooks; asserts 201 and returns the created webhook (with its key). */
  createWebhook(
    token: string,
    destinationUrl: string,
    options?: { collection?: string; externalReferences?: string },
  ): Promise<{ id: string; key: string; [k: string]: unknown }>;
  /** GET the delivery log (all pages, newest first). */
  deliveries(token: string, webhookId: string, filter?: string): Promise<DeliveryView[]>;
  delivery(token: string, webhookId: string, deliveryId: number): Promise<DeliveryDetail>;
}

export interface DeliveryHarnessOptions {
  env?: Record<string, string>;
  tuning?: Partial<EngineOptions>;
}

export async function createDeliveryHarness(options: DeliveryHarnessOptions = {}): Promise<DeliveryHarness> {
  const h = await createHarness({
    TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
    TIMEHOOK_RETRY_SCHEDULE: '100ms,200ms',
    TIMEHOOK_DELIVERY_TIMEOUT: '2s',
    ...options.env,
  });
  const metrics = new Registry();
  const logger = createLogger(h.config.logLevel);
  const start = () =>
    startDeliveryWorker({
      db: h.db,
      box: h.box,
      config: h.config,
      logger,
      metrics,
      classifyAddress,
      ...(options.tuning ? { tuning: options.tuning } : {}),
    });
  const harness = Object.assign(h, {
    worker: await start(),
    metrics,
  }) as DeliveryHarness;
  const closeHarness = h.close.bind(h);
  harness.restartWorker = async () => {
    await harness.worker.stop();
    harness.worker = await start();
  };
  harness.close = async () => {
    await harness.worker.stop();
    await closeHarness();
  };
  harness.createWebhook = async (token, destinationUrl, opts = {}) => {
    const query = opts.externalReferences
      ? `?externalReferences=${encodeURIComponent(opts.externalReferences)}`
      : '';
    const res = await h.request({
      method: 'POST',
      path: `/webhooks${query}`,
      token,
      body: { destinationUrl, collectionName: opts.collection ?? 'absences' },
    });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  };
  harness.deliveries = async (token, webhookId, filter) => {
    const out: DeliveryView[] = [];
    let path: string | undefined =
      `/webhooks/${webhookId}/deliveries${filter ? `?filter=${encodeURIComponent(filter)}` : ''}`;
    while (path) {
      const res = await h.request({ method: 'GET', path, token });
      assert.equal(res.statusCode, 200, res.body);
      const page = res.json<{ value: DeliveryView[]; nextLink?: string }>();
      out.push(...page.value);
      path = page.nextLink;
    }
    return out;
  };
  harness.delivery = async (token, webhookId, deliveryId) => {
    const res = await h.request({
      method: 'GET',
      path: `/webhooks/${webhookId}/deliveries/${deliveryId}`,
      token,
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<DeliveryDetail>();
  };
  return harness;
}

/** createDeliveryHarness, closed automatically after the file's tests. */
export async function useDeliveryHarness(options: DeliveryHarnessOptions = {}): Promise<DeliveryHarness> {
  const harness = await createDeliveryHarness(options);
  after(() => harness.close());
  return harness;
}
