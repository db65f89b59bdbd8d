// The recorder of delivery engine v2: outcomes gathered while a write is in flight go together in the next,
// callers resolve only once their records are durable, failed writes are retried, cursors ride along.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Recorder, RecorderClosedError, type RecordBatch } from '../../src/delivery/recorder.ts';

/** A store whose writes wait until the test lets them finish (or fail). */
function slowStore() {
  const writes: { batch: RecordBatch<number>; finish(): void; fail(): void }[] = [];
  const write = (batch: RecordBatch<number>) =>
    new Promise<void>((resolve, reject) => {
      writes.push({ batch, finish: resolve, fail: () => reject(new Error('store down')) });
    });
  return { writes, write };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

test('records that arrive while a write is in flight go together in the next write', async () => {
  const store = slowStore();
  const recorder = new Recorder<number>({ write: store.write });
  const first = recorder.record([1]);
  await tick();
  const second = recorder.record([2, 3]);
  const third = recorder.record([4]);
  await tick();
  assert.equal(store.writes.length, 1, 'one write in flight at a time');
  store.writes[0]!.finish();
  await first;
  await tick();
  assert.deepEqual(store.writes[1]!.batch.records, [2, 3, 4]);
  store.writes[1]!.finish();
  await Promise.all([second, third]);
});

test('a caller resolves only once its write is durable', async () => {
  const store = slowStore();
  const recorder = new Recorder<number>({ write: store.write });
  let done = false;
  void recorder.record([1]).then(() => (done = true));
  await tick();
  assert.equal(done, false);
  store.writes[0]!.finish();
  await tick();
  assert.equal(done, true);
});

test('a failed write is written again, and its callers wait for that', async () => {
  const store = slowStore();
  const errors: unknown[] = [];
  const recorder = new Recorder<number>({
    write: store.write,
    backoffMs: [1, 1],
    onError: (e) => errors.push(e),
  });
  let done = false;
  void recorder.record([7]).then(() => (done = true));
  await tick();
  store.writes[0]!.fail();
  for (let i = 0; i < 500 && store.writes.length < 2; i++) await new Promise((r) => setTimeout(r, 2));
  assert.equal(done, false);
  assert.equal(errors.length, 1);
  assert.deepEqual(store.writes[1]!.batch.records, [7]);
  store.writes[1]!.finish();
  await tick();
  assert.equal(done, true);
});

test('cursors ride along with the next write; the latest note of a lane wins', async () => {
  const store = slowStore();
  const recorder = new Recorder<number>({ write: store.write });
  recorder.noteCursor('a', 5);
  await tick();
  recorder.noteCursor('a', 9);
  recorder.noteCursor('b', 2);
  const p = recorder.record([1]);
  store.writes[0]!.finish();
  await tick();
  assert.deepEqual([...store.writes[0]!.batch.cursors], [['a', 5]]);
  assert.deepEqual(
    [...store.writes[1]!.batch.cursors],
    [
      ['a', 9],
      ['b', 2],
    ],
  );
  store.writes[1]!.finish();
  await p;
});

test('splits batches at maxBatch whole callers at a time', async () => {
  const sizes: number[] = [];
  const recorder = new Recorder<number>({
    maxBatch: 3,
    write: async (batch) => {
      sizes.push(batch.records.length);
    },
  });
  await Promise.all([recorder.record([1, 2]), recorder.record([3, 4]), recorder.record([5])]);
  assert.deepEqual(sizes, [2, 3]);
});

test('after close it refuses records', async () => {
  const recorder = new Recorder<number>({ write: async () => undefined });
  await recorder.close();
  await assert.rejects(recorder.record([1]), RecorderClosedError);
});
