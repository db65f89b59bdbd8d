// The four collections of SPEC §1.4: their canonical objects (key order as the spec shows them, every field
// present, null for an absent optional link), the full validation of ingest input, and the predefined
// external references derived from fields. Pure; no I/O.

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

export type DayPart = (typeof DAY_PARTS)[number];
export type AbsenceStatus = (typeof ABSENCE_STATUSES)[number];
export type ApprovalLevel = (typeof APPROVAL_LEVELS)[number];
export type PeriodType = (typeof PERIOD_TYPES)[number];

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

export interface PersonBody {
  id: number;
  displayName: string;
  badgeNumber: string | null;
  employeeNumber: string | null;
}

export interface LocalizedName {
  default: string;
  translations: Record<string, string>;
}

export interface DefinitionBody {
  id: number;
  name: LocalizedName;
  code: string;
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

export type ResourceBody = PersonBody | DefinitionBody;
export type Versioned<T> = { changeVersion: string } & T;

const sortedMap = (map: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const idLink = (link: IdLink): IdLink => ({ id: link.id });
const optionalIdLink = (link: IdLink | null | undefined): IdLink | null => (link ? idLink(link) : null);

/** A person with its keys in spec order. */
export function canonicalPerson(p: PersonBody): PersonBody {
  return {
    id: p.id,
    displayName: p.displayName,
    badgeNumber: p.badgeNumber ?? null,
    employeeNumber: p.employeeNumber ?? null,
  };
}

/** An absence or shift definition with its keys in spec order (translations sorted by language). */
export function canonicalDefinition(d: DefinitionBody): DefinitionBody {
  return {
    id: d.id,
    name: { default: d.name.default, translations: sortedMap(d.name.translations ?? {}) },
    code: d.code,
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

export function canonicalResource(collection: ResourceCollection, body: ResourceBody): ResourceBody {
  return collection === 'people'
    ? canonicalPerson(body as PersonBody)
    : canonicalDefinition(body as DefinitionBody);
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

const PERSON_KEYS = new Set(['id', 'displayName', 'badgeNumber', 'employeeNumber', 'externalReferences']);
const DEFINITION_KEYS = new Set(['id', 'name', 'code', 'isEnabled', 'externalReferences']);
const NAME_KEYS = new Set(['default', 'translations']);
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

/**
 * Validates a person or definition PUT body. `pathId` is the id from the path (the body's id, when present,
 * must equal it). badgeNumber/employeeNumber may be omitted or null; translations may be omitted ({}).
 */
export function validateResource(
  collection: ResourceCollection,
  input: unknown,
  pathId: number,
): Validated<ResourceDraft> {
  const c = new Checker('');
  const obj = c.record(input, '');
  if (!obj) return done(c, undefined as never);
  const isPerson = collection === 'people';
  c.known(obj, '', isPerson ? PERSON_KEYS : DEFINITION_KEYS);
  const id = c.matchingId(obj, pathId) ?? pathId;
  const customReferences =
    obj.externalReferences === undefined
      ? undefined
      : c.customReferences(obj.externalReferences, 'externalReferences', collection);
  if (isPerson) {
    const body: PersonBody = {
      id,
      displayName: c.text(obj.displayName, 'displayName', MAX_TEXT_LENGTH) ?? '',
      badgeNumber: c.optionalText(obj.badgeNumber, 'badgeNumber', MAX_TEXT_LENGTH) ?? null,
      employeeNumber: c.optionalText(obj.employeeNumber, 'employeeNumber', MAX_TEXT_LENGTH) ?? null,
    };
    return done(c, { body, customReferences });
  }
  const name = c.record(obj.name, 'name');
  const translations: Record<string, string> = {};
  let defaultName = '';
  if (name) {
    c.known(name, 'name', NAME_KEYS);
    defaultName = c.text(name.default, 'name.default', MAX_NAME_LENGTH) ?? '';
    if (name.translations !== undefined) {
      const map = c.record(name.translations, 'name.translations');
      if (map) {
        const entries = Object.entries(map);
        if (entries.length > MAX_TRANSLATIONS)
          c.add('name.translations', `must hold at most ${MAX_TRANSLATIONS} languages`);
        for (const [language, text] of entries) {
          if (!LANGUAGE_TAG.test(language)) {
            c.add(`name.translations.${language}`, 'is not a language tag such as nl, fr or en-GB');
            continue;
          }
          const value = c.text(text, `name.translations.${language}`, MAX_NAME_LENGTH);
          if (value !== undefined) translations[language] = value;
        }
      }
    }
  }
  const body: DefinitionBody = canonicalDefinition({
    id,
    name: { default: defaultName, translations },
    code: c.text(obj.code, 'code', MAX_TEXT_LENGTH) ?? '',
    isEnabled: c.bool(obj.isEnabled, 'isEnabled') ?? false,
  });
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
