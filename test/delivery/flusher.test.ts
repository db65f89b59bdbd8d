// The Flusher's batching: records of finished attempts go to the store at most once per gathering interval,
// also while writes keep up with them, and none is lost or written twice when a write fails.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Flusher, GATHER_MS } from '../../src/delivery/flusher.ts';
import { createLogger } from '../../src/log.ts';
import { delivered } from '../helpers/attempts.ts';

test('under a steady stream, writes start at least the gathering interval apart and carry every record once', async () => {
  const starts: number[] = [];
  const written: number[] = [];
  const flusher = new Flusher(
    async (batch) => {
      starts.push(performance.now());
      await sleep(3); // a store round trip shorter than the interval
      written.push(...batch.map((r) => r.deliveryId));
    },
    createLogger('silent'),
    () => undefined,
  );
  let next = 1;
  const until = performance.now() + 20 * GATHER_MS;
  while (performance.now() < until) {
    flusher.add(delivered(next++));
    await sleep(1);
  }
  assert.equal(await flusher.drain(5_000), true);
  const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
  // Timers count from the event loop's cached clock, so one may fire a little early by performance.now(); a
  // write started as soon as the previous one returned would come after the 3 ms round trip.
  assert.ok(
    gaps.every((gap) => gap >= GATHER_MS / 2),
    `gaps between writes: ${gaps.map((g) => g.toFixed(1)).join(', ')} ms`,
  );
  assert.ok(starts.length >= 2, `only ${starts.length} write(s)`);
  assert.deepEqual(
    written,
    Array.from({ length: next - 1 }, (_, i) => i + 1),
  );
});

test('a failed write keeps its records, in order, for the next write', async () => {
  const written: number[] = [];
  let fail = true;
  const flusher = new Flusher(
    async (batch) => {
      if (fail) {
        fail = false;
        throw new Error('store down');
      }
      written.push(...batch.map((r) => r.deliveryId));
    },
    createLogger('silent'),
    () => undefined,
  );
  for (let i = 1; i <= 5; i++) flusher.add(delivered(i));
  assert.equal(await flusher.drain(5_000), true);
  flusher.add(delivered(6));
  assert.equal(await flusher.drain(5_000), true);
  assert.deepEqual(written, [1, 2, 3, 4, 5, 6]);
  assert.equal(flusher.backlog, 0);
});
