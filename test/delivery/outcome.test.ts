import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  classify,
  parseRetryAfterMs,
  RETRY_AFTER_CAP_MS,
  type AttemptReport,
} from '../../src/delivery/outcome.ts';

const NOW = Date.parse('2026-03-02T10:00:00Z');
const answer = (statusCode: number, retryAfter?: string): AttemptReport => ({
  statusCode,
  retryAfter,
  error: undefined,
});

describe('classify', () => {
  const cases: [string, AttemptReport, ReturnType<typeof classify>][] = [
    ['200 is delivered', answer(200), { type: 'delivered' }],
    ['201 is delivered', answer(201), { type: 'delivered' }],
    ['204 is delivered', answer(204), { type: 'delivered' }],
    ['299 is delivered', answer(299), { type: 'delivered' }],
    ['410 is gone', answer(410), { type: 'gone' }],
    ['410 with Retry-After is still gone', answer(410, '5'), { type: 'gone' }],
    ['100 retries', answer(100), { type: 'retry' }],
    ['301 retries (redirects are not followed)', answer(301), { type: 'retry' }],
    ['302 retries', answer(302), { type: 'retry' }],
    ['307 retries', answer(307), { type: 'retry' }],
    ['400 retries', answer(400), { type: 'retry' }],
    ['404 retries', answer(404), { type: 'retry' }],
    ['500 retries', answer(500), { type: 'retry' }],
    ['500 ignores Retry-After', answer(500, '30'), { type: 'retry' }],
    ['429 without Retry-After retries on the schedule', answer(429), { type: 'retry' }],
    ['429 with seconds', answer(429, '30'), { type: 'retry', retryAfterMs: 30_000 }],
    ['503 with seconds', answer(503, '7'), { type: 'retry', retryAfterMs: 7_000 }],
    ['503 with 0 seconds', answer(503, '0'), { type: 'retry', retryAfterMs: 0 }],
    [
      '429 with an HTTP date',
      answer(429, 'Mon, 02 Mar 2026 10:02:00 GMT'),
      { type: 'retry', retryAfterMs: 120_000 },
    ],
    [
      '429 with a past HTTP date',
      answer(429, 'Mon, 02 Mar 2026 09:00:00 GMT'),
      { type: 'retry', retryAfterMs: 0 },
    ],
    [
      '429 with a day is capped at one hour',
      answer(429, '86400'),
      { type: 'retry', retryAfterMs: RETRY_AFTER_CAP_MS },
    ],
    [
      '503 with a far date is capped',
      answer(503, 'Fri, 02 Mar 2029 10:00:00 GMT'),
      { type: 'retry', retryAfterMs: RETRY_AFTER_CAP_MS },
    ],
    ['429 with garbage retries on the schedule', answer(429, 'soon'), { type: 'retry' }],
    ['429 with a negative number retries on the schedule', answer(429, '-5'), { type: 'retry' }],
    ['429 with a fraction retries on the schedule', answer(429, '1.5'), { type: 'retry' }],
    [
      'a timeout retries',
      { statusCode: undefined, retryAfter: undefined, error: 'timeout' },
      { type: 'retry' },
    ],
    [
      'a blocked address retries',
      { statusCode: undefined, retryAfter: undefined, error: 'blocked address' },
      { type: 'retry' },
    ],
  ];
  for (const [name, report, expected] of cases) {
    test(name, () => assert.deepEqual(classify(report, NOW), expected));
  }
});

describe('parseRetryAfterMs', () => {
  test('accepts the obsolete RFC 850 date form', () => {
    assert.equal(parseRetryAfterMs('Monday, 02-Mar-26 10:00:10 GMT', NOW), 10_000);
  });
  test('is undefined without a header', () => assert.equal(parseRetryAfterMs(undefined, NOW), undefined));
  test('rejects an ISO date, which is not an HTTP date', () =>
    assert.equal(parseRetryAfterMs('2026-03-02T10:00:10Z', NOW), undefined));
});
