// changeVersion: 20 upper-case hex digits of the tenant-wide counter, so string order = numeric order (SPEC §2).

export const CHANGE_VERSION_LENGTH = 20;

export function formatChangeVersion(version: number): string {
  return version.toString(16).toUpperCase().padStart(CHANGE_VERSION_LENGTH, '0');
}

/** The counter value of a changeVersion string, or undefined when it is not 20 hex digits. */
export function parseChangeVersion(text: string): number | undefined {
  if (!/^[0-9A-F]{20}$/.test(text)) return undefined;
  const value = Number.parseInt(text, 16);
  return Number.isSafeInteger(value) ? value : undefined;
}
