// The OAuth scope catalogue (SPEC §1.1): read/write per collection, plus webhooks.

export const COLLECTIONS = ['absences', 'people', 'absence-definitions', 'shift-definitions'] as const;
export type CollectionName = (typeof COLLECTIONS)[number];

export function isCollectionName(value: string): value is CollectionName {
  return (COLLECTIONS as readonly string[]).includes(value);
}

export const scopeFor = (resource: CollectionName | 'webhooks', access: 'read' | 'write'): string =>
  `connector-protimeapi-${resource}.${access}`;

export const ALL_SCOPES: readonly string[] = [...COLLECTIONS, 'webhooks' as const].flatMap((c) => [
  scopeFor(c, 'read'),
  scopeFor(c, 'write'),
]);

/** Splits a space-separated scope string; returns the unknown names separately. */
export function parseScopes(text: string): { scopes: string[]; unknown: string[] } {
  const names = [...new Set(text.split(/[\s+]+/).filter(Boolean))];
  return {
    scopes: names.filter((n) => ALL_SCOPES.includes(n)),
    unknown: names.filter((n) => !ALL_SCOPES.includes(n)),
  };
}
