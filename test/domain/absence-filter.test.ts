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
    ['date ge 20260101', /Expected a quoted date .* found "20260101"/],
    ['date ge 2026-01-01', /Unexpected character "-" at character 13/],
    ["date gt '2026-01-01'", /Expected ge, le or eq after date, found "gt"/],
    ["DATE ge '2026-01-01'", /Expected date or person, found "DATE"/],
    ["date GE '2026-01-01'", /found "GE"/],
    ["status eq 'Manual'", /Expected date or person, found "status"/],
    ["date ge '2026-01-01' or person in (1)", /Expected and between conditions, found "or"/],
    ["date ge '2026-01-01' and", /ends after and/],
    ["date ge '2026-01-01' and date ge '2026-01-02'", /date ge appears more than once/],
    ["date ge '2026-01-01", /not closed/],
    ["date ge '2026-01-01' and person in circle(2, 8)", /not supported by Timehook/],
    ["date ge '2026-01-01' and person in org-tree(121)", /not supported by Timehook/],
    ["date ge '2026-01-01' and person in (1,", /Expected a person id, found the end of the filter/],
    ["date ge '2026-01-01' and person in (1;2)", /Unexpected character ";"/],
    ["date ge '2026-01-01' and person in (0)", /0 is not a valid person id/],
    ["date ge '2026-01-01' and person in (99999999999999999999)", /is not a valid person id/],
    ["date ge '2026-01-01' and person in ()", /Expected a person id, found "\)"/],
    ["date ge '2026-01-01' and person in (1) and person eq 2", /person condition appears more than once/],
    ["date eq '2026-01-01' and date ge '2026-01-01'", /date eq cannot be combined/],
    [
      `date ge '2026-01-01' and person in (${Array.from({ length: 101 }, (_, i) => i + 1).join(',')})`,
      /lists 101 ids; the limit is 100/,
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
          assert.ok(result.value.from <= result.value.to);
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
