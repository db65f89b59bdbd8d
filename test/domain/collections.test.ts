import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  canonicalAbsence,
  canonicalDefinition,
  canonicalPerson,
  isCalendarDate,
  predefinedReferencesOf,
  requestPersonProblem,
  validateAbsence,
  validateAbsenceBatch,
  validateResource,
  withChangeVersion,
  type AbsenceBody,
} from '../../src/domain/collections.ts';

const absence = (): AbsenceBody => ({
  id: 1,
  person: { id: 42 },
  resultingAbsenceDefinition: { id: 7 },
  requestedAbsenceDefinition: null,
  shiftDefinition: { id: 3 },
  date: '2026-03-02',
  startTimeInMinutes: 480,
  durationInMinutes: 240,
  calculatedDurationInMinutes: 240,
  dayPart: 'First',
  request: { id: 'acme-42-9001' },
  status: 'Manual',
  approvalLevel: 'Approved',
  isLocked: false,
  periodType: 'Day',
});

describe('canonical objects', () => {
  test('withChangeVersion puts a 20-hex-digit changeVersion first', () => {
    const person = withChangeVersion(
      0xa3f,
      canonicalPerson({ id: 1, displayName: 'A', badgeNumber: null, employeeNumber: null }),
    );
    assert.deepEqual(Object.keys(person), [
      'changeVersion',
      'id',
      'displayName',
      'badgeNumber',
      'employeeNumber',
    ]);
    assert.equal(person.changeVersion, '00000000000000000A3F');
  });

  test('canonicalAbsence orders keys as the spec and fills absent links with null', () => {
    const shuffled = Object.fromEntries(Object.entries(absence()).reverse()) as unknown as AbsenceBody;
    const canonical = canonicalAbsence({ ...shuffled, shiftDefinition: undefined as never });
    assert.deepEqual(Object.keys(canonical), Object.keys(absence()));
    assert.equal(canonical.shiftDefinition, null);
  });

  test('canonicalDefinition sorts translations, so equal definitions compare equal', () => {
    const a = canonicalDefinition({
      id: 1,
      name: { default: 'S', translations: { nl: 'Z', fr: 'M' } },
      code: 'S',
      isEnabled: true,
    });
    const b = canonicalDefinition({
      isEnabled: true,
      code: 'S',
      name: { translations: { fr: 'M', nl: 'Z' }, default: 'S' },
      id: 1,
    });
    assert.equal(JSON.stringify(a), JSON.stringify(b));
  });

  test('predefinedReferencesOf derives @ references from fields, skipping nulls', () => {
    assert.deepEqual(
      predefinedReferencesOf('people', { id: 1, displayName: 'A', badgeNumber: null, employeeNumber: 'E1' }),
      {
        '@employee-number': 'E1',
      },
    );
    assert.deepEqual(
      predefinedReferencesOf('shift-definitions', {
        id: 1,
        name: { default: 'S', translations: {} },
        code: 'EARLY',
        isEnabled: true,
      }),
      { '@shift-code': 'EARLY' },
    );
  });
});

describe('isCalendarDate', () => {
  for (const [text, ok] of [
    ['2026-03-02', true],
    ['2028-02-29', true],
    ['2026-02-29', false],
    ['2100-02-29', false],
    ['2000-02-29', true],
    ['2026-04-31', false],
    ['2026-13-01', false],
    ['0000-01-01', false],
    ['0001-01-01', true],
    ['9999-12-31', true],
    ['2026-3-2', false],
    ['20260302', false],
  ] as const) {
    test(`${text} → ${ok}`, () => assert.equal(isCalendarDate(text), ok));
  }
});

describe('validation', () => {
  test('validateAbsence names properties with the batch prefix', () => {
    const result = validateAbsence({ ...absence(), id: undefined, dayPart: 'x' }, undefined, 'upsert.4');
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.deepEqual(
        result.issues.map((i) => i.property),
        ['upsert.4.id', 'upsert.4.dayPart'],
      );
    }
  });

  test('requestPersonProblem checks PersonId against the resolved person', () => {
    assert.equal(requestPersonProblem(absence()), undefined);
    assert.match(requestPersonProblem({ ...absence(), person: { id: 43 } }) ?? '', /person id \(43\)/);
    assert.equal(requestPersonProblem({ ...absence(), request: null }), undefined);
  });

  test('validateAbsenceBatch rejects a repeated id and too many items', () => {
    const twice = validateAbsenceBatch({ upsert: [absence(), absence()] });
    assert.equal(twice.ok, false);
    const many = validateAbsenceBatch({ delete: Array.from({ length: 10_001 }, (_, i) => i + 1) });
    assert.equal(many.ok, false);
  });

  test('the validators never throw on arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        for (const result of [
          validateAbsence(value, 1),
          validateAbsence(value, undefined, 'upsert.0'),
          validateAbsenceBatch(value),
          validateResource('people', value, 1),
          validateResource('absence-definitions', value, 1),
        ]) {
          assert.equal(typeof result.ok, 'boolean');
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('the validators never throw on absences with arbitrary field values', () => {
    const keys = Object.keys(absence());
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.jsonValue(), (key, value) => {
        const result = validateAbsence({ ...absence(), [key]: value }, 1);
        assert.equal(typeof result.ok, 'boolean');
      }),
      { numRuns: 1000 },
    );
  });
});
