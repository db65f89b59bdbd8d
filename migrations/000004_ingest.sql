-- Timehook schema, version 4: absence ingest in one call (SPEC §1.4 batch ingest, §2 change log).

-- An update round rewrites every row of a page: with half of each page free the new versions stay on it as
-- HOT updates, which leave the six indexes of absences alone when no indexed column changed (a batch of 1,000
-- updates took ~33 ms at the default fill factor and ~17 ms at 50, PostgreSQL 15 on the 2-core bench
-- machine). Applies to pages written from now on; `vacuum full absences` repacks the existing rows.
alter table absences set (fillfactor = 50);

-- The values of the enumerations, as src/domain/collections.ts validates them (the minutes already have their
-- checks). Besides keeping the table honest, they let the ingest function below write these values into JSON
-- between plain quotes: a row whose value could need escaping fails its check in the same statement.
alter table absences
  add constraint absences_day_part check (day_part in ('First', 'Second', 'Unknown')),
  add constraint absences_status
    check (status in ('Unknown', 'Manual', 'Auto', 'BeginOpen', 'Open', 'Terminal', 'Calendar')),
  add constraint absences_approval_level
    check (approval_level in ('Unknown', 'AwaitingApproval', 'Approved', 'NotApproved', 'NotApprovedByPriorities',
                              'NotApprovedByCalculations')),
  add constraint absences_period_type check (period_type in ('Unknown', 'Day', 'Week', 'PayPeriod'));

-- The tenant of every absence and change is checked by the writers themselves: each takes the tenant row
-- FOR UPDATE first and fails when it does not exist, and tenants are never deleted. The foreign keys ran one
-- trigger query per inserted row (~4 µs each, a fifth of a batch's time), so they go.
alter table absences drop constraint absences_tenant_id_fkey;
alter table changes drop constraint changes_tenant_id_fkey;

-- Writes a batch of absence upserts and deletes in one call; store/absences.ts (writeAbsences) is its caller.
-- p_ids … p_period_types are the upserts, one array element per absence and column (canonical, links resolved
-- to ids, no id twice, none among p_deletes); p_linked_* are the distinct ids they link to. It takes the tenant
-- lock first; the statement after it runs with a snapshot taken once the lock was granted (a VOLATILE
-- function's statements each take their own), so it sees every write committed before. The arguments travel
-- and are parsed before the lock, so the lock is held only while the rows are compared and written.
--
-- The change data is built here from the columns, in the canonical key order of src/domain/collections.ts
-- (canonicalAbsence) with the changeVersion first: the text equals JSON.stringify(withChangeVersion(…)) of
-- the same absence (test/absence-writes.test.ts holds the two together).
create function timehook_write_absences(
  p_tenant text,
  p_channel text,
  p_ids bigint[],
  p_dates text[],
  p_person_ids bigint[],
  p_resulting_ids bigint[],
  p_requested_ids bigint[],
  p_shift_ids bigint[],
  p_start_minutes int[],
  p_duration_minutes int[],
  p_calculated_minutes int[],
  p_day_parts text[],
  p_request_ids text[],
  p_statuses text[],
  p_approval_levels text[],
  p_locked boolean[],
  p_period_types text[],
  p_linked_people bigint[],
  p_linked_absence_definitions bigint[],
  p_linked_shift_definitions bigint[],
  p_deletes bigint[]
) returns table (
  upserted int,
  created int,
  unchanged_version bigint,
  deleted int,
  last_version bigint,
  missing text[]
) language plpgsql as $$
#variable_conflict use_column
begin
  perform 1 from tenants where id = p_tenant for update;
  if not found then
    raise exception 'Tenant % does not exist.', p_tenant;
  end if;
  -- The lateral subqueries with "limit 1" are index probes, one per row: the limit keeps them from being
  -- flattened into joins that a plan made with stale statistics might answer by reading all of a tenant's rows.
  return query
  with compared as (
    -- Each upsert beside its stored row; k numbers the upserts that change something, in batch order.
    select u.*, u.day::date as date, a.row_id, a.row_id is not null as existed,
           a.change_version as stored_version, a.date as stored_date, a.person_id as stored_person_id, s.same,
           a.row_id is not null
             and (a.person_id, a.resulting_absence_definition_id, a.requested_absence_definition_id,
                  a.shift_definition_id)
                 is not distinct from (u.person_id, u.resulting_id, u.requested_id, u.shift_id) as links_kept,
           count(*) filter (where not s.same) over (order by u.n) as k
      from unnest(p_ids, p_dates, p_person_ids, p_resulting_ids, p_requested_ids, p_shift_ids, p_start_minutes,
                  p_duration_minutes, p_calculated_minutes, p_day_parts, p_request_ids, p_statuses,
                  p_approval_levels, p_locked, p_period_types)
             with ordinality as u(id, day, person_id, resulting_id, requested_id, shift_id, start_minutes,
                                  duration_minutes, calculated_minutes, day_part, request_id, status,
                                  approval_level, is_locked, period_type, n)
      left join lateral (select a.ctid as row_id, a.* from absences a
                          where a.tenant_id = p_tenant and a.id = u.id limit 1) a on true
      cross join lateral (
        select a.row_id is not null
               and (a.date, a.person_id, a.resulting_absence_definition_id, a.requested_absence_definition_id,
                    a.shift_definition_id, a.start_time_in_minutes, a.duration_in_minutes,
                    a.calculated_duration_in_minutes, a.day_part, a.request_id, a.status, a.approval_level,
                    a.is_locked, a.period_type)
                   is not distinct from
                   (u.day::date, u.person_id, u.resulting_id, u.requested_id, u.shift_id, u.start_minutes,
                    u.duration_minutes, u.calculated_minutes, u.day_part, u.request_id, u.status,
                    u.approval_level, u.is_locked, u.period_type) as same
      ) s
  ), unknown as (
    select l.collection || ':' || l.id as link
      from (select 'people' as collection, id from unnest(p_linked_people) id
            union all select 'absence-definitions', id from unnest(p_linked_absence_definitions) id
            union all select 'shift-definitions', id from unnest(p_linked_shift_definitions) id) l
      left join lateral (select 1 as found from resources r
                          where r.tenant_id = p_tenant and r.collection = l.collection and r.id = l.id
                          limit 1) r on true
     where r.found is null
       -- An absence's person and definitions cannot be deleted while it links to them (409 EntityInUse, under
       -- the tenant lock), so when every upsert links to what its stored row links to, all links exist.
       and exists (select 1 from compared where not links_kept)
  ), gone as (
    -- The deletes of absences that exist, numbered in batch order.
    select d.id, a.row_id, a.date, a.person_id, row_number() over (order by d.n) as k
      from unnest(p_deletes) with ordinality as d(id, n)
      join lateral (select a.ctid as row_id, a.date, a.person_id from absences a
                     where a.tenant_id = p_tenant and a.id = d.id limit 1) a on true
  ), counts as (
    select count(*) filter (where not same) as u, count(*) filter (where not existed) as created,
           max(stored_version) filter (where same) as unchanged_version, (select count(*) from gone) as g
      from compared
  ), bump as (
    -- Takes the versions; nothing is written when a link names nothing (the caller reports the links).
    update tenants t set last_version = t.last_version + c.u + c.g
      from counts c
     where t.id = p_tenant and c.u + c.g > 0 and not exists (select 1 from unknown)
    returning t.last_version - c.u - c.g as base, c.u, t.last_version as last,
              pg_notify(p_channel, p_tenant || ':' || t.last_version) -- delivered on commit
  ), logged as (
    insert into changes (tenant_id, version, collection, entity_id, change_type, data, absence_date, person_id,
                         previous_absence_date, previous_person_id)
    select p_tenant, b.base + c.k, 'absences', c.id, 'InsertOrUpdate',
           ('{"changeVersion":"' || lpad(upper(to_hex(b.base + c.k)), 20, '0')
             || '","id":' || c.id
             || ',"person":{"id":' || c.person_id
             || '},"resultingAbsenceDefinition":{"id":' || c.resulting_id
             || '},"requestedAbsenceDefinition":' || coalesce('{"id":' || c.requested_id || '}', 'null')
             || ',"shiftDefinition":' || coalesce('{"id":' || c.shift_id || '}', 'null')
             -- Plain quotes: the date parsed as a date and the enumerations pass their checks (see above), or
             -- the statement fails; request.id is free text and is escaped.
             || ',"date":"' || c.day || '"'
             || ',"startTimeInMinutes":' || c.start_minutes
             || ',"durationInMinutes":' || c.duration_minutes
             || ',"calculatedDurationInMinutes":' || c.calculated_minutes
             || ',"dayPart":"' || c.day_part || '"'
             || ',"request":' || coalesce('{"id":' || to_json(c.request_id)::text || '}', 'null')
             || ',"status":"' || c.status || '","approvalLevel":"' || c.approval_level || '"'
             || ',"isLocked":' || case when c.is_locked then 'true' else 'false' end
             || ',"periodType":"' || c.period_type || '"}')::json,
           c.date, c.person_id,
           case when c.stored_date <> c.date or c.stored_person_id <> c.person_id then c.stored_date end,
           case when c.stored_date <> c.date or c.stored_person_id <> c.person_id then c.stored_person_id end
      from compared c cross join bump b
     where not c.same
    union all
    select p_tenant, b.base + b.u + g.k, 'absences', g.id, 'Delete',
           ('{"changeVersion":"' || lpad(upper(to_hex(b.base + b.u + g.k)), 20, '0') || '","id":' || g.id || '}')::json,
           g.date, g.person_id, null, null
      from gone g cross join bump b
  ), updated as (
    -- By the row the comparison read: under the tenant lock no other statement has touched it since.
    update absences a set
      change_version = b.base + c.k, date = c.date, person_id = c.person_id,
      resulting_absence_definition_id = c.resulting_id, requested_absence_definition_id = c.requested_id,
      shift_definition_id = c.shift_id, start_time_in_minutes = c.start_minutes,
      duration_in_minutes = c.duration_minutes, calculated_duration_in_minutes = c.calculated_minutes,
      day_part = c.day_part, request_id = c.request_id, status = c.status, approval_level = c.approval_level,
      is_locked = c.is_locked, period_type = c.period_type
      from compared c cross join bump b
     where c.existed and not c.same and a.ctid = c.row_id
  ), inserted as (
    insert into absences (tenant_id, id, change_version, date, person_id, resulting_absence_definition_id,
                          requested_absence_definition_id, shift_definition_id, start_time_in_minutes,
                          duration_in_minutes, calculated_duration_in_minutes, day_part, request_id, status,
                          approval_level, is_locked, period_type)
    select p_tenant, c.id, b.base + c.k, c.date, c.person_id, c.resulting_id, c.requested_id, c.shift_id,
           c.start_minutes, c.duration_minutes, c.calculated_minutes, c.day_part, c.request_id, c.status,
           c.approval_level, c.is_locked, c.period_type
      from compared c cross join bump b
     where not c.existed
  ), removed as (
    delete from absences a using gone g, bump b where a.ctid = g.row_id
  )
  select c.u::int, c.created::int, c.unchanged_version, c.g::int, (select last from bump),
         (select array_agg(link) from unknown)
    from counts c;
end
$$;
