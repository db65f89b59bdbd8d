import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  addDays,
  filterKey,
  parseAbsenceFilter,
  type AbsenceFilter,
} from '../../src/domain/absence-filter.ts';

describe('parseAbsenceFilter accepts', () => {
  const accepted: [string, AbsenceFilter][] = [
    [
      "date ge '2026-01-01' and date le '2026-03-31'",
      { from: '2026-01-01', to: '2026-03-31', personIds: null },
    ],
    ["date ge '2026-01-01'", { from: '2026-01-01', to: '2027-01-01', personIds: null }],
    ["date ge '2024-03-01'", { from: '2024-03-01', to: '2025-03-01', personIds: null }],
    [
      "date le '2026-02-01' and date ge '2026-01-01'",
      { from: '2026-01-01', to: '2026-02-01', personIds: null },
    ],
    ["date eq '2026-05-05'", { from: '2026-05-05', to: '2026-05-05', personIds: null }],
    [
      "date ge '2026-01-01' and date le '2027-01-02'",
      { from: '2026-01-01', to: '2027-01-02', personIds: null },
    ],
    [
      "date ge '2026-01-01' and date le '2026-01-31' and person in (3, 1,2,3)",
      { from: '2026-01-01', to: '2026-01-31', personIds: [1, 2, 3] },
    ],
    ["person eq 7 and date ge '2026-01-01'", { from: '2026-01-01', to: '2027-01-01', personIds: [7] }],
    ["  date   ge\t'2026-01-01'  ", { from: '2026-01-01', to: '2027-01-01', personIds: null }],
    ["date ge '9999-12-01'", { from: '9999-12-01', to: '9999-12-31', personIds: null }],
    [
      "(person eq 42 or person eq 43) and date ge '2026-01-01'",
      { from: '2026-01-01', to: '2027-01-01', personIds: [42, 43] },
    ],
    [
      "date ge '2026-01-01' and (person in (5, 6) or person eq 1 or (person eq 9))",
      { from: '2026-01-01', to: '2027-01-01', personIds: [1, 5, 6, 9] },
    ],
    [
      "date ge '2026-01-01' and ((person in (1,2,3) and person in (2,3,4)) or person eq 9)",
      { from: '2026-01-01', to: '2027-01-01', personIds: [2, 3, 9] },
    ],
    [
      "person in (1, 2) and date ge '2026-01-01' and person in (2, 3)",
      { from: '2026-01-01', to: '2027-01-01', personIds: [2] },
    ],
    [
      "person eq 1 and person eq 2 and date eq '2026-05-05'",
      { from: '2026-05-05', to: '2026-05-05', personIds: [] },
    ],
    [
      "((date ge '2026-01-01') and (date le '2026-01-31'))",
      { from: '2026-01-01', to: '2026-01-31', personIds: null },
    ],
  ];
  for (const [text, value] of accepted) {
    test(JSON.stringify(text), () => {
      assert.deepEqual(parseAbsenceFilter(text), { ok: true, value });
    });
  }
});

describe('parseAbsenceFilter rejects, naming the problem', () => {
  const rejected: [string, RegExp][] = [
    ['', /A filter is required/],
    ['   ', /A filter is required/],
    ["date le '2026-01-01'", /date ge is required/],
    ['person in (1)', /date ge is required/],
    ["date ge '2026-01-01' and date le '2027-01-03'", /spans 367 days; the limit is 366/],
    ["date ge '2026-02-01' and date le '2026-01-01'", /is before date ge/],
    ["date ge '2026-02-30'", /'2026-02-30' in date ge is not a calendar date/],
    ["date ge '2026-1-1'", /not a calendar date/],
    ['date ge 20260101', /date ge takes a quoted date such as '2026-03-02', not 20260101/],
    ['date ge 2026-01-01', /Unexpected character "-" at character 13/],
    ["date gt '2026-01-01'", /Expected eq, ge, le or in after date, found "gt"/],
    ["DATE ge '2026-01-01'", /"DATE" is not a field this list can be filtered on; use date, person/],
    ["date GE '2026-01-01'", /found "GE"/],
    ["status eq 'Manual'", /"status" is not a field this list can be filtered on/],
    [
      "date ge '2026-01-01' or person in (1)",
      /or may only join conditions on one field of the Multiple category \(person\), not on date and person/,
    ],
    [
      "(date ge '2026-01-01' or date ge '2026-02-01')",
      /or may only join conditions on one field of the Multiple category/,
    ],
    ["date ge '2026-01-01' and (person eq 1 or person ge 2)", /person takes eq or in, not ge/],
    ["date in ('2026-01-01')", /date takes ge, le or eq, not in/],
    [
      "date ge '2026-01-01' and (person eq 1",
      /Expected \) or a joining and\/or, found the end of the filter/,
    ],
    ["date ge '2026-01-01' person eq 1", /Expected and or or between conditions, found "person"/],
    [`${'('.repeat(17)}date ge '2026-01-01'${')'.repeat(17)}`, /nests parentheses deeper than 16 levels/],
    ["date ge '2026-01-01' and", /ends after and/],
    ["date ge '2026-01-01' and date ge '2026-01-02'", /date ge appears more than once/],
    ["date ge '2026-01-01", /not closed/],
    [
      "date ge '2026-01-01' and person in circle(2, 8)",
      /person in circle\(…\) names a set Timehook cannot resolve/,
    ],
    [
      "date ge '2026-01-01' and person in org-tree(121)",
      /person in org-tree\(…\) names a set Timehook cannot resolve/,
    ],
    [
      "date ge '2026-01-01' and person in org-group(5, 6)",
      /person in org-group\(…\) names a set Timehook cannot resolve/,
    ],
    [
      "date ge '2026-01-01' and person in (1,",
      /Expected a value .* in the list of person in, found the end of the filter/,
    ],
    ["date ge '2026-01-01' and person in (1;2)", /Unexpected character ";"/],
    ["date ge '2026-01-01' and person in (0)", /0 is not a valid person id/],
    ["date ge '2026-01-01' and person in (99999999999999999999)", /is not a valid person id/],
    ["date ge '2026-01-01' and person in ()", /Expected a value .* found "\)"/],
    ["date ge '2026-01-01' and person eq 'x'", /'x' is not a valid person id/],
    ["date eq '2026-01-01' and date ge '2026-01-01'", /date eq cannot be combined/],
    [
      `date ge '2026-01-01' and person in (${Array.from({ length: 101 }, (_, i) => i + 1).join(',')})`,
      /lists 101 values; the limit is 100/,
    ],
  ];
  for (const [text, pattern] of rejected) {
    test(JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text), () => {
      const result = parseAbsenceFilter(text);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reasons.join(' '), pattern);
    });
  }

  test('reports every semantic problem at once', () => {
    const result = parseAbsenceFilter("date ge '2026-13-01' and person in (0)");
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.reasons.length >= 2, true);
  });
});

describe('parseAbsenceFilter properties', () => {
  test('never throws and always returns a result with reasons or a valid range, for arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const result = parseAbsenceFilter(text);
        if (result.ok) {
          assert.ok(result.value.to !== null && result.value.from <= result.value.to);
        } else {
          assert.ok(result.reasons.length > 0);
          for (const reason of result.reasons) assert.equal(typeof reason, 'string');
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('never throws on strings built from the grammar’s own tokens', () => {
    const token = fc.constantFrom(
      'date',
      'person',
      'ge',
      'le',
      'eq',
      'in',
      'and',
      'or',
      '(',
      ')',
      ',',
      "'2026-01-01'",
      "'2027-06-30'",
      "'2026-02-30'",
      '1',
      '0',
      '12',
      "'",
      'circle',
      'org-group',
      ' ',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 30 }), (tokens) => {
        const result = parseAbsenceFilter(tokens.join(' '));
        assert.equal(typeof result.ok, 'boolean');
      }),
      { numRuns: 2000 },
    );
  });

  test('any valid range within 366 days parses back to itself', () => {
    const day = fc.integer({ min: 0, max: 2_900_000 }).map((n) => addDays('0001-01-01', n));
    fc.assert(
      fc.property(day, fc.integer({ min: 0, max: 366 }), (from, span) => {
        const to = addDays(from, span);
        const result = parseAbsenceFilter(`date ge '${from}' and date le '${to}'`);
        assert.deepEqual(result, { ok: true, value: { from, to, personIds: null } });
      }),
    );
  });
});

test('filterKey is the same for equivalent filters', () => {
  const a = parseAbsenceFilter("date ge '2026-01-01' and person in (2,1)");
  const b = parseAbsenceFilter("person in (1, 2, 2) and date ge '2026-01-01' and date le '2027-01-01'");
  assert.ok(a.ok && b.ok);
  assert.equal(filterKey(a.value), filterKey(b.value));
});

describe('parseAbsenceFilter with &delta, as upstream', () => {
  const today = '2026-12-08';

  test('without date le the delta follows every later date', () => {
    assert.deepEqual(parseAbsenceFilter("date ge '2026-01-01'", { delta: true, today }), {
      ok: true,
      value: { from: '2026-01-01', to: null, personIds: null },
    });
  });

  test('date le still bounds it, to at most 366 days', () => {
    assert.deepEqual(
      parseAbsenceFilter("date ge '2026-01-01' and date le '2026-06-30'", { delta: true, today }),
      { ok: true, value: { from: '2026-01-01', to: '2026-06-30', personIds: null } },
    );
    const long = parseAbsenceFilter("date ge '2026-01-01' and date le '2027-06-30'", { delta: true, today });
    assert.equal(long.ok, false);
  });

  test('may start on 1 January of the previous year, not a day earlier', () => {
    assert.equal(parseAbsenceFilter("date ge '2025-01-01'", { delta: true, today }).ok, true);
    const early = parseAbsenceFilter("date ge '2024-12-31'", { delta: true, today });
    assert.deepEqual(early, {
      ok: false,
      reasons: [
        "A delta may start no earlier than 1 January of the previous year (2025-01-01); date ge is '2024-12-31'.",
      ],
    });
  });

  test('takes no person filter', () => {
    for (const text of [
      "date ge '2026-01-01' and person eq 1",
      "date ge '2026-01-01' and (person eq 1 or person eq 2)",
    ]) {
      const result = parseAbsenceFilter(text, { delta: true, today });
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reasons.join(' '), /person filtering is not available with delta/);
    }
  });

  test('a list without date le still ends 365 days after date ge', () => {
    assert.deepEqual(parseAbsenceFilter("date ge '2026-01-01'", { today }), {
      ok: true,
      value: { from: '2026-01-01', to: '2027-01-01', personIds: null },
    });
  });
});
