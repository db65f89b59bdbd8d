// When the next attempt of a failed event happens (SPEC §3): a pure function of the outcome, the retry
// schedule (TIMEHOOK_RETRY_SCHEDULE), the clock and a jitter source, so tests can fix all of them.

import type { Outcome } from './outcome.ts';

/** Each scheduled delay is stretched by a random 0–10 %, so failed events of many webhooks spread out. */
export const JITTER_FRACTION = 0.1;

export type RetryDecision =
  /** Try again at this time (epoch ms). */
  | { type: 'retry'; atMs: number }
  /** The schedule is used up: the event is given up and its webhook becomes Disabled/RetriesExhausted. */
  | { type: 'exhausted' };

/**
 * The decision after attempt number `attempts` (1 = the first attempt) failed with `outcome`.
 *
 * - The k-th failure waits schedule[k-1] plus jitter() × 10 % of it; after schedule.length + 1 failed
 *   attempts the event is exhausted. With the default 5s,5m,30m,2h,5h,10h,10h that is 8 attempts over ~33 h.
 * - A Retry-After (429/503) can only lengthen that wait: the next attempt is no sooner than it says. It never
 *   shortens the schedule, so an endpoint that answers "Retry-After: 0" cannot make us spin, and it counts
 *   as a failed attempt like any other (exhaustion still takes the whole schedule).
 *
 * jitter returns a number in [0, 1) (Math.random in production).
 */
export function nextAttemptAt(
  outcome: Extract<Outcome, { type: 'retry' }>,
  attempts: number,
  schedule: readonly number[],
  nowMs: number,
  jitter: () => number,
): RetryDecision {
  const scheduled = schedule[attempts - 1];
  if (scheduled === undefined || attempts < 1) return { type: 'exhausted' };
  const jittered = scheduled + Math.floor(scheduled * JITTER_FRACTION * Math.min(Math.max(jitter(), 0), 1));
  const delay = Math.max(jittered, outcome.retryAfterMs ?? 0);
  return { type: 'retry', atMs: nowMs + delay };
}
