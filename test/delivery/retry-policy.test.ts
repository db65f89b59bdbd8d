import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nextAttemptAt } from '../../src/delivery/retry-policy.ts';

const NOW = 1_000_000;
const SCHEDULE = [5_000, 300_000, 1_800_000];
const noJitter = () => 0;
const fullJitter = () => 0.999999;

describe('nextAttemptAt', () => {
  const cases: [string, number, number | undefined, () => number, ReturnType<typeof nextAttemptAt>][] = [
    ['the first failure waits the first delay', 1, undefined, noJitter, { type: 'retry', atMs: NOW + 5_000 }],
    [
      'the second failure waits the second delay',
      2,
      undefined,
      noJitter,
      { type: 'retry', atMs: NOW + 300_000 },
    ],
    [
      'the last scheduled failure waits the last delay',
      3,
      undefined,
      noJitter,
      { type: 'retry', atMs: NOW + 1_800_000 },
    ],
    ['one failure more than the schedule is exhausted', 4, undefined, noJitter, { type: 'exhausted' }],
    ['far beyond the schedule is exhausted', 40, undefined, noJitter, { type: 'exhausted' }],
    ['jitter adds up to 10 %', 1, undefined, fullJitter, { type: 'retry', atMs: NOW + 5_499 }],
    ['half jitter adds 5 %', 2, undefined, () => 0.5, { type: 'retry', atMs: NOW + 315_000 }],
    ['Retry-After longer than the delay wins', 1, 60_000, noJitter, { type: 'retry', atMs: NOW + 60_000 }],
    [
      'Retry-After shorter than the delay does not shorten it',
      2,
      1_000,
      noJitter,
      { type: 'retry', atMs: NOW + 300_000 },
    ],
    ['Retry-After 0 still waits the schedule', 1, 0, noJitter, { type: 'retry', atMs: NOW + 5_000 }],
    ['Retry-After does not save an exhausted event', 4, 1_000, noJitter, { type: 'exhausted' }],
  ];
  for (const [name, attempts, retryAfterMs, jitter, expected] of cases) {
    test(name, () => {
      const outcome =
        retryAfterMs === undefined ? { type: 'retry' as const } : { type: 'retry' as const, retryAfterMs };
      assert.deepEqual(nextAttemptAt(outcome, attempts, SCHEDULE, NOW, jitter), expected);
    });
  }

  test('jitter never goes below the delay or above 10 % more', () => {
    for (let i = 0; i < 1000; i++) {
      const decision = nextAttemptAt({ type: 'retry' }, 1, [1_000], 0, Math.random);
      assert.equal(decision.type, 'retry');
      if (decision.type === 'retry')
        assert.ok(decision.atMs >= 1_000 && decision.atMs <= 1_100, String(decision.atMs));
    }
  });

  test('an empty schedule gives up after the first attempt', () => {
    assert.deepEqual(nextAttemptAt({ type: 'retry' }, 1, [], NOW, noJitter), { type: 'exhausted' });
  });
});
