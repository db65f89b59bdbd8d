// Attempt records as the delivery engine hands them to the store (recordAttempts, the Flusher).

import type { AttemptRecord } from '../../src/store/deliveries.ts';

/** A first-try success: 200 after 3 ms. */
export const delivered = (deliveryId: number, attempt = 1): AttemptRecord => ({
  deliveryId,
  attempt,
  at: new Date(),
  durationMs: 3,
  statusCode: 200,
  error: null,
  responseBody: 'ok',
  result: 'Delivered',
  nextAttemptAt: null,
});

/** A 500 after 5 ms, retried in a minute. */
export const failed = (deliveryId: number, attempt = 1): AttemptRecord => ({
  deliveryId,
  attempt,
  at: new Date(),
  durationMs: 5,
  statusCode: 500,
  error: null,
  responseBody: 'boom',
  result: 'Failed',
  nextAttemptAt: new Date(Date.now() + 60_000),
});
