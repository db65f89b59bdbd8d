// Upstream's filter grammar, parsed once into an expression tree, and the one place that gives the tree
// meaning for a collection's fields. Pure; never throws: every problem comes back as a reason naming it.
//
// The grammar (upstream's filtering reference; keywords lower-case as upstream writes them):
//   expression := term ( "or" term )*
//   term       := factor ( "and" factor )*
//   factor     := "(" expression ")" | condition
//   condition  := field ( "eq" | "ge" | "le" ) constant | field "in" list
//   list       := [ set-name ] "(" constant ( "," constant )* ")"
//   constant   := integer | 'string' (a quote inside is written '') | true | false
//
// What a tree means depends on each field's category (see FieldSpec): a Range field takes ge, le and eq,
// each at most once, joined by and; a Multiple field takes eq and in, and only Multiple fields may be joined
// by or — an or (and any and inside it) must stay on one Multiple field, and stands for the union (and
// intersection) of the values it names. Conditions on different fields are joined by and.

import { isCalendarDate } from './collections.ts';

export type Constant =
  { type: 'integer'; text: string } | { type: 'string'; value: string } | { type: 'boolean'; value: boolean };

export type Condition =
  | { kind: 'compare'; field: string; op: 'eq' | 'ge' | 'le'; value: Constant }
  | { kind: 'in'; field: string; set: string | null; values: Constant[] };

export type Expr = { kind: 'and' | 'or'; items: Expr[] } | Condition;

export type Parsed<T> = { ok: true; value: T } | { ok: false; reasons: string[] };

export const MAX_FILTER_LENGTH = 4096;
export const MAX_NESTING = 16;

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
      let value = '';
      let j = i + 1;
      for (;;) {
        const end = text.indexOf("'", j);
        if (end < 0) return `The quoted value starting at character ${i + 1} is not closed with '.`;
        value += text.slice(j, end);
        if (text[end + 1] !== "'") {
          j = end + 1;
          break;
        }
        value += "'";
        j = end + 2;
      }
      tokens.push({ kind: 'string', text: value, at: i });
      i = j;
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

const COMPARE_OPS = ['eq', 'ge', 'le'] as const;
const KEYWORDS = new Set(['and', 'or', 'eq', 'ge', 'le', 'in', 'true', 'false']);

/** Parses filter text into its expression tree (syntax only: fields and values are checked by compileFilter). */
export function parseFilter(text: string): Parsed<Expr> {
  if (text.length > MAX_FILTER_LENGTH)
    return { ok: false, reasons: [`The filter is longer than ${MAX_FILTER_LENGTH} characters.`] };
  const tokens = tokenize(text);
  if (typeof tokens === 'string') return { ok: false, reasons: [tokens] };
  if (tokens.length === 0) return { ok: false, reasons: ['The filter is empty.'] };
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const next = (): Token | undefined => tokens[pos++];
  const isWord = (t: Token | undefined, word: string): boolean => t?.kind === 'word' && t.text === word;
  const isPunct = (t: Token | undefined, p: string): boolean => t?.kind === 'punct' && t.text === p;

  class SyntaxProblem extends Error {}
  const fail = (message: string): never => {
    throw new SyntaxProblem(message);
  };

  const constant = (context: string): Constant => {
    const t = next();
    if (t?.kind === 'number') return { type: 'integer', text: t.text };
    if (t?.kind === 'string') return { type: 'string', value: t.text };
    if (isWord(t, 'true') || isWord(t, 'false')) return { type: 'boolean', value: t!.text === 'true' };
    return fail(
      `Expected a value (a number, a 'quoted' text, true or false) ${context}, found ${describe(t)}.`,
    );
  };

  const condition = (): Condition => {
    const field = next();
    if (field?.kind !== 'word' || KEYWORDS.has(field.text))
      return fail(`Expected a field name or (, found ${describe(field)}.`);
    const op = next();
    if (isWord(op, 'in')) {
      let set: string | null = null;
      if (peek()?.kind === 'word' && isPunct(tokens[pos + 1], '(')) set = (next() as { text: string }).text;
      const open = next();
      if (!isPunct(open, '(')) return fail(`Expected ( after ${field.text} in, found ${describe(open)}.`);
      const values: Constant[] = [];
      for (;;) {
        values.push(constant(`in the list of ${field.text} in`));
        const sep = next();
        if (isPunct(sep, ')')) break;
        if (!isPunct(sep, ','))
          return fail(`Expected , or ) in the list of ${field.text}, found ${describe(sep)}.`);
      }
      return { kind: 'in', field: field.text, set, values };
    }
    if (op?.kind === 'word' && (COMPARE_OPS as readonly string[]).includes(op.text)) {
      const value = constant(`after ${field.text} ${op.text}`);
      return { kind: 'compare', field: field.text, op: op.text as (typeof COMPARE_OPS)[number], value };
    }
    return fail(`Expected eq, ge, le or in after ${field.text}, found ${describe(op)}.`);
  };

  const factor = (depth: number): Expr => {
    if (isPunct(peek(), '(')) {
      if (depth >= MAX_NESTING) fail(`The filter nests parentheses deeper than ${MAX_NESTING} levels.`);
      next();
      const inner = expression(depth + 1);
      const close = next();
      if (!isPunct(close, ')')) fail(`Expected ) or a joining and/or, found ${describe(close)}.`);
      return inner;
    }
    return condition();
  };

  const joined = (kind: 'and' | 'or', operand: () => Expr): Expr => {
    const items = [operand()];
    while (isWord(peek(), kind)) {
      next();
      if (peek() === undefined) fail(`The filter ends after ${kind}; add a condition.`);
      items.push(operand());
    }
    return items.length === 1 ? items[0]! : { kind, items };
  };
  const term = (depth: number): Expr => joined('and', () => factor(depth));
  const expression = (depth: number): Expr => joined('or', () => term(depth));

  try {
    const tree = expression(0);
    const rest = peek();
    if (rest !== undefined) fail(`Expected and or or between conditions, found ${describe(rest)}.`);
    return { ok: true, value: tree };
  } catch (error) {
    if (error instanceof SyntaxProblem) return { ok: false, reasons: [error.message] };
    throw error;
  }
}

const showConstant = (c: Constant): string =>
  c.type === 'integer' ? c.text : c.type === 'boolean' ? String(c.value) : `'${c.value.replace(/'/g, "''")}'`;

/** The text of a tree; parseFilter(printFilter(t)) gives t back. */
export function printFilter(expr: Expr): string {
  if (expr.kind === 'compare') return `${expr.field} ${expr.op} ${showConstant(expr.value)}`;
  if (expr.kind === 'in')
    return `${expr.field} in ${expr.set ?? ''}(${expr.values.map(showConstant).join(', ')})`;
  // A child needs parentheses when it is of the same kind (the parser would flatten it) or an or inside an and.
  const child = (item: Expr) =>
    item.kind === expr.kind || (item.kind === 'or' && expr.kind === 'and')
      ? `(${printFilter(item)})`
      : printFilter(item);
  return expr.items.map(child).join(` ${expr.kind} `);
}

// ---------------------------------------------------------------------------------------------------------
// Meaning, per collection

/** How a field may be filtered: a Range field by ge/le/eq joined with and; a Multiple field by eq/in and or. */
export interface FieldSpec {
  category: 'Range' | 'Multiple';
  /** The kind of value: a calendar date 'YYYY-MM-DD', a positive id, or a quoted text. */
  value: 'date' | 'id' | 'text';
  /** The largest number of values one list may hold. */
  maxList?: number;
}

/** What a filter says about each field it names: the bounds of Range fields, the value sets of Multiple ones. */
export interface CompiledFilter {
  ranges: Record<string, { ge?: string; le?: string; eq?: string }>;
  /** Values sorted (ids numerically) and unique; an empty set matches nothing. */
  sets: Record<string, (string | number)[]>;
}

/** Named sets of upstream that need data Timehook does not hold (circles, organisation groups and trees). */
const NAMED_SETS = ['circle', 'org-group', 'org-tree'];

const isJoin = (expr: Expr): expr is { kind: 'and' | 'or'; items: Expr[] } =>
  expr.kind === 'and' || expr.kind === 'or';

function leaves(expr: Expr): Condition[] {
  return isJoin(expr) ? expr.items.flatMap(leaves) : [expr];
}

/**
 * Gives a parsed tree its meaning for a collection whose fields are `fields`; every problem found is
 * reported, not only the first.
 */
export function compileFilter(
  expr: Expr,
  fields: Readonly<Record<string, FieldSpec>>,
): Parsed<CompiledFilter> {
  const reasons: string[] = [];
  const names = Object.keys(fields);
  const known = names.join(', ');
  const multiple = names.filter((n) => fields[n]!.category === 'Multiple');

  /** The value of a constant for a field, or undefined (a reason recorded). */
  const valueOf = (field: string, spec: FieldSpec, c: Constant): string | number | undefined => {
    if (spec.value === 'date') {
      if (c.type !== 'string')
        reasons.push(`${field} takes a quoted date such as '2026-03-02', not ${showConstant(c)}.`);
      else if (!isCalendarDate(c.value))
        reasons.push(`'${c.value.slice(0, 40)}' in ${field} is not a calendar date YYYY-MM-DD.`);
      else return c.value;
      return undefined;
    }
    if (spec.value === 'id') {
      const id = c.type === 'integer' ? Number(c.text) : NaN;
      if (Number.isSafeInteger(id) && id >= 1) return id;
      reasons.push(`${showConstant(c).slice(0, 40)} is not a valid ${field} id.`);
      return undefined;
    }
    if (c.type === 'string' && c.value !== '') return c.value;
    reasons.push(`${field} takes a non-empty 'quoted' text, not ${showConstant(c).slice(0, 40)}.`);
    return undefined;
  };

  const checkField = (cond: Condition): FieldSpec | undefined => {
    const spec = fields[cond.field];
    if (!spec) {
      reasons.push(
        `${JSON.stringify(cond.field)} is not a field this list can be filtered on; use ${known}.`,
      );
      return undefined;
    }
    return spec;
  };

  /** The values a condition on a Multiple field names, or undefined (reasons recorded). */
  const setOf = (cond: Condition, spec: FieldSpec): Set<string | number> | undefined => {
    if (cond.kind === 'compare') {
      if (cond.op !== 'eq') {
        reasons.push(`${cond.field} takes eq or in, not ${cond.op}.`);
        return undefined;
      }
      const v = valueOf(cond.field, spec, cond.value);
      return v === undefined ? undefined : new Set([v]);
    }
    if (cond.set !== null) {
      reasons.push(
        NAMED_SETS.includes(cond.set)
          ? `${cond.field} in ${cond.set}(…) names a set Timehook cannot resolve; list the ${cond.field} values instead: ${cond.field} in (1, 2).`
          : `${cond.field} in ${cond.set}(…) is not a known set; list the values instead: ${cond.field} in (1, 2).`,
      );
      return undefined;
    }
    if (spec.maxList !== undefined && cond.values.length > spec.maxList)
      reasons.push(`${cond.field} in (…) lists ${cond.values.length} values; the limit is ${spec.maxList}.`);
    const values = cond.values.map((c) => valueOf(cond.field, spec, c));
    return values.includes(undefined) ? undefined : new Set(values as (string | number)[]);
  };

  const intersect = (a: Set<string | number>, b: Set<string | number>) =>
    new Set([...a].filter((v) => b.has(v)));

  /** Evaluates an and/or tree on one Multiple field into the set of values it admits. */
  const evaluate = (e: Expr, spec: FieldSpec): Set<string | number> | undefined => {
    if (!isJoin(e)) return setOf(e, spec);
    const parts = e.items.map((item) => evaluate(item, spec));
    if (parts.includes(undefined)) return undefined;
    const sets = parts as Set<string | number>[];
    return e.kind === 'or' ? new Set(sets.flatMap((s) => [...s])) : sets.reduce(intersect);
  };

  const result: CompiledFilter = { ranges: {}, sets: {} };
  const sets = new Map<string, Set<string | number>>();
  const conjuncts = (e: Expr): Expr[] => (e.kind === 'and' ? e.items.flatMap(conjuncts) : [e]);

  const narrow = (field: string, values: Set<string | number> | undefined) => {
    if (values) sets.set(field, sets.has(field) ? intersect(sets.get(field)!, values) : values);
  };

  for (const part of conjuncts(expr)) {
    if (isJoin(part)) {
      const conditions = leaves(part);
      const fieldsHere = [...new Set(conditions.map((l) => l.field))];
      if (fieldsHere.length === 1 && !fields[fieldsHere[0]!]) {
        checkField(conditions[0]!);
        continue;
      }
      const spec = fieldsHere.length === 1 ? fields[fieldsHere[0]!] : undefined;
      if (!spec || spec.category !== 'Multiple') {
        reasons.push(
          `or may only join conditions on one field of the Multiple category (${multiple.join(', ') || 'none here'}), ` +
            `not on ${fieldsHere.join(' and ')}; join conditions on different fields with and.`,
        );
        continue;
      }
      narrow(fieldsHere[0]!, evaluate(part, spec));
      continue;
    }
    const cond = part;
    const spec = checkField(cond);
    if (!spec) continue;
    if (spec.category === 'Multiple') {
      narrow(cond.field, setOf(cond, spec));
      continue;
    }
    if (cond.kind === 'in') {
      reasons.push(`${cond.field} takes ge, le or eq, not in.`);
      continue;
    }
    const range = (result.ranges[cond.field] ??= {});
    if (range[cond.op] !== undefined) reasons.push(`${cond.field} ${cond.op} appears more than once.`);
    const v = valueOf(`${cond.field} ${cond.op}`, spec, cond.value);
    if (typeof v === 'string') range[cond.op] = v;
  }
  for (const [field, values] of sets) {
    result.sets[field] = [...values].sort((a, b) =>
      typeof a === 'number' && typeof b === 'number'
        ? a - b
        : String(a) < String(b)
          ? -1
          : String(a) > String(b)
            ? 1
            : 0,
    );
  }
  return reasons.length > 0 ? { ok: false, reasons } : { ok: true, value: result };
}
