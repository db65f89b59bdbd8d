// Rows of absences: one column per field, read back into the canonical object. The date/person filter,
// (date, id) paging and the "still in use" checks query the columns; batch writes are single unnest
// statements of scalar arrays (SPEC §1.4 batch ingest; a JSON body column costs several times more).

import type { AbsenceFilter } from '../domain/absence-filter.ts';
import type { AbsenceBody } from '../domain/collections.ts';
import type { Queryable } from './db.ts';

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

/** The stored absences among `ids`, by id, in one statement. */
export async function getAbsences(
  db: Queryable,
  tenant: string,
  ids: number[],
): Promise<Map<number, StoredAbsence>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<Row>(
    `select ${COLUMNS} from absences where tenant_id = $1 and id = any($2::bigint[])`,
    [tenant, ids],
  );
  return new Map(rows.map((r) => [r.id, fromRow(r)]));
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
      where tenant_id = $1 and date >= $2::date and date <= $3::date
        and ($4::bigint[] is null or person_id = any($4::bigint[]))
        and (date, id) > ($5::date, $6::bigint)
      order by date, id
      limit $7`,
    [tenant, filter.from, filter.to, filter.personIds, after?.date ?? filter.from, after?.id ?? 0, limit],
  );
  return rows.map(fromRow);
}

/** Inserts or replaces absences, each with the version of its change, in one statement. */
export async function upsertAbsences(
  tx: Queryable,
  tenant: string,
  rows: { version: number; body: AbsenceBody }[],
): Promise<void> {
  if (rows.length === 0) return;
  const column = <T>(f: (b: AbsenceBody) => T): T[] => rows.map((r) => f(r.body));
  await tx.query(
    `insert into absences (tenant_id, id, change_version, date, person_id, resulting_absence_definition_id,
                           requested_absence_definition_id, shift_definition_id, start_time_in_minutes,
                           duration_in_minutes, calculated_duration_in_minutes, day_part, request_id, status,
                           approval_level, is_locked, period_type)
     select $1, u.*
       from unnest($2::bigint[], $3::bigint[], $4::date[], $5::bigint[], $6::bigint[], $7::bigint[],
                   $8::bigint[], $9::int[], $10::int[], $11::int[], $12::text[], $13::text[], $14::text[],
                   $15::text[], $16::boolean[], $17::text[]) as u
     on conflict (tenant_id, id) do update set
       change_version = excluded.change_version, date = excluded.date, person_id = excluded.person_id,
       resulting_absence_definition_id = excluded.resulting_absence_definition_id,
       requested_absence_definition_id = excluded.requested_absence_definition_id,
       shift_definition_id = excluded.shift_definition_id,
       start_time_in_minutes = excluded.start_time_in_minutes, duration_in_minutes = excluded.duration_in_minutes,
       calculated_duration_in_minutes = excluded.calculated_duration_in_minutes, day_part = excluded.day_part,
       request_id = excluded.request_id, status = excluded.status, approval_level = excluded.approval_level,
       is_locked = excluded.is_locked, period_type = excluded.period_type`,
    [
      tenant,
      column((b) => b.id),
      rows.map((r) => r.version),
      column((b) => b.date),
      column((b) => b.person.id),
      column((b) => b.resultingAbsenceDefinition.id),
      column((b) => b.requestedAbsenceDefinition?.id ?? null),
      column((b) => b.shiftDefinition?.id ?? null),
      column((b) => b.startTimeInMinutes),
      column((b) => b.durationInMinutes),
      column((b) => b.calculatedDurationInMinutes),
      column((b) => b.dayPart),
      column((b) => b.request?.id ?? null),
      column((b) => b.status),
      column((b) => b.approvalLevel),
      column((b) => b.isLocked),
      column((b) => b.periodType),
    ],
  );
}

export async function deleteAbsenceRows(tx: Queryable, tenant: string, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await tx.query('delete from absences where tenant_id = $1 and id = any($2::bigint[])', [tenant, ids]);
}
