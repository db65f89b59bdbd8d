import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  compileFilter,
  parseFilter,
  printFilter,
  type Condition,
  type Constant,
  type Expr,
  type FieldSpec,
} from '../../src/domain/filter.ts';

const KEYWORDS = ['and', 'or', 'eq', 'ge', 'le', 'in', 'true', 'false'];

const identifier = fc
  .stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,12}$/)
  .filter((name) => !KEYWORDS.includes(name));

const constant: fc.Arbitrary<Constant> = fc.oneof(
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map((n) => ({ type: 'integer' as const, text: String(n) })),
  fc.string({ maxLength: 12 }).map((value) => ({ type: 'string' as const, value })),
  fc.boolean().map((value) => ({ type: 'boolean' as const, value })),
);

const condition: fc.Arbitrary<Condition> = fc.oneof(
  fc.record(
    {
      kind: fc.constant('compare' as const),
      field: identifier,
      op: fc.constantFrom('eq' as const, 'ge' as const, 'le' as const),
      value: constant,
    },
    { noNullPrototype: true },
  ),
  fc.record(
    {
      kind: fc.constant('in' as const),
      field: identifier,
      set: fc.option(identifier, { nil: null }),
      values: fc.array(constant, { minLength: 1, maxLength: 4 }),
    },
    { noNullPrototype: true },
  ),
);

const { expr } = fc.letrec<{ expr: Expr; join: Expr }>((tie) => ({
  expr: fc.oneof({ depthSize: 'small', withCrossShrink: true }, condition, tie('join')),
  join: fc.record(
    {
      kind: fc.constantFrom('and' as const, 'or' as const),
      items: fc.array(tie('expr'), { minLength: 2, maxLength: 3 }),
    },
    { noNullPrototype: true },
  ),
}));

/** How deep the parentheses of a printed tree go. */
function nesting(text: string): number {
  let depth = 0;
  let max = 0;
  let quoted = false;
  for (const ch of text) {
    if (ch === "'") quoted = !quoted;
    else if (!quoted && ch === '(') max = Math.max(max, ++depth);
    else if (!quoted && ch === ')') depth--;
  }
  return max;
}

describe('parseFilter and printFilter', () => {
  test('any tree prints to text that parses back to the same tree', () => {
    fc.assert(
      fc.property(expr, (tree) => {
        const text = printFilter(tree);
        fc.pre(text.length <= 4096 && nesting(text) <= 17);
        assert.deepEqual(parseFilter(text), { ok: true, value: tree });
      }),
      { numRuns: 3000 },
    );
  });

  test('whitespace between tokens does not change the tree', () => {
    fc.assert(
      fc.property(expr, fc.constantFrom(' ', '  ', '\t', '\n '), (tree, gap) => {
        const text = printFilter(tree);
        fc.pre(text.length <= 2000 && nesting(text) <= 17);
        const spaced = text.replace(/ (?=(?:[^']*'[^']*')*[^']*$)/g, gap);
        assert.deepEqual(parseFilter(spaced), parseFilter(text));
      }),
      { numRuns: 1000 },
    );
  });

  test('never throws on arbitrary text, and a failure always says why', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const result = parseFilter(text);
        if (!result.ok) assert.ok(result.reasons.length > 0 && result.reasons.every((r) => r.length > 0));
      }),
      { numRuns: 3000 },
    );
  });

  test('never throws on soups of the grammar’s own tokens', () => {
    const token = fc.constantFrom(
      ...[
        'person',
        'date',
        'eq',
        'ge',
        'le',
        'in',
        'and',
        'or',
        '(',
        ')',
        ',',
        "'x'",
        "''",
        "'",
        '1',
        'true',
      ],
      ...['circle', 'org-group', '((((', '))))'],
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), (tokens) => {
        const result = parseFilter(tokens.join(' '));
        assert.equal(typeof result.ok, 'boolean');
      }),
      { numRuns: 3000 },
    );
  });

  test('deep nesting is refused with a reason, not a stack overflow', () => {
    const result = parseFilter(`${'('.repeat(100_000)}a eq 1`);
    assert.equal(result.ok, false);
  });

  test('quotes inside text are written twice', () => {
    assert.deepEqual(parseFilter("name eq 'it''s'"), {
      ok: true,
      value: { kind: 'compare', field: 'name', op: 'eq', value: { type: 'string', value: "it's" } },
    });
  });
});

describe('compileFilter', () => {
  const FIELDS: Record<string, FieldSpec> = {
    date: { category: 'Range', value: 'date' },
    person: { category: 'Multiple', value: 'id' },
  };

  // Trees of and/or over conditions on person only, with ids from a small range.
  const personCondition: fc.Arbitrary<Expr> = fc.oneof(
    fc.integer({ min: 1, max: 8 }).map((id): Expr => ({
      kind: 'compare',
      field: 'person',
      op: 'eq',
      value: { type: 'integer', text: String(id) },
    })),
    fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 4 }).map((ids): Expr => ({
      kind: 'in',
      field: 'person',
      set: null,
      values: ids.map((id) => ({ type: 'integer', text: String(id) })),
    })),
  );
  const { personTree } = fc.letrec<{ personTree: Expr; join: Expr }>((tie) => ({
    personTree: fc.oneof({ depthSize: 'small' }, personCondition, tie('join')),
    join: fc.record({
      kind: fc.constantFrom('and' as const, 'or' as const),
      items: fc.array(tie('personTree'), { minLength: 2, maxLength: 3 }),
    }),
  }));

  /** Whether a person id satisfies a tree, read directly off the tree. */
  function admits(tree: Expr, id: number): boolean {
    if (tree.kind === 'and') return tree.items.every((t) => admits(t, id));
    if (tree.kind === 'or') return tree.items.some((t) => admits(t, id));
    const values = tree.kind === 'in' ? tree.values : tree.kind === 'compare' ? [tree.value] : [];
    return values.some((v) => v.type === 'integer' && Number(v.text) === id);
  }

  test('the person set of any and/or tree is exactly the ids the tree admits', () => {
    fc.assert(
      fc.property(personTree, (tree) => {
        const compiled = compileFilter(tree, FIELDS);
        assert.ok(compiled.ok);
        const expected = [1, 2, 3, 4, 5, 6, 7, 8].filter((id) => admits(tree, id));
        assert.deepEqual(compiled.value.sets.person, expected);
      }),
      { numRuns: 2000 },
    );
  });

  test('an or that touches a Range field is refused', () => {
    const tree = parseFilter("person eq 1 or date ge '2026-01-01'");
    assert.ok(tree.ok);
    const compiled = compileFilter(tree.value, FIELDS);
    assert.equal(compiled.ok, false);
  });

  test('reports every problem at once', () => {
    const tree = parseFilter("foo eq 1 and date ge '2026-02-30' and person eq 0");
    assert.ok(tree.ok);
    const compiled = compileFilter(tree.value, FIELDS);
    assert.ok(!compiled.ok);
    assert.equal(compiled.reasons.length, 3);
  });
});
