// The data the benchmark writes: people, definitions and absences with deterministic content, so that every
// (entity, round) pair differs from the round before it and each upsert records exactly one change.

export const PEOPLE = 500;
export const PERSON_BASE = 1;
export const ABSENCE_DEFINITIONS = [101, 102, 103, 104, 105];
export const SHIFT_DEFINITIONS = [201, 202, 203];

const DAY_MS = 86_400_000;
const EPOCH_2026 = Date.UTC(2026, 0, 1);

export const personOf = (entity: number): number => PERSON_BASE + (entity % PEOPLE);

export function person(id: number) {
  return { firstName: 'Bench', lastName: `Person ${id}`, badgeNumber: `B${id}`, employeeNumber: `E${id}` };
}

export function definition(id: number, kind: 'absence' | 'shift') {
  return {
    name: { default: `Bench ${kind} ${id}`, translations: { nl: `Bank ${kind} ${id}` } },
    code: `${kind === 'absence' ? 'A' : 'S'}${id}`,
    isEnabled: true,
  };
}

/**
 * Absence `entity` as written in round `round` (0, 1, 2 …): consecutive rounds always differ (start time,
 * then duration), so no upsert is a no-op. About 450 bytes of JSON, like a real absence.
 */
export function absence(entity: number, round: number) {
  const personId = personOf(entity);
  const definitionId = ABSENCE_DEFINITIONS[entity % ABSENCE_DEFINITIONS.length]!;
  return {
    id: entity,
    person: { id: personId },
    resultingAbsenceDefinition: { id: definitionId },
    requestedAbsenceDefinition: { id: definitionId },
    shiftDefinition: { id: SHIFT_DEFINITIONS[entity % SHIFT_DEFINITIONS.length]! },
    date: new Date(EPOCH_2026 + (entity % 365) * DAY_MS).toISOString().slice(0, 10),
    startTimeInMinutes: round % 1441,
    durationInMinutes: Math.floor(round / 1441) % 1441,
    calculatedDurationInMinutes: 240,
    dayPart: 'First',
    request: { id: `bench-${personId}-${entity}` },
    status: 'Manual',
    approvalLevel: 'Approved',
    isLocked: false,
    periodType: 'Day',
  };
}

export const formatVersion = (version: number): string =>
  version.toString(16).toUpperCase().padStart(20, '0');

/** The event body the service sends for an upsert of `absence(entity, round)` at `version` (SPEC §3). */
export function eventBody(entity: number, round: number, version: number): string {
  return JSON.stringify({
    changeType: 'InsertOrUpdate',
    data: { changeVersion: formatVersion(version), ...absence(entity, round) },
  });
}
