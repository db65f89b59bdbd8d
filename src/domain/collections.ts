// The four collections of SPEC §1.4: their canonical objects (key order as the spec shows them, every field
// present, null for an absent optional link or a person field not given), the full validation of ingest
// input, and the predefined external references derived from fields. Pure; no I/O.

import { formatChangeVersion } from './change-version.ts';
import { PREDEFINED_REFERENCES, referenceNameProblem } from './external-references.ts';
import type { CollectionName } from './scopes.ts';

export const DAY_PARTS = ['First', 'Second', 'Unknown'] as const;
export const ABSENCE_STATUSES = [
  'Unknown',
  'Manual',
  'Auto',
  'BeginOpen',
  'Open',
  'Terminal',
  'Calendar',
] as const;
export const APPROVAL_LEVELS = [
  'Unknown',
  'AwaitingApproval',
  'Approved',
  'NotApproved',
  'NotApprovedByPriorities',
  'NotApprovedByCalculations',
] as const;
export const PERIOD_TYPES = ['Unknown', 'Day', 'Week', 'PayPeriod'] as const;
export const SEXES = ['Unknown', 'Female', 'Male', 'Other'] as const;
export const MARITAL_STATUSES = [
  'Unknown',
  'Single',
  'Married',
  'Widow',
  'Widower',
  'Divorced',
  'LivingTogether',
] as const;
/** In this order in a canonical absence definition's allowedDurations. */
export const ALLOWED_DURATIONS = ['Unknown', 'FullDay', 'HalfDay', 'Interval', 'Duration'] as const;

export type DayPart = (typeof DAY_PARTS)[number];
export type AbsenceStatus = (typeof ABSENCE_STATUSES)[number];
export type ApprovalLevel = (typeof APPROVAL_LEVELS)[number];
export type PeriodType = (typeof PERIOD_TYPES)[number];
export type Sex = (typeof SEXES)[number];
export type MaritalStatus = (typeof MARITAL_STATUSES)[number];
export type AllowedDuration = (typeof ALLOWED_DURATIONS)[number];

/** The collections ingested as plain resources (people and definitions); absences have their own table. */
export const RESOURCE_COLLECTIONS = ['people', 'absence-definitions', 'shift-definitions'] as const;
export type ResourceCollection = (typeof RESOURCE_COLLECTIONS)[number];
export type DefinitionCollection = Exclude<ResourceCollection, 'people'>;

export const MINUTES_PER_DAY = 1440;
export const MAX_ID = Number.MAX_SAFE_INTEGER;
export const MAX_TEXT_LENGTH = 256;
export const MAX_NAME_LENGTH = 1000;
export const MAX_TRANSLATIONS = 64;
export const MAX_CUSTOM_REFERENCES = 32;
export const MAX_REQUEST_ID_LENGTH = 200;
export const LANGUAGE_TAG = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
/**
 * `{TenantId}-{PersonId}-{RequestId}`: TenantId is letters, digits, `.`, `_` or `-` starting with a letter or
 * digit; PersonId and RequestId are decimal integers (the last two `-` separated segments). PersonId must be
 * the absence's person (checked once links are resolved, see requestPersonProblem).
 */
export const REQUEST_ID = /^([A-Za-z0-9][A-Za-z0-9._-]*)-(\d{1,16})-(\d{1,19})$/;

// ---------------------------------------------------------------------------------------------------------
// Canonical objects (as stored, without changeVersion)

export interface IdLink {
  id: number;
}

/**
 * A person with upstream's fields in upstream's order ([PPL-L], as far as the docs show them); null where the
 * writer gave nothing. Dates are YYYY-MM-DD; the links point to objects Timehook does not hold.
 */
export interface PersonBody {
  id: number;
  periodClosingDate: string | null;
  hourlyRateCurrencyDefinition: IdLink | null;
  advanceCurrencyDefinition: IdLink | null;
  lastName: string | null;
  firstName: string | null;
  initials: string | null;
  telephone: string | null;
  mobile: string | null;
  email: string | null;
  address: string | null;
  postalCode: string | null;
  town: string | null;
  countryISOCode: string | null;
  nationalityISOCode: string | null;
  sex: Sex | null;
  maritalStatus: MaritalStatus | null;
  birthDate: string | null;
  placeOfBirth: string | null;
  drivingLicense: string | null;
  registerNumber: string | null;
  passportNumber: string | null;
  socialSecurityNumber: string | null;
  bankAccount: string | null;
  inServiceDate: string | null;
  /** null: in service to infinity. */
  outOfServiceDate: string | null;
  wtdStartDate: string | null;
  employeeNumber: string | null;
  payGroup: string | null;
  hourlyRate: number | null;
  maxAdvance: number | null;
  terminalGroup: IdLink | null;
  badgeNumber: string | null;
  pinCode: string | null;
}

export interface LocalizedName {
  default: string;
  translations: Record<string, string>;
}

/** An absence definition with upstream's fields in upstream's order [ADEF]. */
export interface AbsenceDefinitionBody {
  id: number;
  name: LocalizedName;
  code: string;
  friendlyName: LocalizedName | null;
  friendlyCode: LocalizedName | null;
  /** Each value at most once, in ALLOWED_DURATIONS order. */
  allowedDurations: AllowedDuration[];
  isEnabled: boolean;
  isReasonForClocking: boolean;
  absenceGroup: IdLink | null;
}

/** A shift definition with upstream's fields in upstream's order [SD]. */
export interface ShiftDefinitionBody {
  id: number;
  name: LocalizedName;
  code: string;
  friendlyName: LocalizedName | null;
  isEnabled: boolean;
}

export interface AbsenceBody {
  id: number;
  person: IdLink;
  resultingAbsenceDefinition: IdLink;
  requestedAbsenceDefinition: IdLink | null;
  shiftDefinition: IdLink | null;
  date: string;
  startTimeInMinutes: number;
  durationInMinutes: number;
  calculatedDurationInMinutes: number;
  dayPart: DayPart;
  request: { id: string } | null;
  status: AbsenceStatus;
  approvalLevel: ApprovalLevel;
  isLocked: boolean;
  periodType: PeriodType;
}

export type ResourceBody = PersonBody | AbsenceDefinitionBody | ShiftDefinitionBody;
export type Versioned<T> = { changeVersion: string } & T;

/**
 * What the canonical functions accept: the fields every stored version of the object had, and any of the
 * others (a body stored before a field existed lacks it, and reads as null or the field's default).
 */
export type PersonInput = Pick<PersonBody, 'id'> & Partial<PersonBody>;
type DefinitionCore = 'id' | 'name' | 'code' | 'isEnabled';
export type AbsenceDefinitionInput = Pick<AbsenceDefinitionBody, DefinitionCore> &
  Partial<AbsenceDefinitionBody>;
export type ShiftDefinitionInput = Pick<ShiftDefinitionBody, DefinitionCore> & Partial<ShiftDefinitionBody>;
export type ResourceInput = PersonInput | AbsenceDefinitionInput | ShiftDefinitionInput;

const sortedMap = (map: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const idLink = (link: IdLink): IdLink => ({ id: link.id });
const optionalIdLink = (link: IdLink | null | undefined): IdLink | null => (link ? idLink(link) : null);

const localizedName = (n: LocalizedName): LocalizedName => ({
  default: n.default,
  translations: sortedMap(n.translations ?? {}),
});
const optionalLocalizedName = (n: LocalizedName | null | undefined): LocalizedName | null =>
  n ? localizedName(n) : null;

/** A person with its keys in upstream order and null for each field not given (displayName, if stored, dropped). */
export function canonicalPerson(p: PersonInput): PersonBody {
  return {
    id: p.id,
    periodClosingDate: p.periodClosingDate ?? null,
    hourlyRateCurrencyDefinition: optionalIdLink(p.hourlyRateCurrencyDefinition),
    advanceCurrencyDefinition: optionalIdLink(p.advanceCurrencyDefinition),
    lastName: p.lastName ?? null,
    firstName: p.firstName ?? null,
    initials: p.initials ?? null,
    telephone: p.telephone ?? null,
    mobile: p.mobile ?? null,
    email: p.email ?? null,
    address: p.address ?? null,
    postalCode: p.postalCode ?? null,
    town: p.town ?? null,
    countryISOCode: p.countryISOCode ?? null,
    nationalityISOCode: p.nationalityISOCode ?? null,
    sex: p.sex ?? null,
    maritalStatus: p.maritalStatus ?? null,
    birthDate: p.birthDate ?? null,
    placeOfBirth: p.placeOfBirth ?? null,
    drivingLicense: p.drivingLicense ?? null,
    registerNumber: p.registerNumber ?? null,
    passportNumber: p.passportNumber ?? null,
    socialSecurityNumber: p.socialSecurityNumber ?? null,
    bankAccount: p.bankAccount ?? null,
    inServiceDate: p.inServiceDate ?? null,
    outOfServiceDate: p.outOfServiceDate ?? null,
    wtdStartDate: p.wtdStartDate ?? null,
    employeeNumber: p.employeeNumber ?? null,
    payGroup: p.payGroup ?? null,
    hourlyRate: p.hourlyRate ?? null,
    maxAdvance: p.maxAdvance ?? null,
    terminalGroup: optionalIdLink(p.terminalGroup),
    badgeNumber: p.badgeNumber ?? null,
    pinCode: p.pinCode ?? null,
  };
}

/**
 * An absence definition with its keys in upstream order, translations sorted by language, allowedDurations
 * in ALLOWED_DURATIONS order (so the same set compares equal) and the defaults for fields not given.
 */
export function canonicalAbsenceDefinition(d: AbsenceDefinitionInput): AbsenceDefinitionBody {
  const durations = d.allowedDurations ?? [];
  return {
    id: d.id,
    name: localizedName(d.name),
    code: d.code,
    friendlyName: optionalLocalizedName(d.friendlyName),
    friendlyCode: optionalLocalizedName(d.friendlyCode),
    allowedDurations: ALLOWED_DURATIONS.filter((value) => durations.includes(value)),
    isEnabled: d.isEnabled,
    isReasonForClocking: d.isReasonForClocking ?? false,
    absenceGroup: optionalIdLink(d.absenceGroup),
  };
}

/** A shift definition with its keys in upstream order and translations sorted by language. */
export function canonicalShiftDefinition(d: ShiftDefinitionInput): ShiftDefinitionBody {
  return {
    id: d.id,
    name: localizedName(d.name),
    code: d.code,
    friendlyName: optionalLocalizedName(d.friendlyName),
    isEnabled: d.isEnabled,
  };
}

/** An absence with its keys in spec order and null for each absent optional link. */
export function canonicalAbsence(a: AbsenceBody): AbsenceBody {
  return {
    id: a.id,
    person: idLink(a.person),
    resultingAbsenceDefinition: idLink(a.resultingAbsenceDefinition),
    requestedAbsenceDefinition: optionalIdLink(a.requestedAbsenceDefinition),
    shiftDefinition: optionalIdLink(a.shiftDefinition),
    date: a.date,
    startTimeInMinutes: a.startTimeInMinutes,
    durationInMinutes: a.durationInMinutes,
    calculatedDurationInMinutes: a.calculatedDurationInMinutes,
    dayPart: a.dayPart,
    request: a.request ? { id: a.request.id } : null,
    status: a.status,
    approvalLevel: a.approvalLevel,
    isLocked: a.isLocked,
    periodType: a.periodType,
  };
}

export function canonicalResource(collection: ResourceCollection, body: ResourceInput): ResourceBody {
  switch (collection) {
    case 'people':
      return canonicalPerson(body);
    case 'absence-definitions':
      return canonicalAbsenceDefinition(body as AbsenceDefinitionInput);
    case 'shift-definitions':
      return canonicalShiftDefinition(body as ShiftDefinitionInput);
  }
}

/** The object as the API shows it: changeVersion first, then the canonical body. */
export function withChangeVersion<T extends object>(version: number, body: T): Versioned<T> {
  return { changeVersion: formatChangeVersion(version), ...body };
}

/** True when two canonical objects are the same (a PUT of the stored object records no change). */
export function sameObject(a: object, b: object): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The predefined references of a person or definition, derived from its fields (null/empty values skipped). */
export function predefinedReferencesOf(
  collection: ResourceCollection,
  body: ResourceBody,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, field] of Object.entries(PREDEFINED_REFERENCES[collection] ?? {})) {
    const value = (body as unknown as Record<string, unknown>)[field];
    if (typeof value === 'string' && value !== '') out[name] = value;
  }
  return out;
}

/** The collection an absence link points into. */
export const ABSENCE_LINKS = {
  person: 'people',
  resultingAbsenceDefinition: 'absence-definitions',
  requestedAbsenceDefinition: 'absence-definitions',
  shiftDefinition: 'shift-definitions',
} as const satisfies Record<string, ResourceCollection>;
export type AbsenceLinkName = keyof typeof ABSENCE_LINKS;
export const ABSENCE_LINK_NAMES = Object.keys(ABSENCE_LINKS) as AbsenceLinkName[];
/** person and resultingAbsenceDefinition are required; the other two links may be null. */
export const REQUIRED_ABSENCE_LINKS: readonly AbsenceLinkName[] = ['person', 'resultingAbsenceDefinition'];

// ---------------------------------------------------------------------------------------------------------
// Validation of ingest input

export interface FieldIssue {
  property: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; issues: FieldIssue[] };

/** A link as written: by id, or by exactly one external reference of the linked collection. */
export type LinkDraft = { id: number } | { reference: { name: string; value: string } };

/** An absence whose links are not resolved yet (see the store's link resolution). */
export type AbsenceDraft = Omit<
  AbsenceBody,
  'person' | 'resultingAbsenceDefinition' | 'requestedAbsenceDefinition' | 'shiftDefinition'
> & {
  person: LinkDraft;
  resultingAbsenceDefinition: LinkDraft;
  requestedAbsenceDefinition: LinkDraft | null;
  shiftDefinition: LinkDraft | null;
};

/** A person or definition and the custom references to set (undefined: keep the stored ones). */
export interface ResourceDraft {
  body: ResourceBody;
  customReferences: Record<string, string> | undefined;
}

export const isPositiveId = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;

const DATE_SHAPE = /^\d{4}-\d{2}-\d{2}$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const digitAt = (text: string, i: number): number => text.charCodeAt(i) - 48;

/** True for `YYYY-MM-DD` naming a day that exists in the proleptic Gregorian calendar (year 0001–9999). */
export function isCalendarDate(value: unknown): boolean {
  if (typeof value !== 'string' || !DATE_SHAPE.test(value)) return false;
  // Digits read in place: this runs for every absence of a batch.
  const y = digitAt(value, 0) * 1000 + digitAt(value, 1) * 100 + digitAt(value, 2) * 10 + digitAt(value, 3);
  const m = digitAt(value, 5) * 10 + digitAt(value, 6);
  const d = digitAt(value, 8) * 10 + digitAt(value, 9);
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= (m === 2 && leap ? 29 : DAYS_IN_MONTH[m - 1]!);
}

const LINK_KEYS = new Set(['id', 'externalReferences']);
const ID_LINK_KEYS = new Set(['id']);
const NAME_KEYS = new Set(['default', 'translations']);
/** A light sanity check, not RFC 5322: one @ with text on both sides and no white space. */
const EMAIL = /^[^\s@]+@[^\s@]+$/;

class Checker {
  readonly issues: FieldIssue[] = [];
  constructor(private readonly prefix: string) {}

  at(property: string): string {
    return this.prefix ? (property ? `${this.prefix}.${property}` : this.prefix) : property;
  }

  add(property: string, message: string): void {
    this.issues.push({ property: this.at(property), message });
  }

  record(value: unknown, property: string): Record<string, unknown> | undefined {
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
    this.add(property, 'must be an object');
    return undefined;
  }

  known(obj: Record<string, unknown>, property: string, allowed: ReadonlySet<string>): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.has(key)) this.add(property ? `${property}.${key}` : key, 'is not a known property');
    }
  }

  id(value: unknown, property: string): number | undefined {
    if (value === undefined) {
      this.add(property, 'is required');
      return undefined;
    }
    if (isPositiveId(value)) return value;
    this.add(property, `must be a whole number from 1 to ${MAX_ID}`);
    return undefined;
  }

  text(value: unknown, property: string, max: number): string | undefined {
    if (value === undefined) {
      this.add(property, 'is required');
      return undefined;
    }
    if (typeof value !== 'string') {
      this.add(property, 'must be a string');
      return undefined;
    }
    if (value.trim() === '') {
      this.add(property, 'must not be empty');
      return undefined;
    }
    if (value.length > max) {
      this.add(property, `must be at most ${max} characters`);
      return undefined;
    }
    return value;
  }

  optionalText(value: unknown, property: string, max: number): string | null | undefined {
    if (value === undefined || value === null) return null;
    return this.text(value, property, max);
  }

  bool(value: unknown, property: string): boolean | undefined {
    if (typeof value === 'boolean') return value;
    this.add(property, value === undefined ? 'is required' : 'must be true or false');
    return undefined;
  }

  minutes(value: unknown, property: string): number | undefined {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MINUTES_PER_DAY)
      return value;
    this.add(
      property,
      value === undefined ? 'is required' : `must be a whole number of minutes from 0 to ${MINUTES_PER_DAY}`,
    );
    return undefined;
  }

  oneOf<T extends string>(value: unknown, property: string, allowed: readonly T[]): T | undefined {
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    this.add(property, value === undefined ? 'is required' : `must be one of ${allowed.join(', ')}`);
    return undefined;
  }

  optionalOneOf<T extends string>(
    value: unknown,
    property: string,
    allowed: readonly T[],
  ): T | null | undefined {
    if (value === undefined || value === null) return null;
    return this.oneOf(value, property, allowed);
  }

  optionalDate(value: unknown, property: string): string | null | undefined {
    if (value === undefined || value === null) return null;
    if (isCalendarDate(value)) return value as string;
    this.add(property, 'must be a calendar date YYYY-MM-DD');
    return undefined;
  }

  /** A money amount or limit: a finite number, 0 or more. */
  optionalAmount(value: unknown, property: string): number | null | undefined {
    if (value === undefined || value === null) return null;
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
    this.add(property, 'must be a number of at least 0');
    return undefined;
  }

  /** A plain `{"id": n}` link to an object Timehook does not hold (never checked for existence), or null. */
  optionalIdLink(value: unknown, property: string): IdLink | null | undefined {
    if (value === undefined || value === null) return null;
    const obj = this.record(value, property);
    if (!obj) return undefined;
    this.known(obj, property, ID_LINK_KEYS);
    const id = this.id(obj.id, `${property}.id`);
    return id === undefined ? undefined : { id };
  }

  /** `{default, translations?}`: default required, translations keyed by language tag (omitted = {}). */
  localizedName(value: unknown, property: string, max: number): LocalizedName | undefined {
    if (value === undefined) {
      this.add(property, 'is required');
      return undefined;
    }
    const name = this.record(value, property);
    if (!name) return undefined;
    this.known(name, property, NAME_KEYS);
    const defaultName = this.text(name.default, `${property}.default`, max);
    const translations: Record<string, string> = {};
    if (name.translations !== undefined) {
      const map = this.record(name.translations, `${property}.translations`);
      if (map) {
        const entries = Object.entries(map);
        if (entries.length > MAX_TRANSLATIONS)
          this.add(`${property}.translations`, `must hold at most ${MAX_TRANSLATIONS} languages`);
        for (const [language, text] of entries) {
          if (!LANGUAGE_TAG.test(language)) {
            this.add(`${property}.translations.${language}`, 'is not a language tag such as nl, fr or en-GB');
            continue;
          }
          const translation = this.text(text, `${property}.translations.${language}`, max);
          if (translation !== undefined) translations[language] = translation;
        }
      }
    }
    return defaultName === undefined ? undefined : { default: defaultName, translations };
  }

  optionalLocalizedName(value: unknown, property: string, max: number): LocalizedName | null | undefined {
    if (value === undefined || value === null) return null;
    return this.localizedName(value, property, max);
  }

  /** allowedDurations: an array of distinct ALLOWED_DURATIONS values; omitted = []. */
  durations(value: unknown, property: string): AllowedDuration[] | undefined {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.add(property, `must be an array of ${ALLOWED_DURATIONS.join(', ')}`);
      return undefined;
    }
    const seen = new Set<AllowedDuration>();
    value.forEach((item, i) => {
      const duration = this.oneOf(item, `${property}.${i}`, ALLOWED_DURATIONS);
      if (duration === undefined) return;
      if (seen.has(duration)) this.add(`${property}.${i}`, `repeats ${duration}; name each duration once`);
      seen.add(duration);
    });
    return [...seen];
  }

  /** Custom references of a person or definition: names of the custom form, non-empty string values. */
  customReferences(
    value: unknown,
    property: string,
    collection: ResourceCollection,
  ): Record<string, string> | undefined {
    const map = this.record(value, property);
    if (!map) return undefined;
    const entries = Object.entries(map);
    if (entries.length > MAX_CUSTOM_REFERENCES) {
      this.add(property, `must hold at most ${MAX_CUSTOM_REFERENCES} references`);
      return undefined;
    }
    const out: Record<string, string> = {};
    for (const [name, v] of entries) {
      if (name.startsWith('@')) {
        this.add(
          `${property}.${name}`,
          'is a predefined reference; it is derived from the object’s fields and cannot be set',
        );
        continue;
      }
      const problem = referenceNameProblem(collection, name);
      if (problem) {
        this.add(`${property}.${name}`, problem);
        continue;
      }
      const text = this.text(v, `${property}.${name}`, MAX_TEXT_LENGTH);
      if (text !== undefined) out[name] = text;
    }
    return sortedMap(out);
  }

  link(value: unknown, property: string, collection: ResourceCollection, nullable: boolean) {
    if (value === undefined || value === null) {
      if (nullable) return null;
      this.add(property, 'is required');
      return undefined;
    }
    const obj = this.record(value, property);
    if (!obj) return undefined;
    this.known(obj, property, LINK_KEYS);
    const hasId = obj.id !== undefined;
    const hasRefs = obj.externalReferences !== undefined;
    if (hasId === hasRefs) {
      this.add(property, 'must have either an id or externalReferences with exactly one reference');
      return undefined;
    }
    if (hasId) {
      const id = this.id(obj.id, `${property}.id`);
      return id === undefined ? undefined : { id };
    }
    const refs = this.record(obj.externalReferences, `${property}.externalReferences`);
    if (!refs) return undefined;
    const entries = Object.entries(refs);
    if (entries.length !== 1) {
      this.add(`${property}.externalReferences`, 'must name exactly one reference');
      return undefined;
    }
    const [name, raw] = entries[0]!;
    const problem = referenceNameProblem(collection, name);
    if (problem) {
      this.add(`${property}.externalReferences.${name}`, problem);
      return undefined;
    }
    const refValue = this.text(raw, `${property}.externalReferences.${name}`, MAX_TEXT_LENGTH);
    return refValue === undefined ? undefined : { reference: { name, value: refValue } };
  }

  /** The body's id, if any, must equal the path's id. */
  matchingId(obj: Record<string, unknown>, pathId: number | undefined): number | undefined {
    if (pathId === undefined) return this.id(obj.id, 'id');
    if (obj.id === undefined) return pathId;
    const id = this.id(obj.id, 'id');
    if (id !== undefined && id !== pathId) {
      this.add('id', `must equal the id in the path (${pathId})`);
      return undefined;
    }
    return id;
  }
}

const done = <T>(c: Checker, value: T): Validated<T> =>
  c.issues.length > 0 ? { ok: false, issues: c.issues } : { ok: true, value };

const REQUEST_KEYS = new Set(['id']);
const BATCH_KEYS = new Set(['upsert', 'delete']);
const ABSENCE_KEYS = new Set([
  'id',
  'person',
  'resultingAbsenceDefinition',
  'requestedAbsenceDefinition',
  'shiftDefinition',
  'date',
  'startTimeInMinutes',
  'durationInMinutes',
  'calculatedDurationInMinutes',
  'dayPart',
  'request',
  'status',
  'approvalLevel',
  'isLocked',
  'periodType',
]);

// The known keys of each body: the canonical object's (derived, so the two cannot drift apart) and the custom
// references.
const EMPTY_NAME: LocalizedName = { default: '', translations: {} };
const EMPTY_DEFINITION = { id: 1, name: EMPTY_NAME, code: '', isEnabled: false };
const RESOURCE_KEYS: Record<ResourceCollection, ReadonlySet<string>> = {
  people: new Set([...Object.keys(canonicalPerson({ id: 1 })), 'externalReferences']),
  'absence-definitions': new Set([
    ...Object.keys(canonicalAbsenceDefinition(EMPTY_DEFINITION)),
    'externalReferences',
  ]),
  'shift-definitions': new Set([
    ...Object.keys(canonicalShiftDefinition(EMPTY_DEFINITION)),
    'externalReferences',
  ]),
};

type PersonTextField = {
  [K in keyof PersonBody]: PersonBody[K] extends string | null ? K : never;
}[keyof PersonBody];

/** Every field but id is optional; omitted or null → null. */
function checkPerson(c: Checker, obj: Record<string, unknown>, id: number): PersonBody {
  const text = (field: PersonTextField) => c.optionalText(obj[field], field, MAX_TEXT_LENGTH) ?? null;
  const date = (field: PersonTextField) => c.optionalDate(obj[field], field) ?? null;
  const link = (field: keyof PersonBody) => c.optionalIdLink(obj[field], field) ?? null;
  const amount = (field: keyof PersonBody) => c.optionalAmount(obj[field], field) ?? null;
  const person: PersonBody = {
    id,
    periodClosingDate: date('periodClosingDate'),
    hourlyRateCurrencyDefinition: link('hourlyRateCurrencyDefinition'),
    advanceCurrencyDefinition: link('advanceCurrencyDefinition'),
    lastName: text('lastName'),
    firstName: text('firstName'),
    initials: text('initials'),
    telephone: text('telephone'),
    mobile: text('mobile'),
    email: text('email'),
    address: text('address'),
    postalCode: text('postalCode'),
    town: text('town'),
    countryISOCode: text('countryISOCode'),
    nationalityISOCode: text('nationalityISOCode'),
    sex: c.optionalOneOf(obj.sex, 'sex', SEXES) ?? null,
    maritalStatus: c.optionalOneOf(obj.maritalStatus, 'maritalStatus', MARITAL_STATUSES) ?? null,
    birthDate: date('birthDate'),
    placeOfBirth: text('placeOfBirth'),
    drivingLicense: text('drivingLicense'),
    registerNumber: text('registerNumber'),
    passportNumber: text('passportNumber'),
    socialSecurityNumber: text('socialSecurityNumber'),
    bankAccount: text('bankAccount'),
    inServiceDate: date('inServiceDate'),
    outOfServiceDate: date('outOfServiceDate'),
    wtdStartDate: date('wtdStartDate'),
    employeeNumber: text('employeeNumber'),
    payGroup: text('payGroup'),
    hourlyRate: amount('hourlyRate'),
    maxAdvance: amount('maxAdvance'),
    terminalGroup: link('terminalGroup'),
    badgeNumber: text('badgeNumber'),
    pinCode: text('pinCode'),
  };
  if (person.email !== null && !EMAIL.test(person.email))
    c.add('email', 'must be an e-mail address such as ada@example.com');
  const { inServiceDate: from, outOfServiceDate: to } = person;
  if (from !== null && to !== null && to < from)
    c.add('outOfServiceDate', `must not be before inServiceDate (${from})`);
  return person;
}

/**
 * name, code and isEnabled are required; friendlyName (and friendlyCode) may be omitted or null; the absence
 * definition's allowedDurations defaults to [], isReasonForClocking to false, absenceGroup to null.
 */
function checkDefinition(
  c: Checker,
  obj: Record<string, unknown>,
  id: number,
  collection: DefinitionCollection,
): AbsenceDefinitionBody | ShiftDefinitionBody {
  const common: ShiftDefinitionBody = {
    id,
    name: c.localizedName(obj.name, 'name', MAX_NAME_LENGTH) ?? EMPTY_NAME,
    code: c.text(obj.code, 'code', MAX_TEXT_LENGTH) ?? '',
    friendlyName: c.optionalLocalizedName(obj.friendlyName, 'friendlyName', MAX_NAME_LENGTH) ?? null,
    isEnabled: c.bool(obj.isEnabled, 'isEnabled') ?? false,
  };
  if (collection === 'shift-definitions') return canonicalShiftDefinition(common);
  return canonicalAbsenceDefinition({
    ...common,
    friendlyCode: c.optionalLocalizedName(obj.friendlyCode, 'friendlyCode', MAX_TEXT_LENGTH) ?? null,
    allowedDurations: c.durations(obj.allowedDurations, 'allowedDurations') ?? [],
    isReasonForClocking:
      obj.isReasonForClocking === undefined
        ? false
        : (c.bool(obj.isReasonForClocking, 'isReasonForClocking') ?? false),
    absenceGroup: c.optionalIdLink(obj.absenceGroup, 'absenceGroup') ?? null,
  });
}

/**
 * Validates a person or definition PUT body (upstream's shapes, SPEC §1.4). `pathId` is the id from the path
 * (the body's id, when present, must equal it). Unknown properties, changeVersion among them, are rejected.
 */
export function validateResource(
  collection: ResourceCollection,
  input: unknown,
  pathId: number,
): Validated<ResourceDraft> {
  const c = new Checker('');
  const obj = c.record(input, '');
  if (!obj) return done(c, undefined as never);
  c.known(obj, '', RESOURCE_KEYS[collection]);
  const id = c.matchingId(obj, pathId) ?? pathId;
  const customReferences =
    obj.externalReferences === undefined
      ? undefined
      : c.customReferences(obj.externalReferences, 'externalReferences', collection);
  const body = collection === 'people' ? checkPerson(c, obj, id) : checkDefinition(c, obj, id, collection);
  return done(c, { body, customReferences });
}

/**
 * Validates an absence. `pathId` is the path's id for a PUT (the body's id, when present, must equal it);
 * undefined in a batch, where the body's id is required. `prefix` names the item in issues ("upsert.3").
 * person and resultingAbsenceDefinition are required; requestedAbsenceDefinition, shiftDefinition and
 * request may be null or omitted (= null).
 */
export function validateAbsence(
  input: unknown,
  pathId: number | undefined,
  prefix = '',
): Validated<AbsenceDraft> {
  const c = new Checker(prefix);
  const obj = c.record(input, '');
  if (!obj) return done(c, undefined as never);
  c.known(obj, '', ABSENCE_KEYS);
  const id = c.matchingId(obj, pathId) ?? 0;
  const links = {} as Record<AbsenceLinkName, LinkDraft | null>;
  for (const name of ABSENCE_LINK_NAMES) {
    const link = c.link(obj[name], name, ABSENCE_LINKS[name], !REQUIRED_ABSENCE_LINKS.includes(name));
    links[name] = link ?? null;
  }
  if (!isCalendarDate(obj.date)) {
    c.add('date', obj.date === undefined ? 'is required' : 'must be a calendar date YYYY-MM-DD');
  }
  let request: { id: string } | null = null;
  if (obj.request !== undefined && obj.request !== null) {
    const r = c.record(obj.request, 'request');
    if (r) {
      c.known(r, 'request', REQUEST_KEYS);
      const requestId = c.text(r.id, 'request.id', MAX_REQUEST_ID_LENGTH);
      if (requestId !== undefined) {
        if (REQUEST_ID.test(requestId)) request = { id: requestId };
        else c.add('request.id', 'must have the form {TenantId}-{PersonId}-{RequestId}, e.g. acme-42-9001');
      }
    }
  }
  const draft: AbsenceDraft = {
    id,
    person: links.person!,
    resultingAbsenceDefinition: links.resultingAbsenceDefinition!,
    requestedAbsenceDefinition: links.requestedAbsenceDefinition,
    shiftDefinition: links.shiftDefinition,
    date: obj.date as string,
    startTimeInMinutes: c.minutes(obj.startTimeInMinutes, 'startTimeInMinutes') ?? 0,
    durationInMinutes: c.minutes(obj.durationInMinutes, 'durationInMinutes') ?? 0,
    calculatedDurationInMinutes:
      c.minutes(obj.calculatedDurationInMinutes, 'calculatedDurationInMinutes') ?? 0,
    dayPart: c.oneOf(obj.dayPart, 'dayPart', DAY_PARTS) ?? 'Unknown',
    request,
    status: c.oneOf(obj.status, 'status', ABSENCE_STATUSES) ?? 'Unknown',
    approvalLevel: c.oneOf(obj.approvalLevel, 'approvalLevel', APPROVAL_LEVELS) ?? 'Unknown',
    isLocked: c.bool(obj.isLocked, 'isLocked') ?? false,
    periodType: c.oneOf(obj.periodType, 'periodType', PERIOD_TYPES) ?? 'Unknown',
  };
  return done(c, draft);
}

/** After links are resolved: the PersonId inside request.id must be the absence's person. */
export function requestPersonProblem(absence: AbsenceBody): string | undefined {
  if (!absence.request) return undefined;
  const match = REQUEST_ID.exec(absence.request.id);
  if (match && Number(match[2]) === absence.person.id) return undefined;
  return `request.id ${JSON.stringify(absence.request.id)} must carry the absence's person id (${absence.person.id}) as its PersonId: {TenantId}-${absence.person.id}-{RequestId}.`;
}

/** The absence with its links replaced by resolved ids. */
export function resolveAbsence(
  draft: AbsenceDraft,
  ids: Record<AbsenceLinkName, number | null>,
): AbsenceBody {
  return canonicalAbsence({
    ...draft,
    person: { id: ids.person! },
    resultingAbsenceDefinition: { id: ids.resultingAbsenceDefinition! },
    requestedAbsenceDefinition:
      ids.requestedAbsenceDefinition === null ? null : { id: ids.requestedAbsenceDefinition },
    shiftDefinition: ids.shiftDefinition === null ? null : { id: ids.shiftDefinition },
  });
}

export const isResourceCollection = (c: CollectionName): c is ResourceCollection => c !== 'absences';

export const MAX_BATCH_ITEMS = 10_000;

export interface AbsenceBatchDraft {
  upserts: AbsenceDraft[];
  deletes: number[];
}

/**
 * Validates a POST /absences/batch body `{"upsert":[Absence…],"delete":[id…]}`: both lists optional, at most
 * MAX_BATCH_ITEMS items together, every upsert a full absence with its id, and no id twice in the batch.
 */
export function validateAbsenceBatch(input: unknown): Validated<AbsenceBatchDraft> {
  const c = new Checker('');
  const obj = c.record(input, '');
  if (!obj) return done(c, undefined as never);
  c.known(obj, '', BATCH_KEYS);
  const list = (name: string): unknown[] => {
    const value = obj[name];
    if (value === undefined) return [];
    if (Array.isArray(value)) return value;
    c.add(name, 'must be an array');
    return [];
  };
  const upsertInput = list('upsert');
  const deleteInput = list('delete');
  if (upsertInput.length + deleteInput.length > MAX_BATCH_ITEMS) {
    c.add(
      '',
      `holds ${upsertInput.length + deleteInput.length} items; a batch holds at most ${MAX_BATCH_ITEMS}`,
    );
    return done(c, undefined as never);
  }
  const firstSeen = new Map<number, string>();
  const claim = (id: number, property: string) => {
    const earlier = firstSeen.get(id);
    if (earlier !== undefined)
      c.add(property, `repeats id ${id} of ${earlier}; name each absence once per batch`);
    else firstSeen.set(id, property.replace(/\.id$/, ''));
  };
  const upserts: AbsenceDraft[] = [];
  upsertInput.forEach((item, i) => {
    const result = validateAbsence(item, undefined, `upsert.${i}`);
    if (!result.ok) c.issues.push(...result.issues);
    else {
      claim(result.value.id, `upsert.${i}.id`);
      upserts.push(result.value);
    }
  });
  const deletes: number[] = [];
  deleteInput.forEach((item, i) => {
    if (!isPositiveId(item)) c.add(`delete.${i}`, `must be a whole number from 1 to ${MAX_ID}`);
    else {
      claim(item, `delete.${i}`);
      deletes.push(item);
    }
  });
  return done(c, { upserts, deletes });
}
