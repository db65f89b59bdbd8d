import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatExternalReferences, parseExternalReferences } from '../../src/domain/external-references.ts';
import { COLLECTIONS } from '../../src/domain/scopes.ts';

describe('parseExternalReferences', () => {
  const valid: [string, string, Record<string, string[]>][] = [
    ['absences', '(people,@employee-number)', { people: ['@employee-number'] }],
    ['absences', '(people,@badge-number)(people,HRMID)', { people: ['@badge-number', 'HRMID'] }],
    [
      'absences',
      '(people,@employee-number)(absence-definitions,@absence-code)(shift-definitions,@shift-code)',
      {
        people: ['@employee-number'],
        'absence-definitions': ['@absence-code'],
        'shift-definitions': ['@shift-code'],
      },
    ],
    ['absences', '(people,HRMID)(people,HRMID)', { people: ['HRMID'] }],
    ['absences', '( people , customCode_1-x )', { people: ['customCode_1-x'] }],
    ['people', '(people,@badge-number)', { people: ['@badge-number'] }],
    [
      'absence-definitions',
      '(absence-definitions,customAbsenceCode)',
      { 'absence-definitions': ['customAbsenceCode'] },
    ],
    ['shift-definitions', '(shift-definitions,@shift-code)', { 'shift-definitions': ['@shift-code'] }],
  ];
  for (const [owner, text, expected] of valid) {
    test(`accepts ${text} on ${owner}`, () => {
      assert.deepEqual(parseExternalReferences(text, owner as 'absences'), { ok: true, value: expected });
    });
  }

  const invalid: [string, string, RegExp][] = [
    ['absences', '', /empty/],
    ['absences', 'people,@badge-number', /malformed at character 1/],
    ['absences', '(people,@badge-number', /malformed/],
    ['absences', '(people,@badge-number),(people,x)', /malformed at character 23/],
    ['absences', '(clockings,@x)', /"clockings" is not a collection/],
    ['absences', '(people,@shift-code)', /not a predefined reference of people/],
    ['absences', '(people,1abc)', /not a valid custom reference name/],
    ['absences', `(people,${'a'.repeat(65)})`, /not a valid custom reference name/],
    ['absences', '(people,)', /not a valid custom reference name/],
    ['people', '(absence-definitions,@absence-code)', /people can include; use people/],
    ['absences', '(people,a)'.repeat(33), /more than 32/],
  ];
  for (const [owner, text, reason] of invalid) {
    test(`rejects ${JSON.stringify(text.slice(0, 40))} on ${owner} with a reason`, () => {
      const result = parseExternalReferences(text, owner as 'absences');
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reason, reason);
    });
  }

  test('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.constantFrom(...COLLECTIONS), (text, owner) => {
        const result = parseExternalReferences(text, owner);
        assert.equal(typeof result.ok, 'boolean');
      }),
      { numRuns: 2000 },
    );
  });

  test('round-trips through formatExternalReferences', () => {
    const name = fc.oneof(
      fc.constantFrom('@badge-number', '@employee-number'),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,10}$/),
    );
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 5 }), (names) => {
        const text = names.map((n) => `(people,${n})`).join('');
        const parsed = parseExternalReferences(text, 'absences');
        assert.ok(parsed.ok);
        if (parsed.ok)
          assert.deepEqual(
            parseExternalReferences(formatExternalReferences(parsed.value), 'absences'),
            parsed,
          );
      }),
    );
  });
});
