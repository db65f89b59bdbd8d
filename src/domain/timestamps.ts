// How the API renders instants. Pure.

/**
 * A timestamp as the API renders it: ISO 8601 in UTC to the second with an explicit offset, as upstream
 * shows it (`2026-12-28T10:15:00+00:00`). Milliseconds are dropped.
 */
export function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/(\.\d+)?Z$/, '+00:00');
}
