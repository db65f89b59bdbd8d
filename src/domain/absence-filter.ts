// The absences list filter of SPEC §1.4: `date ge 'YYYY-MM-DD' [and date le 'YYYY-MM-DD'] [and person in (1,2)]`.
// Pure; never throws: every problem comes back as a reason naming the bad token.
//
// Grammar (keywords lower-case as upstream writes them, clauses in any order, each at most once):
//   filter := clause ( "and" clause )*
//   clause := "date" ("ge" | "le" | "eq") '<YYYY-MM-DD>'
//           | "person" "in" "(" id ( "," id )* ")"
//           | "person" "eq" id
// `date ge` (or `date eq`) is required; `date le` defaults to 365 days after `date ge`; the range may span at
// most 366 days. `in circle(…)` and `in org-tree(…)` are upstream features Timehook does not have.

import { isCalendarDate } from './collections.ts';

export const DEFAULT_SPAN_DAYS = 365;
export const MAX_SPAN_DAYS = 366;
export const MAX_FILTER_PERSONS = 100;
export const MAX_FILTER_LENGTH = 4096;
const DAY_MS = 86_400_000;

export interface AbsenceFilter {
  /** First day, inclusive. */
  from: string;
  /** Last day, inclusive. */
  to: string;
  /** Only these people (sorted, unique), or null for everyone. */
  personIds: number[] | null;
}

export type FilterResult = { ok: true; value: AbsenceFilter } | { ok: false; reasons: string[] };

type Token =
  | { kind: 'word'; text: string; at: number }
  | { kind: 'string'; text: string; at: number }
  | { kind: 'number'; text: string; at: number }
  | { kind: 'punct'; text: '(' | ')' | ','; at: number };

function describe(token: Token | undefined): string {
  if (!token) return 'the end of the filter';
  const shown = token.kind === 'string' ? `'${token.text}'` : token.text;
  return `${JSON.stringify(shown.length > 40 ? `${shown.slice(0, 40)}…` : shown)} at character ${token.at + 1}`;
}

function tokenize(text: string): Token[] | string {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')' || ch === ',') {
      tokens.push({ kind: 'punct', text: ch, at: i });
      i++;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) return `The quoted value starting at character ${i + 1} is not closed with '.`;
      tokens.push({ kind: 'string', text: text.slice(i + 1, end), at: i });
      i = end + 1;
    } else if (/[0-9]/.test(ch)) {
      const m = /^[0-9]+/.exec(text.slice(i, i + 40))!;
      tokens.push({ kind: 'number', text: m[0], at: i });
      i += m[0].length;
    } else if (/[A-Za-z]/.test(ch)) {
      const m = /^[A-Za-z][A-Za-z0-9_.-]*/.exec(text.slice(i, i + 64))!;
      tokens.push({ kind: 'word', text: m[0], at: i });
      i += m[0].length;
    } else {
      return `Unexpected character ${JSON.stringify(ch)} at character ${i + 1}.`;
    }
  }
  return tokens;
}

const dayNumber = (date: string): number => Date.parse(`${date}T00:00:00Z`) / DAY_MS;

const LAST_DAY = '9999-12-31';

/** `date` plus `days` days, as YYYY-MM-DD (dates are checked calendar dates), at most 9999-12-31. */
export function addDays(date: string, days: number): string {
  const ms = Date.parse(`${date}T00:00:00Z`) + days * DAY_MS;
  return ms > Date.parse(`${LAST_DAY}T00:00:00Z`) ? LAST_DAY : new Date(ms).toISOString().slice(0, 10);
}

/** Parses a filter; the error result lists every reason found (parsing stops at the first syntax error). */
export function parseAbsenceFilter(text: string): FilterResult {
  if (typeof text !== 'string' || text.trim() === '') {
    return {
      ok: false,
      reasons: [
        "A filter is required, e.g. filter=date ge '2026-01-01' and date le '2026-03-31'; date ge is required.",
      ],
    };
  }
  if (text.length > MAX_FILTER_LENGTH)
    return { ok: false, reasons: [`The filter is longer than ${MAX_FILTER_LENGTH} characters.`] };
  const tokens = tokenize(text);
  if (typeof tokens === 'string') return { ok: false, reasons: [tokens] };

  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const next = (): Token | undefined => tokens[pos++];
  const isWord = (t: Token | undefined, word: string): boolean => t?.kind === 'word' && t.text === word;

  let from: string | undefined;
  let to: string | undefined;
  let onDay: string | undefined;
  let personIds: number[] | undefined;
  const reasons: string[] = [];
  const seen = new Set<string>();

  const syntax = (message: string): FilterResult => ({ ok: false, reasons: [message] });

  for (;;) {
    const field = next();
    if (isWord(field, 'date')) {
      const op = next();
      const opName = op?.kind === 'word' ? op.text : '';
      if (!['ge', 'le', 'eq'].includes(opName)) {
        return syntax(`Expected ge, le or eq after date, found ${describe(op)}.`);
      }
      const value = next();
      if (value?.kind !== 'string') {
        return syntax(
          `Expected a quoted date such as '2026-03-02' after date ${opName}, found ${describe(value)}.`,
        );
      }
      const key = `date ${opName}`;
      if (seen.has(key)) reasons.push(`${key} appears more than once.`);
      seen.add(key);
      if (!isCalendarDate(value.text)) {
        reasons.push(`'${value.text.slice(0, 40)}' in ${key} is not a calendar date YYYY-MM-DD.`);
      } else if (opName === 'ge') from = value.text;
      else if (opName === 'le') to = value.text;
      else onDay = value.text;
    } else if (isWord(field, 'person')) {
      const op = next();
      if (seen.has('person')) reasons.push('The person condition appears more than once.');
      seen.add('person');
      if (isWord(op, 'eq')) {
        const value = next();
        if (value?.kind !== 'number')
          return syntax(`Expected a person id after person eq, found ${describe(value)}.`);
        const id = Number(value.text);
        if (!Number.isSafeInteger(id) || id < 1) reasons.push(`${value.text} is not a valid person id.`);
        personIds = [id];
      } else if (isWord(op, 'in')) {
        const open = next();
        if (open?.kind === 'word' && ['circle', 'org-tree'].includes(open.text)) {
          return syntax(
            `person in ${open.text}(…) is not supported by Timehook; list person ids: person in (1,2).`,
          );
        }
        if (open?.kind !== 'punct' || open.text !== '(') {
          return syntax(`Expected ( after person in, found ${describe(open)}.`);
        }
        const ids: number[] = [];
        for (;;) {
          const value = next();
          if (value?.kind !== 'number') return syntax(`Expected a person id, found ${describe(value)}.`);
          const id = Number(value.text);
          if (!Number.isSafeInteger(id) || id < 1) reasons.push(`${value.text} is not a valid person id.`);
          ids.push(id);
          const sep = next();
          if (sep?.kind === 'punct' && sep.text === ')') break;
          if (sep?.kind !== 'punct' || sep.text !== ',') {
            return syntax(`Expected , or ) in the person list, found ${describe(sep)}.`);
          }
        }
        if (ids.length > MAX_FILTER_PERSONS)
          reasons.push(`person in (…) lists ${ids.length} ids; the limit is ${MAX_FILTER_PERSONS}.`);
        personIds = ids;
      } else {
        return syntax(`Expected in or eq after person, found ${describe(op)}.`);
      }
    } else {
      return syntax(`Expected date or person, found ${describe(field)}; filter on date and person only.`);
    }
    const joiner = next();
    if (joiner === undefined) break;
    if (!isWord(joiner, 'and')) return syntax(`Expected and between conditions, found ${describe(joiner)}.`);
    if (peek() === undefined) return syntax('The filter ends after and; add a condition.');
  }

  if (onDay !== undefined) {
    if (seen.has('date ge') || seen.has('date le'))
      reasons.push('date eq cannot be combined with date ge or date le.');
    from = onDay;
    to = onDay;
  }
  if (!seen.has('date ge') && !seen.has('date eq')) {
    reasons.push(`date ge is required, e.g. date ge '2026-01-01'.`);
  }
  if (from !== undefined && to === undefined && !seen.has('date le')) to = addDays(from, DEFAULT_SPAN_DAYS);
  if (from !== undefined && to !== undefined) {
    const span = dayNumber(to) - dayNumber(from);
    if (span < 0) reasons.push(`date le '${to}' is before date ge '${from}'.`);
    else if (span > MAX_SPAN_DAYS)
      reasons.push(`The date range spans ${span} days; the limit is ${MAX_SPAN_DAYS} days (about a year).`);
  }
  if (reasons.length > 0 || from === undefined || to === undefined) {
    return { ok: false, reasons: reasons.length > 0 ? reasons : ['The filter has no valid date range.'] };
  }
  return {
    ok: true,
    value: { from, to, personIds: personIds ? [...new Set(personIds)].sort((a, b) => a - b) : null },
  };
}

/** A canonical text of a parsed filter, for binding continuation tokens to it. */
export function filterKey(filter: AbsenceFilter): string {
  return `${filter.from}..${filter.to}${filter.personIds ? `:${filter.personIds.join(',')}` : ''}`;
}
