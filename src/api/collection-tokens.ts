// Continuation and delta tokens (SPEC §1.4): opaque and tamper-proof (HMAC under the installation key via
// SecretBox). A continuation token is bound to the tenant, collection, filter, external references and
// delta flag of the request that issued it; a delta token carries all of them plus the version it continues
// from and when it was issued (72 h to live).

import { createHash } from 'node:crypto';
import type { AbsenceFilter } from '../domain/absence-filter.ts';
import type { ReferenceSelection } from '../domain/external-references.ts';
import type { CollectionName } from '../domain/scopes.ts';
import { AppError } from '../errors.ts';
import type { SecretBox } from '../security/secret-box.ts';
import { CONNECTOR_PREFIX } from './context.ts';

export const DELTA_TOKEN_TTL_MS = 72 * 60 * 60 * 1000;

/** Where the next page starts: after this (date, id) for absences, after this id for the others. */
export type PageKey = [string, number] | number;

export interface ContinuationPayload {
  /** The binding of the request (see bindingOf). */
  b: string;
  /** The last key of the previous page. */
  k: PageKey;
  /** With &delta: the tenant's version when the initial load started. */
  v?: number;
}

export interface DeltaPayload {
  t: string;
  c: CollectionName;
  f: AbsenceFilter | null;
  r: ReferenceSelection | null;
  /** Changes after this version are the next ones to report. */
  v: number;
  /** Issued at, ms since the epoch. */
  i: number;
}

export interface RequestBinding {
  tenant: string;
  collection: CollectionName;
  filter: string;
  references: string;
  delta: boolean;
}

/** A short digest of everything a continuation token must only be replayed with. */
export function bindingOf(b: RequestBinding): string {
  return createHash('sha256')
    .update(JSON.stringify([b.tenant, b.collection, b.filter, b.references, b.delta]))
    .digest('base64url')
    .slice(0, 22);
}

const isPageKey = (k: unknown): k is PageKey =>
  (typeof k === 'number' && Number.isSafeInteger(k)) ||
  (Array.isArray(k) &&
    k.length === 2 &&
    typeof k[0] === 'string' &&
    /^\d{4}-\d{2}-\d{2}$/.test(k[0]) &&
    typeof k[1] === 'number' &&
    Number.isSafeInteger(k[1]));

export function signContinuation(box: SecretBox, payload: ContinuationPayload): string {
  return box.signToken('continuation', payload);
}

/** The payload of a continuation token issued for this very request, else 400 InvalidContinuationToken. */
export function openContinuation(box: SecretBox, token: string, binding: string): ContinuationPayload {
  const payload = box.openToken('continuation', token) as Partial<ContinuationPayload> | undefined;
  const invalid = (why: string) =>
    new AppError(
      'InvalidContinuationToken',
      `The continuationToken ${why}; follow nextLink exactly as given.`,
    );
  if (!payload || typeof payload !== 'object' || !isPageKey(payload.k)) throw invalid('is not valid');
  if (payload.b !== binding) {
    throw invalid(
      'was issued for another request (its collection, filter, externalReferences or delta differ)',
    );
  }
  if (payload.v !== undefined && !(typeof payload.v === 'number' && Number.isSafeInteger(payload.v))) {
    throw invalid('is not valid');
  }
  return payload as ContinuationPayload;
}

export function signDelta(box: SecretBox, payload: DeltaPayload): string {
  return box.signToken('delta', payload);
}

/**
 * The payload of a delta token of this tenant and collection: a forged, altered or foreign token is
 * 400 InvalidDeltaToken; one issued more than 72 h before `now` is 410 Gone.
 */
export function openDelta(
  box: SecretBox,
  token: string | undefined,
  tenant: string,
  collection: CollectionName,
  now: Date,
): DeltaPayload {
  if (token === undefined || token === '') {
    throw new AppError('InvalidDeltaToken', 'deltaToken is required; follow the deltaLink exactly as given.');
  }
  const payload = box.openToken('delta', token) as Partial<DeltaPayload> | undefined;
  const valid =
    payload !== undefined &&
    typeof payload === 'object' &&
    payload !== null &&
    typeof payload.t === 'string' &&
    typeof payload.c === 'string' &&
    typeof payload.v === 'number' &&
    Number.isSafeInteger(payload.v) &&
    typeof payload.i === 'number';
  if (!valid) {
    throw new AppError(
      'InvalidDeltaToken',
      'The deltaToken is not valid (altered, truncated or not issued by this service); start a new delta.',
    );
  }
  if (payload.t !== tenant || payload.c !== collection) {
    throw new AppError(
      'InvalidDeltaToken',
      `The deltaToken was not issued for ${collection} of this tenant; use the deltaLink of this collection.`,
    );
  }
  if (now.getTime() - (payload.i as number) > DELTA_TOKEN_TTL_MS) {
    throw new AppError(
      'Gone',
      `The deltaToken expired ${DELTA_TOKEN_TTL_MS / 3_600_000} h after it was issued; reload the collection with &delta to start again.`,
    );
  }
  return payload as DeltaPayload;
}

export function deltaLink(collection: CollectionName, token: string): string {
  return `${CONNECTOR_PREFIX}/delta/${collection}?deltaToken=${encodeURIComponent(token)}`;
}

/** A list link: same filter, externalReferences and delta as the request, plus the continuation token. */
export function nextLink(
  collection: CollectionName,
  query: { filter?: string | undefined; externalReferences?: string | undefined; delta: boolean },
  continuationToken: string,
): string {
  const parts: string[] = [];
  if (query.filter !== undefined) parts.push(`filter=${encodeURIComponent(query.filter)}`);
  if (query.externalReferences !== undefined)
    parts.push(`externalReferences=${encodeURIComponent(query.externalReferences)}`);
  if (query.delta) parts.push('delta');
  parts.push(`continuationToken=${encodeURIComponent(continuationToken)}`);
  return `${CONNECTOR_PREFIX}/${collection}?${parts.join('&')}`;
}
