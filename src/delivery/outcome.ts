// The outcome of one delivery attempt (SPEC §3), as data: a pure function of what the receiver answered (or
// how the attempt failed) and the clock. No I/O; the dispatcher decides what to do with the result.

/** Retry-After is honoured up to this long; a longer value is treated as this (SPEC §3). */
export const RETRY_AFTER_CAP_MS = 60 * 60 * 1000;

/** What one attempt produced: a status code (with its Retry-After header), or the error that ended it. */
export interface AttemptReport {
  statusCode: number | undefined;
  /** The raw Retry-After header of the answer, if any. */
  retryAfter: string | undefined;
  /** Why no answer arrived (timeout, connection refused, TLS, blocked address…), when statusCode is undefined. */
  error: string | undefined;
}

export type Outcome =
  /** 2xx: the event is acknowledged. */
  | { type: 'delivered' }
  /** 410: the endpoint is gone for good; the webhook becomes Disabled/EndpointGone. */
  | { type: 'gone' }
  /**
   * Anything else: retry on the schedule. retryAfterMs is set for a 429 or 503 with a valid Retry-After
   * header (already capped at RETRY_AFTER_CAP_MS): the next attempt comes no sooner than that.
   */
  | { type: 'retry'; retryAfterMs?: number };

/**
 * Parses a Retry-After value: delta-seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT"),
 * relative to nowMs. A date in the past is 0. Returns undefined for anything else (RFC 9110 §10.2.3).
 */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : RETRY_AFTER_CAP_MS;
  }
  // An HTTP date always names the weekday and the GMT zone; Date.parse alone would accept far more.
  if (!/^[A-Za-z]{3},? .*\d{2}:\d{2}:\d{2} GMT$/.test(text) && !/^[A-Za-z]+, \d{2}-/.test(text)) {
    return undefined;
  }
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Classifies an attempt (SPEC §3 "Outcomes of an attempt"). Pure. */
export function classify(report: AttemptReport, nowMs: number): Outcome {
  const status = report.statusCode;
  if (status === undefined) return { type: 'retry' };
  if (status >= 200 && status <= 299) return { type: 'delivered' };
  if (status === 410) return { type: 'gone' };
  if (status === 429 || status === 503) {
    const retryAfterMs = parseRetryAfterMs(report.retryAfter, nowMs);
    if (retryAfterMs !== undefined)
      return { type: 'retry', retryAfterMs: Math.min(retryAfterMs, RETRY_AFTER_CAP_MS) };
  }
  return { type: 'retry' };
}
