// Rows of absences: one column per field, read back into the canonical object. The date/person filter,
// (date, id) paging and the "still in use" checks query the columns; writes are one call of
// timehook_write_absence_batches with scalar arrays (SPEC §1.4 batch ingest; a JSON body column costs several
// times more), which also appends the changes.

import type { AbsenceFilter } from '../domain/absence-filter.ts';
import type { AbsenceBody } from '../domain/collections.ts';
import { CHANGES_CHANNEL } from './changes.ts';
import { numberArray, type Queryable } from './db.ts';

export interface StoredAbsence {
  version: number;
  body: AbsenceBody;
}

interface Row {
  change_version: number;
  id: number;
  date: string;
  person_id: number;
  resulting_absence_definition_id: number;
  requested_absence_definition_id: number | null;
  shift_definition_id: number | null;
  start_time_in_minutes: number;
  duration_in_minutes: number;
  calculated_duration_in_minutes: number;
  day_part: AbsenceBody['dayPart'];
  request_id: string | null;
  status: AbsenceBody['status'];
  approval_level: AbsenceBody['approvalLevel'];
  is_locked: boolean;
  period_type: AbsenceBody['periodType'];
}

// to_char: pg would turn a date into a JS Date in the local time zone.
const COLUMNS = `change_version, id, to_char(date, 'YYYY-MM-DD') as date, person_id,
  resulting_absence_definition_id, requested_absence_definition_id, shift_definition_id, start_time_in_minutes,
  duration_in_minutes, calculated_duration_in_minutes, day_part, request_id, status, approval_level, is_locked,
  period_type`;

/** The canonical absence (spec key order) of a row. */
const fromRow = (r: Row): StoredAbsence => ({
  version: r.change_version,
  body: {
    id: r.id,
    person: { id: r.person_id },
    resultingAbsenceDefinition: { id: r.resulting_absence_definition_id },
    requestedAbsenceDefinition:
      r.requested_absence_definition_id === null ? null : { id: r.requested_absence_definition_id },
    shiftDefinition: r.shift_definition_id === null ? null : { id: r.shift_definition_id },
    date: r.date,
    startTimeInMinutes: r.start_time_in_minutes,
    durationInMinutes: r.duration_in_minutes,
    calculatedDurationInMinutes: r.calculated_duration_in_minutes,
    dayPart: r.day_part,
    request: r.request_id === null ? null : { id: r.request_id },
    status: r.status,
    approvalLevel: r.approval_level,
    isLocked: r.is_locked,
    periodType: r.period_type,
  },
});

export async function getAbsence(
  db: Queryable,
  tenant: string,
  id: number,
): Promise<StoredAbsence | undefined> {
  const rows = await db.query<Row>(`select ${COLUMNS} from absences where tenant_id = $1 and id = $2`, [
    tenant,
    id,
  ]);
  return rows[0] && fromRow(rows[0]);
}

/** One page of the filter's absences in (date, id) order, strictly after `after` (undefined: from the start). */
export async function listAbsences(
  db: Queryable,
  tenant: string,
  filter: AbsenceFilter,
  after: { date: string; id: number } | undefined,
  limit: number,
): Promise<StoredAbsence[]> {
  const rows = await db.query<Row>(
    `select ${COLUMNS} from absences
      where tenant_id = $1 and date >= $2::date and ($3::date is null or date <= $3::date)
        and ($4::bigint[] is null or person_id = any($4::bigint[]))
        and (date, id) > ($5::date, $6::bigint)
      order by date, id
      limit $7`,
    [tenant, filter.from, filter.to, filter.personIds, after?.date ?? filter.from, after?.id ?? 0, limit],
  );
  return rows.map(fromRow);
}

/**
 * A batch of absence writes, encoded outside the tenant lock: one PostgreSQL array literal's elements per
 * column, and the distinct ids the upserts link to. Literals are built here because the drivers' generic array
 * encoding costs more than the write itself; they are parsed when the call is bound, before the function
 * takes the lock. The change data is built by the function from the same columns. Several batches of one
 * tenant travel as one call by concatenating their elements (writeAbsenceBatches).
 */
export interface AbsenceWriteBatch {
  /** The fifteen upsert columns of timehook_write_absence_batches, each its elements joined by commas. */
  readonly columns: readonly string[];
  /** The ids of the upserts, in order. */
  readonly upsertIds: readonly number[];
  /** The distinct ids the upserts link to: people, absence definitions, shift definitions. */
  readonly linked: readonly [readonly number[], readonly number[], readonly number[]];
  readonly deletes: readonly number[];
}

export interface AbsenceWriteResult {
  /** Upserts that differed from the stored absence (or created it); each recorded one change. */
  upserted: number;
  /** Upserts of absences that did not exist before. */
  created: number;
  /** For a single unchanged upsert: the stored changeVersion it keeps. */
  unchangedVersion: number | null;
  /** Deletes of absences that existed; each recorded one Delete change. */
  deleted: number;
  /** The version of the last change, or null when nothing was recorded. */
  lastVersion: number | null;
  /** "collection:id" of each link that names nothing in the tenant; when there is any, nothing was written. */
  unknownLinks: string[];
}

// Array literals are built by concatenation, one pass over the batch. Text elements are quoted, so that no
// value reads as NULL or splits; validated values hold no quote or backslash, but any value may.
const NEEDS_ESCAPE = /["\\]/;
const quoted = (v: string): string => `"${NEEDS_ESCAPE.test(v) ? v.replace(/["\\]/g, '\\$&') : v}"`;

/** Encodes upserts (canonical, links resolved, no id twice) and deletes (ids not among the upserts). */
export function encodeAbsenceWrites(
  bodies: readonly AbsenceBody[],
  deletes: readonly number[],
): AbsenceWriteBatch {
  let ids = '';
  let dates = '';
  let people = '';
  let resulting = '';
  let requested = '';
  let shifts = '';
  let starts = '';
  let durations = '';
  let calculated = '';
  let dayParts = '';
  let requests = '';
  let statuses = '';
  let approvals = '';
  let locked = '';
  let periods = '';
  const linkedPeople = new Set<number>();
  const linkedAbsenceDefinitions = new Set<number>();
  const linkedShiftDefinitions = new Set<number>();
  for (let i = 0; i < bodies.length; i++) {
    const b = bodies[i]!;
    const sep = i === 0 ? '' : ',';
    ids += sep + b.id;
    dates += sep + quoted(b.date);
    people += sep + b.person.id;
    resulting += sep + b.resultingAbsenceDefinition.id;
    requested += sep + (b.requestedAbsenceDefinition ? b.requestedAbsenceDefinition.id : 'NULL');
    shifts += sep + (b.shiftDefinition ? b.shiftDefinition.id : 'NULL');
    starts += sep + b.startTimeInMinutes;
    durations += sep + b.durationInMinutes;
    calculated += sep + b.calculatedDurationInMinutes;
    dayParts += sep + quoted(b.dayPart);
    requests += sep + (b.request ? quoted(b.request.id) : 'NULL');
    statuses += sep + quoted(b.status);
    approvals += sep + quoted(b.approvalLevel);
    locked += sep + (b.isLocked ? 't' : 'f');
    periods += sep + quoted(b.periodType);
    linkedPeople.add(b.person.id);
    linkedAbsenceDefinitions.add(b.resultingAbsenceDefinition.id);
    if (b.requestedAbsenceDefinition) linkedAbsenceDefinitions.add(b.requestedAbsenceDefinition.id);
    if (b.shiftDefinition) linkedShiftDefinitions.add(b.shiftDefinition.id);
  }
  return {
    columns: [
      ids,
      dates,
      people,
      resulting,
      requested,
      shifts,
      starts,
      durations,
      calculated,
      dayParts,
      requests,
      statuses,
      approvals,
      locked,
      periods,
    ],
    upsertIds: bodies.map((b) => b.id),
    linked: [[...linkedPeople], [...linkedAbsenceDefinitions], [...linkedShiftDefinitions]],
    deletes,
  };
}

interface ResultRow {
  batch: number;
  upserted: number;
  created: number;
  unchanged_version: number | null;
  deleted: number;
  last_version: number | null;
  missing: string[] | null;
}

const fromResultRow = (r: ResultRow): AbsenceWriteResult => ({
  upserted: r.upserted,
  created: r.created,
  unchangedVersion: r.unchanged_version,
  deleted: r.deleted,
  lastVersion: r.last_version,
  unknownLinks: r.missing ?? [],
});

/**
 * Applies an encoded batch with one statement: takes the tenant lock, checks that every link names a person
 * or definition of the tenant, records one change per upsert that differs from the stored absence (in batch
 * order) and per delete of an existing absence (after the upserts, in delete order), writes and deletes the
 * rows with those versions, and queues the NOTIFY of the change log. When a link names nothing it writes
 * nothing and reports the link. Atomic on its own (autocommit), or part of the caller's transaction.
 */
export async function writeAbsences(
  db: Queryable,
  tenant: string,
  batch: AbsenceWriteBatch,
): Promise<AbsenceWriteResult> {
  return (await writeAbsenceBatches(db, tenant, [batch]))[0]!;
}

/**
 * Applies several batches of one tenant that share no absence id with one autocommitted statement
 * (timehook_write_absence_batches, migrations/000001_baseline.sql): each batch as writeAbsences
 * would write it alone, one after another in the given order, under one take of the tenant lock, one plan and
 * one commit. A batch whose links name nothing writes nothing and reports them while the others are written;
 * any other failure fails them all (nothing is written). Returns one result per batch, in order.
 */
export async function writeAbsenceBatches(
  db: Queryable,
  tenant: string,
  batches: readonly AbsenceWriteBatch[],
): Promise<AbsenceWriteResult[]> {
  const columns = batches[0]!.columns.map((_, c) =>
    batches
      .map((b) => b.columns[c]!)
      .filter((elements) => elements !== '')
      .join(','),
  );
  /** Each batch's number (1-based) once per element that `count` says it has. */
  const numbers = (count: (b: AbsenceWriteBatch) => number): string =>
    numberArray(batches.flatMap((b, i) => Array<number>(count(b)).fill(i + 1)));
  const links = ([0, 1, 2] as const).flatMap((l) => [
    numberArray(batches.flatMap((b) => b.linked[l])),
    numbers((b) => b.linked[l].length),
  ]);
  const rows = await db.query<ResultRow>(
    `select * from timehook_write_absence_batches($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
       $15, $16, $17, $18, $19::int[], $20, $21::int[], $22, $23::int[], $24, $25::int[], $26, $27::int[])`,
    [
      tenant,
      CHANGES_CHANNEL,
      batches.length,
      ...columns.map((elements) => `{${elements}}`),
      numbers((b) => b.upsertIds.length),
      ...links,
      numberArray(batches.flatMap((b) => b.deletes)),
      numbers((b) => b.deletes.length),
    ],
  );
  if (rows.length !== batches.length) {
    throw new Error(
      `timehook_write_absence_batches answered ${rows.length} rows for ${batches.length} batches`,
    );
  }
  return rows.map(fromResultRow);
}
