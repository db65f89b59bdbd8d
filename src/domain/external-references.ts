// The external-reference query syntax of SPEC §1.5: `(collection,reference)` groups, concatenated with no
// separator, e.g. `(people,@employee-number)(absence-definitions,@absence-code)`. Pure; never throws.

import type { CollectionName } from './scopes.ts';

/** Predefined references: name → the field of the object that holds the value. */
export const PREDEFINED_REFERENCES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  people: { '@badge-number': 'badgeNumber', '@employee-number': 'employeeNumber' },
  'absence-definitions': { '@absence-code': 'code' },
  'shift-definitions': { '@shift-code': 'code' },
};

export const CUSTOM_REFERENCE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** Which collections' references a request on `owner` may ask for. */
export const REFERENCEABLE: Readonly<Record<CollectionName, readonly string[]>> = {
  absences: ['people', 'shift-definitions', 'absence-definitions'],
  people: ['people'],
  'absence-definitions': ['absence-definitions'],
  'shift-definitions': ['shift-definitions'],
};

/** collection → reference names, e.g. { people: ['@employee-number'] }; keys and names in request order. */
export type ReferenceSelection = Record<string, string[]>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const MAX_GROUPS = 32;

/** Checks one reference name for a collection; returns the problem as a sentence, or undefined when valid. */
export function referenceNameProblem(collection: string, name: string): string | undefined {
  if (name.startsWith('@')) {
    const known = Object.keys(PREDEFINED_REFERENCES[collection] ?? {});
    return known.includes(name)
      ? undefined
      : `${name} is not a predefined reference of ${collection}; predefined: ${known.join(', ') || 'none'}.`;
  }
  return CUSTOM_REFERENCE_NAME.test(name)
    ? undefined
    : `${JSON.stringify(name)} is not a valid custom reference name: use a letter followed by up to 63 letters, digits, _ or -.`;
}

export function parseExternalReferences(
  text: string,
  owner: CollectionName,
): ParseResult<ReferenceSelection> {
  const allowed = REFERENCEABLE[owner];
  const selection: ReferenceSelection = {};
  const group = /\(\s*([^,()\s]*)\s*,\s*([^,()\s]*)\s*\)/y;
  let position = 0;
  let groups = 0;
  while (position < text.length) {
    group.lastIndex = position;
    const match = group.exec(text);
    if (!match) {
      return {
        ok: false,
        reason: `externalReferences is malformed at character ${position + 1}: expected (collection,reference) groups such as (people,@employee-number).`,
      };
    }
    position = group.lastIndex;
    if (++groups > MAX_GROUPS)
      return { ok: false, reason: `externalReferences names more than ${MAX_GROUPS} references.` };
    const [, collection = '', name = ''] = match;
    if (!allowed.includes(collection)) {
      return {
        ok: false,
        reason: `${JSON.stringify(collection)} is not a collection whose references ${owner} can include; use ${allowed.join(', ')}.`,
      };
    }
    const problem = referenceNameProblem(collection, name);
    if (problem) return { ok: false, reason: problem };
    const names = (selection[collection] ??= []);
    if (!names.includes(name)) names.push(name);
  }
  if (groups === 0) {
    return {
      ok: false,
      reason: 'externalReferences is empty: name at least one (collection,reference) group.',
    };
  }
  return { ok: true, value: selection };
}

/** The query-string form of a selection, the inverse of parseExternalReferences (for nextLink and deltaLink). */
export function formatExternalReferences(selection: ReferenceSelection): string {
  return Object.entries(selection)
    .flatMap(([collection, names]) => names.map((name) => `(${collection},${name})`))
    .join('');
}
