// Fixtures for the collection tests: valid people, definitions and absences, and a seeded tenant.

import assert from 'node:assert/strict';
import type { AbsenceBody } from '../../src/domain/collections.ts';
import { newTenant, type Harness } from './harness.ts';

/** Upstream's person fields in upstream's order [PPL-L], after changeVersion and id: the tests' oracle. */
export const PERSON_FIELDS = [
  'periodClosingDate',
  'hourlyRateCurrencyDefinition',
  'advanceCurrencyDefinition',
  'lastName',
  'firstName',
  'initials',
  'telephone',
  'mobile',
  'email',
  'address',
  'postalCode',
  'town',
  'countryISOCode',
  'nationalityISOCode',
  'sex',
  'maritalStatus',
  'birthDate',
  'placeOfBirth',
  'drivingLicense',
  'registerNumber',
  'passportNumber',
  'socialSecurityNumber',
  'bankAccount',
  'inServiceDate',
  'outOfServiceDate',
  'wtdStartDate',
  'employeeNumber',
  'payGroup',
  'hourlyRate',
  'maxAdvance',
  'terminalGroup',
  'badgeNumber',
  'pinCode',
];

export const person = (id: number, over: Record<string, unknown> = {}) => ({
  firstName: 'Ada',
  lastName: `Person ${id}`,
  badgeNumber: null,
  employeeNumber: `E${id}`,
  ...over,
});

export const definition = (id: number, over: Record<string, unknown> = {}) => ({
  name: { default: `Definition ${id}`, translations: { nl: `Definitie ${id}` } },
  code: `C${id}`,
  isEnabled: true,
  ...over,
});

/** A valid absence of person 1 with definition 10 and shift 20 (see seed). */
export const absence = (over: Record<string, unknown> = {}) => ({
  person: { id: 1 },
  resultingAbsenceDefinition: { id: 10 },
  requestedAbsenceDefinition: { id: 10 },
  shiftDefinition: { id: 20 },
  date: '2026-03-02',
  startTimeInMinutes: 480,
  durationInMinutes: 240,
  calculatedDurationInMinutes: 240,
  dayPart: 'First',
  request: { id: 'acme-1-9001' },
  status: 'Manual',
  approvalLevel: 'Approved',
  isLocked: false,
  periodType: 'Day',
  ...over,
});

/** A stored-form absence of person 1 with definition 7, for the store tests, with `overrides`. */
export const absenceDraft = (overrides: Partial<AbsenceBody> & { id: number }): AbsenceBody => ({
  person: { id: 1 },
  resultingAbsenceDefinition: { id: 7 },
  requestedAbsenceDefinition: null,
  shiftDefinition: null,
  date: '2026-03-01',
  startTimeInMinutes: 0,
  durationInMinutes: 60,
  calculatedDurationInMinutes: 60,
  dayPart: 'Unknown',
  request: null,
  status: 'Manual',
  approvalLevel: 'Approved',
  isLocked: false,
  periodType: 'Day',
  ...overrides,
});

export async function put(h: Harness, token: string, path: string, body: unknown) {
  return h.request({ method: 'PUT', path, token, body });
}

/** PUTs and asserts success; returns the stored object. */
export async function putOk(h: Harness, token: string, path: string, body: unknown) {
  const res = await put(h, token, path, body);
  assert.ok(res.statusCode === 200 || res.statusCode === 201, `${path}: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** People 1 and 2 (E1, E2), absence definitions 10 and 11 (C10, C11), shift definition 20 (C20). */
export async function seed(h: Harness, token: string): Promise<void> {
  for (const id of [1, 2]) await putOk(h, token, `/people/${id}`, person(id));
  for (const id of [10, 11]) await putOk(h, token, `/absence-definitions/${id}`, definition(id));
  await putOk(h, token, '/shift-definitions/20', definition(20));
}

/** Follows nextLink to the end; returns every page. */
export async function allPages(h: Harness, token: string, path: string) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test pages hold arbitrary objects
  const pages: { value: any[]; nextLink?: string; deltaLink?: string }[] = [];
  let next: string | undefined = path;
  for (let i = 0; next !== undefined; i++) {
    assert.ok(i < 1000, 'too many pages');
    const res = await h.request({ method: 'GET', path: next, token });
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json();
    pages.push(page);
    next = page.nextLink;
  }
  return pages;
}

/** Follows a deltaLink once; returns the page. */
export async function followDelta(h: Harness, token: string, link: string) {
  const res = await h.request({ method: 'GET', path: link, token });
  assert.equal(res.statusCode, 200, res.body);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- data is any collection's object
  return res.json<{ value: { changeType: string; data: any }[]; deltaLink: string }>();
}

export const filterQuery = (filter: string) => `filter=${encodeURIComponent(filter)}`;

/** A token (every scope) of a new tenant, seeded as by seed. */
export async function seededToken(h: Harness): Promise<string> {
  const token = await h.token(newTenant());
  await seed(h, token);
  return token;
}
