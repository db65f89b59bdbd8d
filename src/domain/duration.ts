// Parses human durations ("500ms", "15s", "30d") and retry schedules. Pure; no I/O.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Returns milliseconds, or undefined when the text is not `<non-negative integer><ms|s|m|h|d>`. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d{1,12})(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * (UNIT_MS[match[2]!] ?? NaN);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** "5s,5m,30m" → [5000, 300000, 1800000]; undefined when any element is malformed or the list is empty. */
export function parseDurationList(text: string): number[] | undefined {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) return undefined;
  const values = parts.map(parseDurationMs);
  return values.every((v): v is number => v !== undefined) ? values : undefined;
}
