// TypeBox schemas of the collections API (SPEC §1.4, §1.5): ingest bodies (structure only, unknown properties
// rejected; the domain adds the semantic checks), responses in the spec's key order (they drive the
// serializer and OpenAPI), query strings and the error bodies.

import { Type, type Static, type TSchema } from 'typebox';
import {
  ABSENCE_STATUSES,
  ALLOWED_DURATIONS,
  APPROVAL_LEVELS,
  DAY_PARTS,
  MARITAL_STATUSES,
  MAX_BATCH_ITEMS,
  MAX_CUSTOM_REFERENCES,
  MAX_ID,
  MAX_NAME_LENGTH,
  MAX_REQUEST_ID_LENGTH,
  MAX_TEXT_LENGTH,
  MINUTES_PER_DAY,
  PERIOD_TYPES,
  SEXES,
} from '../domain/collections.ts';

// ------------------------------------------------------------------------------------------------ shared

const Id = Type.Integer({ minimum: 1, maximum: MAX_ID, description: 'A positive integer id.' });
const ChangeVersion = Type.String({
  pattern: '^[0-9A-F]{20}$',
  description: '20 upper-case hex digits; string order is change order.',
  examples: ['00000000000000000A3F'],
});
const Text = (description: string) => Type.String({ minLength: 1, maxLength: MAX_TEXT_LENGTH, description });
const Minutes = (description: string) => Type.Integer({ minimum: 0, maximum: MINUTES_PER_DAY, description });

const ReferenceMapOut = Type.Record(Type.String(), Type.String(), {
  description:
    'Present only when the externalReferences query asks for references of this collection: reference name → value; names without a value for this object are left out.',
});

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      reasons: Type.Optional(Type.Array(Type.String())),
    }),
  },
  { description: 'An error: {"error":{"code","message","reasons"?}}.' },
);
export const ValidationErrors = Type.Object(
  {
    validationErrors: Type.Array(Type.Object({ property: Type.String(), message: Type.String() })),
  },
  { description: 'The body failed validation.' },
);
export const BadRequest = Type.Union([ErrorBody, ValidationErrors]);

// --------------------------------------------------------------------------------------------- responses

const LinkOut = Type.Object({ id: Id, externalReferences: Type.Optional(ReferenceMapOut) });
const NullableLinkOut = Type.Union([LinkOut, Type.Null()]);

const NullableString = Type.Union([Type.String(), Type.Null()]);
const NullableDateOut = Type.Union([Type.String({ format: 'date' }), Type.Null()]);
const NullableNumberOut = Type.Union([Type.Number(), Type.Null()]);
const NullableEnumOut = (values: readonly string[]) => Type.Union([Type.Enum([...values]), Type.Null()]);
const IdLinkOut = Type.Union([Type.Object({ id: Id }), Type.Null()], {
  description: 'A link to an object Timehook does not hold, or null.',
});

export const PersonOut = Type.Object(
  {
    changeVersion: ChangeVersion,
    id: Id,
    externalReferences: Type.Optional(ReferenceMapOut),
    periodClosingDate: NullableDateOut,
    hourlyRateCurrencyDefinition: IdLinkOut,
    advanceCurrencyDefinition: IdLinkOut,
    lastName: NullableString,
    firstName: NullableString,
    initials: NullableString,
    telephone: NullableString,
    mobile: NullableString,
    email: NullableString,
    address: NullableString,
    postalCode: NullableString,
    town: NullableString,
    countryISOCode: NullableString,
    nationalityISOCode: NullableString,
    sex: NullableEnumOut(SEXES),
    maritalStatus: NullableEnumOut(MARITAL_STATUSES),
    birthDate: NullableDateOut,
    placeOfBirth: NullableString,
    drivingLicense: NullableString,
    registerNumber: NullableString,
    passportNumber: NullableString,
    socialSecurityNumber: NullableString,
    bankAccount: NullableString,
    inServiceDate: NullableDateOut,
    outOfServiceDate: Type.Union([Type.String({ format: 'date' }), Type.Null()], {
      description: 'null: in service to infinity.',
    }),
    wtdStartDate: NullableDateOut,
    employeeNumber: NullableString,
    payGroup: NullableString,
    hourlyRate: NullableNumberOut,
    maxAdvance: NullableNumberOut,
    terminalGroup: IdLinkOut,
    badgeNumber: NullableString,
    pinCode: NullableString,
  },
  { description: "A person: upstream's fields in upstream's order, null where the writer gave none." },
);

const NameOut = Type.Object({
  default: Type.String(),
  translations: Type.Record(Type.String(), Type.String(), { description: 'language → name' }),
});
const NullableNameOut = Type.Union([NameOut, Type.Null()]);

export const AbsenceDefinitionOut = Type.Object(
  {
    changeVersion: ChangeVersion,
    id: Id,
    externalReferences: Type.Optional(ReferenceMapOut),
    name: NameOut,
    code: Type.String(),
    friendlyName: NullableNameOut,
    friendlyCode: NullableNameOut,
    allowedDurations: Type.Array(Type.Enum([...ALLOWED_DURATIONS])),
    isEnabled: Type.Boolean(),
    isReasonForClocking: Type.Boolean(),
    absenceGroup: IdLinkOut,
  },
  { description: 'An absence definition.' },
);

export const ShiftDefinitionOut = Type.Object(
  {
    changeVersion: ChangeVersion,
    id: Id,
    externalReferences: Type.Optional(ReferenceMapOut),
    name: NameOut,
    code: Type.String(),
    friendlyName: NullableNameOut,
    isEnabled: Type.Boolean(),
  },
  { description: 'A shift definition.' },
);

/** The response schema of each definition collection. */
export const DefinitionOut = {
  'absence-definitions': AbsenceDefinitionOut,
  'shift-definitions': ShiftDefinitionOut,
} as const;

export const AbsenceOut = Type.Object(
  {
    changeVersion: ChangeVersion,
    id: Id,
    person: LinkOut,
    resultingAbsenceDefinition: LinkOut,
    requestedAbsenceDefinition: NullableLinkOut,
    shiftDefinition: NullableLinkOut,
    date: Type.String({ format: 'date' }),
    startTimeInMinutes: Minutes('Minutes since midnight.'),
    durationInMinutes: Minutes('Duration in minutes.'),
    calculatedDurationInMinutes: Minutes('Calculated duration in minutes.'),
    dayPart: Type.Enum([...DAY_PARTS]),
    request: Type.Union([Type.Object({ id: Type.String() }), Type.Null()]),
    status: Type.Enum([...ABSENCE_STATUSES]),
    approvalLevel: Type.Enum([...APPROVAL_LEVELS]),
    isLocked: Type.Boolean(),
    periodType: Type.Enum([...PERIOD_TYPES]),
  },
  { description: 'An absence instance; every field is present, null where an optional link is absent.' },
);

export const ListOf = (item: TSchema) =>
  Type.Object({
    value: Type.Array(item),
    nextLink: Type.Optional(
      Type.String({ description: 'The next page (relative path); only a missing nextLink ends the list.' }),
    ),
    deltaLink: Type.Optional(
      Type.String({ description: 'With &delta, on the last page: where to ask for later changes.' }),
    ),
  });

export const DeltaPage = Type.Object({
  value: Type.Array(
    Type.Object({
      changeType: Type.Enum(['InsertOrUpdate', 'Delete']),
      data: Type.Object(
        { changeVersion: ChangeVersion, id: Id },
        {
          additionalProperties: true,
          description:
            "InsertOrUpdate: the object as written (the collection's schema); Delete: {changeVersion, id}.",
        },
      ),
    }),
  ),
  deltaLink: Type.String({
    description: 'The next delta request; always present, even after an empty page.',
  }),
});

export const BatchResult = Type.Object({
  upserted: Type.Integer({ description: 'Absences inserted or changed.' }),
  unchanged: Type.Integer({ description: 'Upserts equal to the stored absence (no change recorded).' }),
  deleted: Type.Integer({ description: 'Absences deleted (ids that did not exist are skipped).' }),
  lastChangeVersion: Type.Union([ChangeVersion, Type.Null()], {
    description: 'The changeVersion of the last change recorded, or null when nothing changed.',
  }),
});

// ------------------------------------------------------------------------------------------------ bodies

const ReferenceName = '^(@[a-z-]{1,63}|[A-Za-z][A-Za-z0-9_-]{0,63})$';
const ReferenceValue = Type.String({ minLength: 1, maxLength: MAX_TEXT_LENGTH });

const LinkIn = Type.Object(
  {
    id: Type.Optional(Id),
    externalReferences: Type.Optional(
      Type.Record(Type.String({ pattern: ReferenceName }), ReferenceValue, {
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        description: 'Instead of id: exactly one external reference of the linked object.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'A link: {"id": 42} or {"externalReferences": {"@employee-number": "E042"}}.',
  },
);
// A single type list (not anyOf) so that a wrong value yields one clear validation error.
const NullableLinkIn = Type.Unsafe<Static<typeof LinkIn> | null>({
  ...LinkIn,
  type: ['object', 'null'],
  description: 'A link, or null.',
});

const CustomReferencesIn = Type.Record(
  Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$' }),
  ReferenceValue,
  {
    additionalProperties: false,
    maxProperties: MAX_CUSTOM_REFERENCES,
    description:
      'Custom external references (name → value); replaces the stored set when present, keeps it when omitted. ' +
      'A value another object of the collection holds is a 409.',
  },
);

// Nullable body fields as one type list (not anyOf), so that a wrong value yields one clear validation error.
const orNull = <T extends TSchema>(schema: T, type: string, description?: string) =>
  Type.Unsafe<Static<T> | null>({ ...schema, type: [type, 'null'], ...(description ? { description } : {}) });
const TextIn = (description?: string) =>
  Type.Optional(orNull(Type.String({ minLength: 1, maxLength: MAX_TEXT_LENGTH }), 'string', description));
const DateIn = (description = 'A calendar date YYYY-MM-DD.') =>
  Type.Optional(orNull(Type.String({ format: 'date' }), 'string', description));
const AmountIn = Type.Optional(orNull(Type.Number({ minimum: 0 }), 'number', 'A number, 0 or more.'));
const EnumIn = (values: readonly string[]) =>
  Type.Optional(Type.Unsafe<string | null>({ type: ['string', 'null'], enum: [...values, null] }));
const IdLinkIn = Type.Optional(
  orNull(
    Type.Object({ id: Id }, { additionalProperties: false }),
    'object',
    'A link {"id": n}; not checked for existence (Timehook does not hold these objects).',
  ),
);

export const PersonIn = Type.Object(
  {
    id: Type.Optional(Id),
    periodClosingDate: DateIn(),
    hourlyRateCurrencyDefinition: IdLinkIn,
    advanceCurrencyDefinition: IdLinkIn,
    lastName: TextIn(),
    firstName: TextIn(),
    initials: TextIn(),
    telephone: TextIn(),
    mobile: TextIn(),
    email: TextIn('One @ with text on both sides and no white space.'),
    address: TextIn(),
    postalCode: TextIn(),
    town: TextIn(),
    countryISOCode: TextIn(),
    nationalityISOCode: TextIn(),
    sex: EnumIn(SEXES),
    maritalStatus: EnumIn(MARITAL_STATUSES),
    birthDate: DateIn(),
    placeOfBirth: TextIn(),
    drivingLicense: TextIn(),
    registerNumber: TextIn(),
    passportNumber: TextIn(),
    socialSecurityNumber: TextIn(),
    bankAccount: TextIn(),
    inServiceDate: DateIn(),
    outOfServiceDate: DateIn('A calendar date, not before inServiceDate; null: to infinity.'),
    wtdStartDate: DateIn(),
    employeeNumber: TextIn('Also the predefined reference @employee-number.'),
    payGroup: TextIn(),
    hourlyRate: AmountIn,
    maxAdvance: AmountIn,
    terminalGroup: IdLinkIn,
    badgeNumber: TextIn('Also the predefined reference @badge-number.'),
    pinCode: TextIn(),
    externalReferences: Type.Optional(CustomReferencesIn),
  },
  {
    additionalProperties: false,
    description: 'A person; every field but id optional (omitted or null = null).',
  },
);

const NameIn = (max: number) =>
  Type.Object(
    {
      default: Type.String({ minLength: 1, maxLength: max }),
      translations: Type.Optional(
        Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: max }), {
          description: 'language tag → name; omitted = {}.',
        }),
      ),
    },
    { additionalProperties: false },
  );
const NullableNameIn = (max: number, description: string) =>
  Type.Optional(orNull(NameIn(max), 'object', description));

const definitionInProperties = {
  id: Type.Optional(Id),
  name: NameIn(MAX_NAME_LENGTH),
  code: Text('Also the predefined reference @absence-code / @shift-code.'),
  friendlyName: NullableNameIn(MAX_NAME_LENGTH, 'Omitted or null = null.'),
  isEnabled: Type.Boolean(),
  externalReferences: Type.Optional(CustomReferencesIn),
};

export const AbsenceDefinitionIn = Type.Object(
  {
    ...definitionInProperties,
    friendlyCode: NullableNameIn(MAX_TEXT_LENGTH, 'Omitted or null = null.'),
    allowedDurations: Type.Optional(
      // Repeats are left to the domain, whose message names the repeated item.
      Type.Array(Type.Enum([...ALLOWED_DURATIONS]), {
        maxItems: ALLOWED_DURATIONS.length,
        description:
          'Each at most once; omitted = []. Returned in the order Unknown, FullDay, HalfDay, Interval, Duration.',
      }),
    ),
    isReasonForClocking: Type.Optional(Type.Boolean({ description: 'Omitted = false.' })),
    absenceGroup: IdLinkIn,
  },
  { additionalProperties: false },
);

export const ShiftDefinitionIn = Type.Object(definitionInProperties, { additionalProperties: false });

/** The body schema of each definition collection. */
export const DefinitionIn = {
  'absence-definitions': AbsenceDefinitionIn,
  'shift-definitions': ShiftDefinitionIn,
} as const;

const absenceInProperties = {
  person: LinkIn,
  resultingAbsenceDefinition: LinkIn,
  requestedAbsenceDefinition: Type.Optional(NullableLinkIn),
  shiftDefinition: Type.Optional(NullableLinkIn),
  date: Type.String({ format: 'date', description: 'A calendar date YYYY-MM-DD.' }),
  startTimeInMinutes: Minutes('Minutes since midnight, 0..1440.'),
  durationInMinutes: Minutes('0..1440.'),
  calculatedDurationInMinutes: Minutes('0..1440.'),
  dayPart: Type.Enum([...DAY_PARTS]),
  request: Type.Optional(
    Type.Unsafe<{ id: string } | null>({
      ...Type.Object(
        {
          id: Type.String({
            minLength: 1,
            maxLength: MAX_REQUEST_ID_LENGTH,
            description: '{TenantId}-{PersonId}-{RequestId}; PersonId must be the absence’s person id.',
          }),
        },
        { additionalProperties: false },
      ),
      type: ['object', 'null'],
    }),
  ),
  status: Type.Enum([...ABSENCE_STATUSES]),
  approvalLevel: Type.Enum([...APPROVAL_LEVELS]),
  isLocked: Type.Boolean(),
  periodType: Type.Enum([...PERIOD_TYPES]),
};

export const AbsenceIn = Type.Object(
  { id: Type.Optional(Id), ...absenceInProperties },
  {
    additionalProperties: false,
    description: 'An absence without changeVersion; the id comes from the path.',
  },
);

export const BatchIn = Type.Object(
  {
    upsert: Type.Optional(
      Type.Array(Type.Object({ id: Id, ...absenceInProperties }, { additionalProperties: false }), {
        maxItems: MAX_BATCH_ITEMS,
      }),
    ),
    delete: Type.Optional(Type.Array(Id, { maxItems: MAX_BATCH_ITEMS })),
  },
  {
    additionalProperties: false,
    description: `At most ${MAX_BATCH_ITEMS} items in upsert and delete together.`,
  },
);

// ------------------------------------------------------------------------------------------ query, params

const ExternalReferencesQuery = Type.String({
  description: '(collection,reference) groups with no separator, e.g. (people,@employee-number).',
});
const DeltaFlag = Type.Enum(['', 'true'], { description: 'Present (bare `&delta`): start a delta.' });
const ContinuationToken = Type.String({ description: 'From nextLink; opaque.' });

// Unknown query parameters are accepted and ignored, as upstream's framework does (README: Errors).
export const AbsenceListQuery = Type.Object(
  {
    filter: Type.Optional(
      Type.String({
        description:
          "Upstream's grammar on date (ge, le, eq; and) and person (eq, in; or), e.g. date ge '2026-01-01' and " +
          "date le '2026-03-31' and (person eq 1 or person in (2, 3)). date ge is required; at most 366 days.",
      }),
    ),
    externalReferences: Type.Optional(ExternalReferencesQuery),
    delta: Type.Optional(DeltaFlag),
    continuationToken: Type.Optional(ContinuationToken),
  },
  { additionalProperties: true },
);

export const ResourceListQuery = Type.Object(
  {
    filter: Type.Optional(
      Type.String({
        description:
          "People only: id, employeeNumber and badgeNumber (eq, in; or), joined by and, e.g. employeeNumber in ('E042', 'E043'). " +
          'Definitions take no filter (400), as upstream.',
      }),
    ),
    externalReferences: Type.Optional(ExternalReferencesQuery),
    delta: Type.Optional(DeltaFlag),
    continuationToken: Type.Optional(ContinuationToken),
  },
  { additionalProperties: true },
);

export const ItemQuery = Type.Object(
  { externalReferences: Type.Optional(ExternalReferencesQuery) },
  { additionalProperties: true },
);

export const DeltaQuery = Type.Object(
  { deltaToken: Type.Optional(Type.String({ description: 'From deltaLink; opaque.' })) },
  { additionalProperties: true },
);

export const ReadParams = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: MAX_TEXT_LENGTH,
    description:
      'The id, or an external reference value when the externalReferences query names one of this collection.',
  }),
});

export const WriteParams = Type.Object({
  id: Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'The positive integer id.' }),
});
