// The people list filter (Timehook's choice: upstream calls its people list "filtered" without naming the
// fields): `id`, `employeeNumber` and `badgeNumber`, each a Multiple field (eq, in, or), joined by and.
// Parsed by upstream's grammar (domain/filter.ts). Pure; never throws.

import { compileFilter, parseFilter, type FieldSpec } from './filter.ts';

export const MAX_FILTER_VALUES = 100;

export interface PeopleFilter {
  /** Each list: only people whose field is one of these (sorted, unique); null: no condition on it. */
  ids: number[] | null;
  employeeNumbers: string[] | null;
  badgeNumbers: string[] | null;
}

const FIELDS: Record<string, FieldSpec> = {
  id: { category: 'Multiple', value: 'id', maxList: MAX_FILTER_VALUES },
  employeeNumber: { category: 'Multiple', value: 'text', maxList: MAX_FILTER_VALUES },
  badgeNumber: { category: 'Multiple', value: 'text', maxList: MAX_FILTER_VALUES },
};

export function parsePeopleFilter(
  text: string,
): { ok: true; value: PeopleFilter } | { ok: false; reasons: string[] } {
  const tree = parseFilter(text);
  if (!tree.ok) return tree;
  const compiled = compileFilter(tree.value, FIELDS);
  if (!compiled.ok) return compiled;
  const { sets } = compiled.value;
  return {
    ok: true,
    value: {
      ids: (sets.id as number[] | undefined) ?? null,
      employeeNumbers: (sets.employeeNumber as string[] | undefined) ?? null,
      badgeNumbers: (sets.badgeNumber as string[] | undefined) ?? null,
    },
  };
}

/** A canonical text of a parsed filter, for binding continuation tokens to it. */
export const peopleFilterKey = (f: PeopleFilter): string =>
  JSON.stringify([f.ids, f.employeeNumbers, f.badgeNumbers]);
