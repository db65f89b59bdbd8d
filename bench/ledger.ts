// The ledger: what the loader wrote (every changeVersion the API returned, per entity) against what each
// webhook's receiver path got. Pure. A run that does not balance is void, and says why.

import type { PathReport } from './protocol.ts';

/** What the loader wrote: entity id → changeVersions in ascending order; commit times for latency. */
export class Written {
  readonly entities = new Map<number, number[]>();
  total = 0;
  /** version → epoch ms at which the loader got the write's response (its commit time as seen by a client). */
  readonly committedAt = new Map<number, number>();
  /** version → epoch ms at which the write was sent (an upper bound of its commit time's distance). */
  readonly sentAt = new Map<number, number>();

  add(entity: number, version: number, times?: { sentAt: number; committedAt: number }): void {
    let list = this.entities.get(entity);
    if (!list) this.entities.set(entity, (list = []));
    list.push(version);
    this.total++;
    if (times) {
      this.committedAt.set(version, times.committedAt);
      this.sentAt.set(version, times.sentAt);
    }
  }

  /** Sorts every entity's versions (concurrent batches may commit in either order). */
  seal(): void {
    for (const list of this.entities.values()) list.sort((a, b) => a - b);
  }
}

export interface LedgerResult {
  balanced: boolean;
  /** Why it does not balance (empty when it does). */
  reasons: string[];
  expected: number;
  received: number;
  missing: number;
  duplicates: number;
  /** Events whose first arrival came before the first arrival of an earlier version of their entity. */
  orderViolations: number;
  /**
   * Events overtaken within their entity: delivered (first arrival) after a later version of the same entity
   * had been delivered. One event held back behind two later ones is one inversion (and two order violations).
   */
  inversions: number;
  unexpected: number;
  missingHeaders: number;
  badBodies: number;
  signaturesChecked: number;
  signaturesFailed: number;
  /** Paths (webhooks) that received at least one duplicate, and a few examples. */
  pathsWithDuplicates: number;
  duplicateSamples: { path: string; version: number; entity: number; afterMs: number }[];
}

function indexOf(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid]!;
    if (v === value) return mid;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

export interface LedgerOptions {
  /**
   * "required" (the default, Timehook's promise, SPEC §3.2): an event ahead of an earlier version of its entity
   * voids the run. "counted": order violations and inversions are only counted (the peers, which do not
   * promise per-entity order).
   */
  order?: 'required' | 'counted';
}

/**
 * Checks every expected path against `written` (each webhook must receive all of it):
 * - missing: a written version never received on that path;
 * - order: a version whose first arrival came before the first arrival of an earlier version of the same
 *   entity (SPEC §3.2), and inversions, the events so overtaken;
 * - unexpected: a version or entity that was not written for this webhook;
 * - duplicates are counted, not held against the run (at least once allows them).
 */
export function checkLedger(
  written: Written,
  paths: readonly string[],
  reports: readonly PathReport[],
  timedOut?: string,
  options: LedgerOptions = {},
): LedgerResult {
  const byPath = new Map(reports.map((r) => [r.path, r]));
  const result: LedgerResult = {
    balanced: true,
    reasons: [],
    expected: written.total * paths.length,
    received: 0,
    missing: 0,
    duplicates: 0,
    orderViolations: 0,
    inversions: 0,
    unexpected: 0,
    missingHeaders: 0,
    badBodies: 0,
    signaturesChecked: 0,
    signaturesFailed: 0,
    pathsWithDuplicates: 0,
    duplicateSamples: [],
  };
  for (const path of paths) {
    const report = byPath.get(path);
    if (!report) {
      result.missing += written.total;
      continue;
    }
    result.received += report.firsts;
    result.duplicates += report.duplicates;
    if (report.duplicates > 0) result.pathsWithDuplicates++;
    for (const d of report.duplicateSamples ?? []) {
      if (result.duplicateSamples.length < 20)
        result.duplicateSamples.push({ path, ...d, afterMs: Math.round(d.afterMs) });
    }
    result.missingHeaders += report.missingHeaders;
    result.badBodies += report.badBodies;
    result.signaturesChecked += report.sigChecked;
    result.signaturesFailed += report.sigFailed;
    for (const [entity, expected] of written.entities) {
      const got = report.entities.get(entity) ?? [];
      const seen = new Uint8Array(expected.length);
      let prefix = 0;
      let matched = 0;
      let highest = -1;
      for (const version of got) {
        const i = indexOf(expected, version);
        if (i < 0) {
          result.unexpected++;
          continue;
        }
        if (prefix < i) result.orderViolations++;
        if (version < highest) result.inversions++;
        else highest = version;
        seen[i] = 1;
        matched++;
        while (prefix < expected.length && seen[prefix]) prefix++;
      }
      result.missing += expected.length - matched;
    }
    for (const [entity, got] of report.entities) {
      if (!written.entities.has(entity)) result.unexpected += got.length;
    }
  }
  const reasons = result.reasons;
  if (timedOut) reasons.push(timedOut);
  if (result.missing > 0) reasons.push(`${result.missing} of ${result.expected} deliveries never arrived`);
  if (result.orderViolations > 0 && options.order !== 'counted')
    reasons.push(`${result.orderViolations} events arrived before an earlier version of their entity`);
  if (result.unexpected > 0)
    reasons.push(`${result.unexpected} events that were not written for that webhook`);
  if (result.missingHeaders > 0)
    reasons.push(`${result.missingHeaders} requests lacked Standard Webhooks headers`);
  if (result.badBodies > 0)
    reasons.push(`${result.badBodies} requests had no parsable {data:{id,changeVersion}}`);
  if (result.signaturesFailed > 0)
    reasons.push(
      `${result.signaturesFailed} of ${result.signaturesChecked} sampled signatures did not verify`,
    );
  result.balanced = reasons.length === 0;
  return result;
}

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

export function percentiles(values: Float64Array): Percentiles | undefined {
  if (values.length === 0) return undefined;
  const sorted = values.slice().sort();
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1]!,
    min: sorted[0]!,
    mean: sum / sorted.length,
  };
}
