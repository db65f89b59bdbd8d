// The absences list filter of SPEC §1.4 on upstream's grammar (domain/filter.ts): `date` is a Range field
// (ge, le, eq) and `person` a Multiple field (eq, in, or). `date ge` (or `date eq`) is required; without
// `date le` a list ends 365 days after `date ge`, a delta follows every later date; a range spans at most
// 366 days. With &delta, as upstream: no person filter, and no start before 1 January of the previous year.
// Pure; never throws: every problem comes back as a reason.

import { compileFilter, parseFilter, type FieldSpec } from './filter.ts';

export const DEFAULT_SPAN_DAYS = 365;
export const MAX_SPAN_DAYS = 366;
export const MAX_FILTER_PERSONS = 100;
const DAY_MS = 86_400_000;

export interface AbsenceFilter {
  /** First day, inclusive. */
  from: string;
  /** Last day, inclusive; null: every later date (a delta without `date le`). */
  to: string | null;
  /** Only these people (sorted, unique), or null for everyone. */
  personIds: number[] | null;
}

export type FilterResult = { ok: true; value: AbsenceFilter } | { ok: false; reasons: string[] };

export interface AbsenceFilterOptions {
  /** The filter starts a delta (`&delta`). */
  delta?: boolean;
  /** Today (YYYY-MM-DD), for the earliest start a delta may have. */
  today?: string;
}

const FIELDS: Record<string, FieldSpec> = {
  date: { category: 'Range', value: 'date' },
  person: { category: 'Multiple', value: 'id', maxList: MAX_FILTER_PERSONS },
};

const dayNumber = (date: string): number => Date.parse(`${date}T00:00:00Z`) / DAY_MS;

const LAST_DAY = '9999-12-31';

/** `date` plus `days` days, as YYYY-MM-DD (dates are checked calendar dates), at most 9999-12-31. */
export function addDays(date: string, days: number): string {
  const ms = Date.parse(`${date}T00:00:00Z`) + days * DAY_MS;
  return ms > Date.parse(`${LAST_DAY}T00:00:00Z`) ? LAST_DAY : new Date(ms).toISOString().slice(0, 10);
}

/** 1 January of the year before `today`: the earliest start of a delta (upstream's rule). */
export function earliestDeltaStart(today: string): string {
  return `${String(Number(today.slice(0, 4)) - 1).padStart(4, '0')}-01-01`;
}

/** Parses an absences filter; the error result lists every reason found (a syntax error stops at the first). */
export function parseAbsenceFilter(text: string, options: AbsenceFilterOptions = {}): FilterResult {
  if (typeof text !== 'string' || text.trim() === '') {
    return {
      ok: false,
      reasons: [
        "A filter is required, e.g. filter=date ge '2026-01-01' and date le '2026-03-31'; date ge is required.",
      ],
    };
  }
  const tree = parseFilter(text);
  if (!tree.ok) return tree;
  const compiled = compileFilter(tree.value, FIELDS);
  if (!compiled.ok) return compiled;
  const { ge, le, eq } = compiled.value.ranges.date ?? {};
  const people = compiled.value.sets.person as number[] | undefined;
  const reasons: string[] = [];

  let from = ge;
  let to: string | null | undefined = le;
  if (eq !== undefined) {
    if (ge !== undefined || le !== undefined)
      reasons.push('date eq cannot be combined with date ge or date le.');
    from = eq;
    to = eq;
  }
  if (from === undefined) reasons.push(`date ge is required, e.g. date ge '2026-01-01'.`);
  if (options.delta) {
    if (people !== undefined)
      reasons.push('person filtering is not available with delta (as upstream); filter on date only.');
    const earliest = options.today ? earliestDeltaStart(options.today) : undefined;
    if (from !== undefined && earliest !== undefined && from < earliest)
      reasons.push(
        `A delta may start no earlier than 1 January of the previous year (${earliest}); date ge is '${from}'.`,
      );
  }
  if (from !== undefined && to === undefined) to = options.delta ? null : addDays(from, DEFAULT_SPAN_DAYS);
  if (from !== undefined && typeof to === 'string') {
    const span = dayNumber(to) - dayNumber(from);
    if (span < 0) reasons.push(`date le '${to}' is before date ge '${from}'.`);
    else if (span > MAX_SPAN_DAYS)
      reasons.push(`The date range spans ${span} days; the limit is ${MAX_SPAN_DAYS} days (about a year).`);
  }
  if (reasons.length > 0 || from === undefined || to === undefined) return { ok: false, reasons };
  return { ok: true, value: { from, to, personIds: people ?? null } };
}

/** A canonical text of a parsed filter, for binding continuation tokens to it. */
export function filterKey(filter: AbsenceFilter): string {
  return `${filter.from}..${filter.to ?? ''}${filter.personIds ? `:${filter.personIds.join(',')}` : ''}`;
}
