// The bench's composition of workload 2's rate from ingest alone and delivery alone (bench/model.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { composedRatio, neededRatio } from '../../bench/model.ts';

const near = (actual: number | undefined, expected: number) =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-3, `${actual} is not ${expected}`);

test('ingest and delivery in series compose harmonically', () => {
  // Equal sides halve: each change costs the time of both.
  near(composedRatio(1, 1), 0.5);
  // The full run 2026-11-29T145256Z on PostgreSQL: ingest 1.445 ×, delivery alone 0.597 ×; measured 0.416 ×.
  near(composedRatio(1.445, 0.597), 0.4225);
  // The composition is slower than either side.
  assert.ok(composedRatio(3, 0.8) < 0.8);
});

test('the rate one side needs for a target, given the other', () => {
  // At ingest 1.445 × the ceiling, 0.5 × needs delivery alone at 0.765 ×; composing them gives the target back.
  near(neededRatio(0.5, 1.445), 0.7648);
  near(composedRatio(1.445, neededRatio(0.5, 1.445)!), 0.5);
  // Delivery alone at or below the target: no ingest speed reaches it.
  assert.equal(neededRatio(0.5, 0.5), undefined);
  assert.equal(neededRatio(0.5, 0.42), undefined);
});
