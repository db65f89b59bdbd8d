// TypeBox schemas of the collections API (SPEC §1.4, §1.5): ingest bodies (structure only, unknown properties
// rejected; the domain adds the semantic checks), responses in the spec's key order (they drive the
// serializer and OpenAPI), query strings and the error bodies.

import { Type, type Static, type TSchema } from 'typebox';
import {
  ABSENCE_STATUSES,
  APPROVAL_LEVELS,
  DAY_PARTS,
  MAX_BATCH_ITEMS,
  MAX_CUSTOM_REFERENCES,
  MAX_ID,
  MAX_NAME_LENGTH,
  MAX_REQUEST_ID_LENGTH,
  MAX_TEXT_LENGTH,
  MINUTES_PER_DAY,
  PERIOD_TYPES,
} from '../domain/collections.ts';

// ------------------------------------------------------------------------------------------------ shared

const Id = Type.Integer({ minimum: 1, maximum: MAX_ID, description: 'A positive integer id.' });
const ChangeVersion = Type.String({
  pattern: '^[0-9A-F]{20}$',
  description: '20 upper-case hex digits; string order is change order.',
  examples: ['00000000000000000A3F'],
});
const Text = (description: string) => Type.String({ minLength: 1, maxLength: MAX_TEXT_LENGTH, description });
const NullableText = (description: string) =>
  Type.Union([Type.String({ minLength: 1, maxLength: MAX_TEXT_LENGTH }), Type.Null()], { description });
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

export const PersonOut = Type.Object(
  {
    changeVersion: ChangeVersion,
    id: Id,
    externalReferences: Type.Optional(ReferenceMapOut),
    displayName: Type.String(),
    badgeNumber: Type.Union([Type.String(), Type.Null()]),
    employeeNumber: Type.Union([Type.String(), Type.Null()]),
  },
  { description: 'A person.' },
);

const NameOut = Type.Object({
  default: Type.String(),
  translations: Type.Record(Type.String(), Type.String(), { description: 'language → name' }),
});

export const DefinitionOut = Type.Object(
  {
    changeVersion: ChangeVersion,
    id: Id,
    externalReferences: Type.Optional(ReferenceMapOut),
    name: NameOut,
    code: Type.String(),
    isEnabled: Type.Boolean(),
  },
  { description: 'An absence or shift definition.' },
);

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

export const PersonIn = Type.Object(
  {
    id: Type.Optional(Id),
    displayName: Text('Non-empty display name.'),
    badgeNumber: Type.Optional(NullableText('Also the predefined reference @badge-number.')),
    employeeNumber: Type.Optional(NullableText('Also the predefined reference @employee-number.')),
    externalReferences: Type.Optional(CustomReferencesIn),
  },
  { additionalProperties: false },
);

export const DefinitionIn = Type.Object(
  {
    id: Type.Optional(Id),
    name: Type.Object(
      {
        default: Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH }),
        translations: Type.Optional(
          Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH }), {
            description: 'language tag → name; omitted = {}.',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    code: Text('Also the predefined reference @absence-code / @shift-code.'),
    isEnabled: Type.Boolean(),
    externalReferences: Type.Optional(CustomReferencesIn),
  },
  { additionalProperties: false },
);

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

export const AbsenceListQuery = Type.Object(
  {
    filter: Type.Optional(
      Type.String({
        description:
          "date ge 'YYYY-MM-DD' [and date le 'YYYY-MM-DD'] [and person in (1,2)]; date ge is required, at most 366 days.",
      }),
    ),
    externalReferences: Type.Optional(ExternalReferencesQuery),
    delta: Type.Optional(DeltaFlag),
    continuationToken: Type.Optional(ContinuationToken),
  },
  { additionalProperties: false },
);

export const ResourceListQuery = Type.Object(
  {
    externalReferences: Type.Optional(ExternalReferencesQuery),
    delta: Type.Optional(DeltaFlag),
    continuationToken: Type.Optional(ContinuationToken),
  },
  { additionalProperties: false },
);

export const ItemQuery = Type.Object(
  { externalReferences: Type.Optional(ExternalReferencesQuery) },
  { additionalProperties: false },
);

export const DeltaQuery = Type.Object(
  { deltaToken: Type.Optional(Type.String({ description: 'From deltaLink; opaque.' })) },
  { additionalProperties: false },
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
