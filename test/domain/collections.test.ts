import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ALLOWED_DURATIONS,
  MARITAL_STATUSES,
  SEXES,
  canonicalAbsence,
  canonicalAbsenceDefinition,
  canonicalPerson,
  canonicalResource,
  canonicalShiftDefinition,
  isCalendarDate,
  predefinedReferencesOf,
  requestPersonProblem,
  sameObject,
  validateAbsence,
  validateAbsenceBatch,
  validateResource,
  withChangeVersion,
  type AbsenceBody,
  type PersonBody,
  type PersonInput,
  type ResourceCollection,
} from '../../src/domain/collections.ts';
import { PERSON_FIELDS } from '../helpers/collections.ts';

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

/** A person with every field set, as a writer sends it. */
const fullPerson = (): Omit<PersonBody, 'id'> => ({
  periodClosingDate: '2026-01-31',
  hourlyRateCurrencyDefinition: { id: 1 },
  advanceCurrencyDefinition: { id: 2 },
  lastName: 'Peeters',
  firstName: 'Ada',
  initials: 'A.P.',
  telephone: '+32 2 000 00 00',
  mobile: '+32 470 00 00 00',
  email: 'ada@example.com',
  address: 'Kerkstraat 1',
  postalCode: '9000',
  town: 'Gent',
  countryISOCode: 'BE',
  nationalityISOCode: 'BE',
  sex: 'Female',
  maritalStatus: 'Single',
  birthDate: '1990-02-28',
  placeOfBirth: 'Brugge',
  drivingLicense: 'B',
  registerNumber: '90.02.28-000.00',
  passportNumber: 'EN000000',
  socialSecurityNumber: '000-00-0000',
  bankAccount: 'BE00 0000 0000 0000',
  inServiceDate: '2020-09-01',
  outOfServiceDate: '2030-08-31',
  wtdStartDate: '2020-09-01',
  employeeNumber: 'E042',
  payGroup: 'Monthly',
  hourlyRate: 21.5,
  maxAdvance: 500,
  terminalGroup: { id: 3 },
  badgeNumber: '6767676',
  pinCode: '1234',
});

const definitionInput = (over: Record<string, unknown> = {}) => ({
  name: { default: 'Sick', translations: { nl: 'Ziek' } },
  code: 'SICK',
  isEnabled: true,
  ...over,
});

describe('canonical objects', () => {
  test('a person: changeVersion, id, then every upstream field in upstream order, null where not given', () => {
    const person = withChangeVersion(0xa3f, canonicalPerson({ id: 1, firstName: 'Ada' }));
    assert.deepEqual(Object.keys(person), ['changeVersion', 'id', ...PERSON_FIELDS]);
    assert.equal(person.changeVersion, '00000000000000000A3F');
    assert.equal(person.firstName, 'Ada');
    for (const field of PERSON_FIELDS.filter((f) => f !== 'firstName'))
      assert.equal((person as unknown as Record<string, unknown>)[field], null, field);
  });

  test('a person stored before the upstream fields reads with nulls, and without displayName', () => {
    const stored = { id: 1, displayName: 'Ada', badgeNumber: null, employeeNumber: 'E1' } as PersonInput;
    const person = canonicalResource('people', stored);
    assert.deepEqual(Object.keys(person), ['id', ...PERSON_FIELDS]);
    assert.deepEqual(person, canonicalPerson({ id: 1, employeeNumber: 'E1' }));
  });

  test('a person written in any key order is the same object', () => {
    const shuffled = Object.fromEntries(Object.entries(fullPerson()).reverse()) as Omit<PersonBody, 'id'>;
    const a = canonicalPerson({ id: 1, ...fullPerson() });
    const b = canonicalPerson({ ...shuffled, id: 1 });
    assert.ok(sameObject(a, b));
    assert.deepEqual(Object.keys(b), ['id', ...PERSON_FIELDS]);
  });

  test('an absence definition: upstream order, defaults for fields not given (as stored before them)', () => {
    const stored = { id: 7, name: { default: 'S', translations: {} }, code: 'S', isEnabled: true };
    const definition = canonicalResource('absence-definitions', stored);
    assert.deepEqual(definition, {
      id: 7,
      name: { default: 'S', translations: {} },
      code: 'S',
      friendlyName: null,
      friendlyCode: null,
      allowedDurations: [],
      isEnabled: true,
      isReasonForClocking: false,
      absenceGroup: null,
    });
    assert.deepEqual(Object.keys(definition), [
      'id',
      'name',
      'code',
      'friendlyName',
      'friendlyCode',
      'allowedDurations',
      'isEnabled',
      'isReasonForClocking',
      'absenceGroup',
    ]);
  });

  test('a shift definition: id, name, code, friendlyName, isEnabled', () => {
    const stored = { isEnabled: true, code: 'S', name: { default: 'S', translations: {} }, id: 3 };
    const definition = canonicalResource('shift-definitions', stored);
    assert.deepEqual(Object.keys(definition), ['id', 'name', 'code', 'friendlyName', 'isEnabled']);
    assert.equal((definition as { friendlyName: unknown }).friendlyName, null);
  });

  test('canonicalAbsence orders keys as the spec and fills absent links with null', () => {
    const shuffled = Object.fromEntries(Object.entries(absence()).reverse()) as unknown as AbsenceBody;
    const canonical = canonicalAbsence({ ...shuffled, shiftDefinition: undefined as never });
    assert.deepEqual(Object.keys(canonical), Object.keys(absence()));
    assert.equal(canonical.shiftDefinition, null);
  });

  test('translations and allowedDurations are sorted, so equal definitions compare equal', () => {
    const a = canonicalAbsenceDefinition({
      id: 1,
      name: { default: 'S', translations: { nl: 'Z', fr: 'M' } },
      code: 'S',
      friendlyName: { default: 'F', translations: { nl: 'Z', fr: 'M' } },
      allowedDurations: ['Duration', 'FullDay'],
      isEnabled: true,
    });
    const b = canonicalAbsenceDefinition({
      allowedDurations: ['FullDay', 'Duration'],
      friendlyName: { translations: { fr: 'M', nl: 'Z' }, default: 'F' },
      isEnabled: true,
      code: 'S',
      name: { translations: { fr: 'M', nl: 'Z' }, default: 'S' },
      id: 1,
    });
    assert.ok(sameObject(a, b));
    assert.deepEqual(a.allowedDurations, ['FullDay', 'Duration']);
    const c = canonicalShiftDefinition({
      id: 1,
      name: { default: 'S', translations: {} },
      code: 'S',
      isEnabled: true,
    });
    assert.ok(!sameObject(c, { ...c, friendlyName: { default: 'F', translations: {} } }));
  });

  test('predefinedReferencesOf derives @ references from fields, skipping nulls', () => {
    assert.deepEqual(
      predefinedReferencesOf('people', canonicalPerson({ id: 1, firstName: 'A', employeeNumber: 'E1' })),
      { '@employee-number': 'E1' },
    );
    assert.deepEqual(
      predefinedReferencesOf('people', canonicalPerson({ id: 1, badgeNumber: 'B1', employeeNumber: 'E1' })),
      { '@badge-number': 'B1', '@employee-number': 'E1' },
    );
    assert.deepEqual(
      predefinedReferencesOf(
        'shift-definitions',
        canonicalShiftDefinition({
          id: 1,
          name: { default: 'S', translations: {} },
          code: 'EARLY',
          isEnabled: true,
        }),
      ),
      { '@shift-code': 'EARLY' },
    );
  });
});

/** The properties validateResource names, or 'ok'. */
function issuesOf(collection: ResourceCollection, body: unknown): string[] | 'ok' {
  const result = validateResource(collection, body, 1);
  return result.ok ? 'ok' : result.issues.map((i) => i.property);
}

describe('validateResource: people', () => {
  test('every field is optional: {} is a person with every field null', () => {
    const result = validateResource('people', {}, 5);
    assert.ok(result.ok);
    assert.deepEqual(result.value.body, canonicalPerson({ id: 5 }));
    assert.equal(result.value.customReferences, undefined);
  });

  test('a full person is kept field for field, in upstream order', () => {
    const result = validateResource('people', { ...fullPerson(), id: 1 }, 1);
    assert.ok(result.ok);
    assert.deepEqual(result.value.body, { id: 1, ...fullPerson() });
    assert.deepEqual(Object.keys(result.value.body), ['id', ...PERSON_FIELDS]);
  });

  test('null is accepted for every field and stored as null', () => {
    const result = validateResource('people', Object.fromEntries(PERSON_FIELDS.map((f) => [f, null])), 1);
    assert.ok(result.ok);
    assert.deepEqual(result.value.body, canonicalPerson({ id: 1 }));
  });

  for (const sex of SEXES)
    test(`sex ${sex} is accepted`, () => assert.equal(issuesOf('people', { sex }), 'ok'));
  for (const maritalStatus of MARITAL_STATUSES) {
    test(`maritalStatus ${maritalStatus} is accepted`, () =>
      assert.equal(issuesOf('people', { maritalStatus }), 'ok'));
  }

  const accepted: [string, Record<string, unknown>][] = [
    ['an hourlyRate of 0', { hourlyRate: 0 }],
    ['a fractional maxAdvance', { maxAdvance: 12.75 }],
    ['a leap day', { birthDate: '2000-02-29' }],
    ['outOfServiceDate on inServiceDate', { inServiceDate: '2026-03-02', outOfServiceDate: '2026-03-02' }],
    ['outOfServiceDate without inServiceDate', { outOfServiceDate: '2026-03-02' }],
    ['an e-mail address', { email: 'ada.peeters+hr@example.co.uk' }],
    ['links with positive ids', { terminalGroup: { id: 3 }, advanceCurrencyDefinition: { id: 9 } }],
    ['custom references', { externalReferences: { HRMID: 'h1' } }],
  ];
  for (const [what, body] of accepted)
    test(`${what} is accepted`, () => assert.equal(issuesOf('people', body), 'ok'));

  const rejected: [string, Record<string, unknown>, string[]][] = [
    ['a sex in lower case', { sex: 'female' }, ['sex']],
    ['a sex that is no upstream value', { sex: 'F' }, ['sex']],
    ['a maritalStatus that is no upstream value', { maritalStatus: 'Separated' }, ['maritalStatus']],
    ['a maritalStatus that is a number', { maritalStatus: 1 }, ['maritalStatus']],
    ['a date that does not exist', { birthDate: '2026-02-29' }, ['birthDate']],
    ['a date without leading zeros', { inServiceDate: '2026-3-1' }, ['inServiceDate']],
    ['a date with a time', { wtdStartDate: '2026-03-01T00:00:00Z' }, ['wtdStartDate']],
    ['a date that is a number', { periodClosingDate: 20260131 }, ['periodClosingDate']],
    [
      'outOfServiceDate before inServiceDate',
      { inServiceDate: '2026-03-02', outOfServiceDate: '2026-03-01' },
      ['outOfServiceDate'],
    ],
    ['a negative hourlyRate', { hourlyRate: -1 }, ['hourlyRate']],
    ['an hourlyRate as a string', { hourlyRate: '21.5' }, ['hourlyRate']],
    ['an infinite maxAdvance', { maxAdvance: Infinity }, ['maxAdvance']],
    ['a NaN maxAdvance', { maxAdvance: NaN }, ['maxAdvance']],
    ['a link id of 0', { terminalGroup: { id: 0 } }, ['terminalGroup.id']],
    ['a link that is a bare number', { terminalGroup: 3 }, ['terminalGroup']],
    ['a link without id', { hourlyRateCurrencyDefinition: {} }, ['hourlyRateCurrencyDefinition.id']],
    ['a link with another property', { terminalGroup: { id: 3, name: 'T' } }, ['terminalGroup.name']],
    [
      'a link by external reference',
      { advanceCurrencyDefinition: { externalReferences: { EUR: 'EUR' } } },
      ['advanceCurrencyDefinition.externalReferences', 'advanceCurrencyDefinition.id'],
    ],
    ['an empty firstName', { firstName: '' }, ['firstName']],
    ['a blank lastName', { lastName: '   ' }, ['lastName']],
    ['a lastName that is a number', { lastName: 5 }, ['lastName']],
    ['a pinCode over 256 characters', { pinCode: 'x'.repeat(257) }, ['pinCode']],
    ['an e-mail address without @', { email: 'ada' }, ['email']],
    ['an e-mail address with a space', { email: 'ada peeters@example.com' }, ['email']],
    ['displayName, which upstream does not have', { displayName: 'Ada' }, ['displayName']],
    ['a changeVersion', { changeVersion: '00000000000000000001' }, ['changeVersion']],
    ['an unknown property', { nickname: 'a' }, ['nickname']],
    ['two bad fields', { sex: 'x', hourlyRate: -1 }, ['sex', 'hourlyRate']],
  ];
  for (const [what, body, properties] of rejected) {
    test(`${what} is rejected, naming ${properties.join(', ')}`, () =>
      assert.deepEqual(issuesOf('people', body), properties));
  }
});

describe('validateResource: definitions', () => {
  test('an absence definition with only name, code and isEnabled takes the defaults', () => {
    const result = validateResource('absence-definitions', definitionInput(), 7);
    assert.ok(result.ok);
    assert.deepEqual(result.value.body, {
      id: 7,
      name: { default: 'Sick', translations: { nl: 'Ziek' } },
      code: 'SICK',
      friendlyName: null,
      friendlyCode: null,
      allowedDurations: [],
      isEnabled: true,
      isReasonForClocking: false,
      absenceGroup: null,
    });
  });

  test('a full absence definition is kept, allowedDurations in upstream order', () => {
    const result = validateResource(
      'absence-definitions',
      definitionInput({
        friendlyName: { default: 'Sick leave' },
        friendlyCode: { default: 'SL', translations: { nl: 'ZV' } },
        allowedDurations: ['Duration', 'FullDay', 'HalfDay'],
        isReasonForClocking: true,
        absenceGroup: { id: 4 },
      }),
      7,
    );
    assert.ok(result.ok);
    assert.deepEqual(result.value.body, {
      id: 7,
      name: { default: 'Sick', translations: { nl: 'Ziek' } },
      code: 'SICK',
      friendlyName: { default: 'Sick leave', translations: {} },
      friendlyCode: { default: 'SL', translations: { nl: 'ZV' } },
      allowedDurations: ['FullDay', 'HalfDay', 'Duration'],
      isEnabled: true,
      isReasonForClocking: true,
      absenceGroup: { id: 4 },
    });
  });

  test('a shift definition takes friendlyName, null when omitted', () => {
    const plain = validateResource('shift-definitions', definitionInput(), 3);
    assert.ok(plain.ok);
    assert.deepEqual(Object.keys(plain.value.body), ['id', 'name', 'code', 'friendlyName', 'isEnabled']);
    assert.equal((plain.value.body as { friendlyName: unknown }).friendlyName, null);
    const named = validateResource(
      'shift-definitions',
      definitionInput({ friendlyName: { default: 'Early' } }),
      3,
    );
    assert.ok(named.ok);
    assert.deepEqual((named.value.body as { friendlyName: unknown }).friendlyName, {
      default: 'Early',
      translations: {},
    });
  });

  for (const duration of ALLOWED_DURATIONS) {
    test(`allowedDurations ${duration} is accepted`, () =>
      assert.equal(issuesOf('absence-definitions', definitionInput({ allowedDurations: [duration] })), 'ok'));
  }
  test('null friendlyName and friendlyCode and an empty allowedDurations are accepted', () =>
    assert.equal(
      issuesOf(
        'absence-definitions',
        definitionInput({ friendlyName: null, friendlyCode: null, allowedDurations: [], absenceGroup: null }),
      ),
      'ok',
    ));

  const rejected: [ResourceCollection, string, Record<string, unknown>, string[]][] = [
    ['absence-definitions', 'an unknown duration', { allowedDurations: ['Daily'] }, ['allowedDurations.0']],
    [
      'absence-definitions',
      'a duration twice',
      { allowedDurations: ['FullDay', 'FullDay'] },
      ['allowedDurations.1'],
    ],
    [
      'absence-definitions',
      'allowedDurations as a string',
      { allowedDurations: 'FullDay' },
      ['allowedDurations'],
    ],
    ['absence-definitions', 'allowedDurations null', { allowedDurations: null }, ['allowedDurations']],
    ['absence-definitions', 'a friendlyName without default', { friendlyName: {} }, ['friendlyName.default']],
    ['absence-definitions', 'a friendlyName as a string', { friendlyName: 'Sick' }, ['friendlyName']],
    [
      'absence-definitions',
      'a friendlyName translation key that is no language',
      { friendlyName: { default: 'S', translations: { 'not a tag': 'x' } } },
      ['friendlyName.translations.not a tag'],
    ],
    [
      'absence-definitions',
      'a friendlyCode over 256 characters',
      { friendlyCode: { default: 'x'.repeat(257) } },
      ['friendlyCode.default'],
    ],
    [
      'absence-definitions',
      'an unknown friendlyCode property',
      { friendlyCode: { default: 'S', short: 'S' } },
      ['friendlyCode.short'],
    ],
    [
      'absence-definitions',
      'isReasonForClocking as a string',
      { isReasonForClocking: 'yes' },
      ['isReasonForClocking'],
    ],
    [
      'absence-definitions',
      'isReasonForClocking null',
      { isReasonForClocking: null },
      ['isReasonForClocking'],
    ],
    ['absence-definitions', 'an absenceGroup id of -1', { absenceGroup: { id: -1 } }, ['absenceGroup.id']],
    ['absence-definitions', 'an absenceGroup that is a number', { absenceGroup: 4 }, ['absenceGroup']],
    ['absence-definitions', 'a missing isEnabled', { isEnabled: undefined }, ['isEnabled']],
    [
      'shift-definitions',
      'a friendlyName without default',
      { friendlyName: { translations: {} } },
      ['friendlyName.default'],
    ],
    [
      'shift-definitions',
      'friendlyCode, which shift definitions lack',
      { friendlyCode: { default: 'S' } },
      ['friendlyCode'],
    ],
    ['shift-definitions', 'allowedDurations', { allowedDurations: [] }, ['allowedDurations']],
    ['shift-definitions', 'isReasonForClocking', { isReasonForClocking: false }, ['isReasonForClocking']],
    ['shift-definitions', 'absenceGroup', { absenceGroup: null }, ['absenceGroup']],
  ];
  for (const [collection, what, over, properties] of rejected) {
    test(`${collection}: ${what} is rejected, naming ${properties.join(', ')}`, () =>
      assert.deepEqual(issuesOf(collection, definitionInput(over)), properties));
  }
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
          validateResource('shift-definitions', value, 1),
        ]) {
          assert.equal(typeof result.ok, 'boolean');
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('validateResource never throws on people and definitions with arbitrary field values', () => {
    const cases: [ResourceCollection, Record<string, unknown>][] = [
      ['people', fullPerson()],
      ['absence-definitions', definitionInput({ friendlyName: { default: 'F' }, absenceGroup: { id: 1 } })],
      ['shift-definitions', definitionInput({ friendlyName: { default: 'F' } })],
    ];
    for (const [collection, body] of cases) {
      fc.assert(
        fc.property(
          fc.constantFrom(...Object.keys(body), 'allowedDurations', 'friendlyCode'),
          fc.jsonValue(),
          (key, value) => {
            const result = validateResource(collection, { ...body, [key]: value }, 1);
            assert.equal(typeof result.ok, 'boolean');
          },
        ),
        { numRuns: 500 },
      );
    }
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
