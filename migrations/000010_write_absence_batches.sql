-- Timehook schema, version 10: the absence write of version 4 for several batches of one tenant at once
-- (issue 5).
--
-- Every absence write takes the tenant's row lock (version 4). When many small writes of one tenant arrive
-- together (single PUTs from many threads, or 100 batches of 10 a second in bench workload 4) they queued on
-- that lock inside PostgreSQL: each commit wakes the next waiter, which must then be scheduled before it can
-- run, so on two busy cores a write of 2 ms held the queue for 10-30 ms and chains of 5-8 writes formed
-- (log_lock_waits). And a write of a few absences costs more to plan than to run: its statement is planned for
-- each call. The API process now lets at most two writes of a tenant wait here and hands the ones that arrive
-- meanwhile to this function together (src/store/absence-write-queue.ts): one lock, one plan, one commit.
--
-- It is timehook_write_absences of version 4 with a batch number on every upsert, link and delete, and it
-- replaces it: a single write is a group of one (bench workload 1, 1,000 absences per call, ran as fast on
-- both). The caller groups only batches that share no absence id. Each batch is written as version 4 wrote it
-- alone, the batches one after another in number order: its changed upserts in order, then its deletes of
-- existing absences, with consecutive versions. A batch whose links name nothing writes nothing and reports
-- them while the others are written; its counts are what it would have written, as before. Returns one row
-- per batch, 1 to p_batches.
drop function timehook_write_absences(text, text, bigint[], text[], bigint[], bigint[], bigint[], bigint[], int[],
                                      int[], int[], text[], text[], text[], text[], boolean[], text[], bigint[],
                                      bigint[], bigint[], bigint[]);

create function timehook_write_absence_batches(
  p_tenant text,
  p_channel text,
  p_batches int,
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
  p_upsert_batches int[],
  p_linked_people bigint[],
  p_linked_people_batches int[],
  p_linked_absence_definitions bigint[],
  p_linked_absence_definitions_batches int[],
  p_linked_shift_definitions bigint[],
  p_linked_shift_definitions_batches int[],
  p_deletes bigint[],
  p_delete_batches int[]
) returns table (
  batch int,
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
  return query
  with compared as (
    -- Each upsert beside its stored row (the lateral subqueries are index probes, see version 4), with its
    -- batch (ub).
    select u.*, u.day::date as date, a.row_id, a.row_id is not null as existed,
           a.change_version as stored_version, a.date as stored_date, a.person_id as stored_person_id, s.same,
           a.row_id is not null
             and (a.person_id, a.resulting_absence_definition_id, a.requested_absence_definition_id,
                  a.shift_definition_id)
                 is not distinct from (u.person_id, u.resulting_id, u.requested_id, u.shift_id) as links_kept
      from unnest(p_ids, p_dates, p_person_ids, p_resulting_ids, p_requested_ids, p_shift_ids, p_start_minutes,
                  p_duration_minutes, p_calculated_minutes, p_day_parts, p_request_ids, p_statuses,
                  p_approval_levels, p_locked, p_period_types, p_upsert_batches)
             with ordinality as u(id, day, person_id, resulting_id, requested_id, shift_id, start_minutes,
                                  duration_minutes, calculated_minutes, day_part, request_id, status,
                                  approval_level, is_locked, period_type, ub, n)
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
  ), relinked as (
    -- Batches with an upsert whose links differ from its stored row's: only theirs are looked up (version 4).
    select distinct ub from compared where not links_kept
  ), unknown as (
    select l.lb, l.collection || ':' || l.id as link, l.kind, l.n
      from (select 1 as kind, 'people' as collection, id, lb, n
              from unnest(p_linked_people, p_linked_people_batches) with ordinality x(id, lb, n)
            union all
            select 2, 'absence-definitions', id, lb, n
              from unnest(p_linked_absence_definitions, p_linked_absence_definitions_batches)
                     with ordinality x(id, lb, n)
            union all
            select 3, 'shift-definitions', id, lb, n
              from unnest(p_linked_shift_definitions, p_linked_shift_definitions_batches)
                     with ordinality x(id, lb, n)) l
      left join lateral (select 1 as found from resources r
                          where r.tenant_id = p_tenant and r.collection = l.collection and r.id = l.id
                          limit 1) r on true
     where r.found is null and l.lb in (select ub from relinked)
  ), gone_all as (
    -- Deletes of absences that exist, numbered in batch order within their batch.
    select d.id, d.db, a.row_id, a.date, a.person_id, row_number() over (partition by d.db order by d.n) as j
      from unnest(p_deletes, p_delete_batches) with ordinality as d(id, db, n)
      join lateral (select a.ctid as row_id, a.date, a.person_id from absences a
                     where a.tenant_id = p_tenant and a.id = d.id limit 1) a on true
  ), stats as (
    select ub, count(*) filter (where not same) as u, count(*) filter (where not existed) as created,
           max(stored_version) filter (where same) as unchanged_version
      from compared group by ub
  ), per_batch as (
    -- Each batch's counts as reported, and what it writes: nothing when a link names nothing.
    select g.b, coalesce(s.u, 0) as u, coalesce(s.created, 0) as created, s.unchanged_version,
           coalesce(x.g, 0) as g, r.refused is not null as refused,
           case when r.refused is null then coalesce(s.u, 0) + coalesce(x.g, 0) else 0 end as writes
      from generate_series(1, p_batches) g(b)
      left join stats s on s.ub = g.b
      left join (select db, count(*) as g from gone_all group by db) x on x.db = g.b
      left join (select distinct lb as refused from unknown) r on r.refused = g.b
  ), offsets as (
    -- The versions each batch's changes follow: those of the batches before it.
    select b, u, g, refused, writes, (sum(writes) over (order by b) - writes)::bigint as before from per_batch
  ), bump as (
    -- Takes the versions of every batch that writes.
    update tenants t set last_version = t.last_version + w.n
      from (select sum(writes)::bigint as n from per_batch) w
     where t.id = p_tenant and w.n > 0
    returning t.last_version - w.n as base,
              pg_notify(p_channel, p_tenant || ':' || t.last_version) -- delivered on commit
  ), changed as (
    -- The upserts that record a change, with their versions.
    select c.*, b.base + o.before + count(*) over (partition by c.ub order by c.n) as version
      from compared c join offsets o on o.b = c.ub cross join bump b
     where not c.same and not o.refused
  ), gone as (
    select g.*, b.base + o.before + o.u + g.j as version
      from gone_all g join offsets o on o.b = g.db cross join bump b
     where not o.refused
  ), logged as (
    insert into changes (tenant_id, version, collection, entity_id, change_type, data, absence_date, person_id,
                         previous_absence_date, previous_person_id)
    select p_tenant, c.version, 'absences', c.id, 'InsertOrUpdate',
           ('{"changeVersion":"' || lpad(upper(to_hex(c.version)), 20, '0')
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
      from changed c
    union all
    select p_tenant, g.version, 'absences', g.id, 'Delete',
           ('{"changeVersion":"' || lpad(upper(to_hex(g.version)), 20, '0') || '","id":' || g.id || '}')::json,
           g.date, g.person_id, null, null
      from gone g
  ), updated as (
    -- By the row the comparison read: under the tenant lock no other statement has touched it since.
    update absences a set
      change_version = c.version, date = c.date, person_id = c.person_id,
      resulting_absence_definition_id = c.resulting_id, requested_absence_definition_id = c.requested_id,
      shift_definition_id = c.shift_id, start_time_in_minutes = c.start_minutes,
      duration_in_minutes = c.duration_minutes, calculated_duration_in_minutes = c.calculated_minutes,
      day_part = c.day_part, request_id = c.request_id, status = c.status, approval_level = c.approval_level,
      is_locked = c.is_locked, period_type = c.period_type
      from changed c
     where c.existed and a.ctid = c.row_id
  ), inserted as (
    insert into absences (tenant_id, id, change_version, date, person_id, resulting_absence_definition_id,
                          requested_absence_definition_id, shift_definition_id, start_time_in_minutes,
                          duration_in_minutes, calculated_duration_in_minutes, day_part, request_id, status,
                          approval_level, is_locked, period_type)
    select p_tenant, c.id, c.version, c.date, c.person_id, c.resulting_id, c.requested_id, c.shift_id,
           c.start_minutes, c.duration_minutes, c.calculated_minutes, c.day_part, c.request_id, c.status,
           c.approval_level, c.is_locked, c.period_type
      from changed c
     where not c.existed
  ), removed as (
    delete from absences a using gone g where a.ctid = g.row_id
  )
  select o.b::int, o.u::int, p.created::int, p.unchanged_version, o.g::int,
         case when o.writes > 0 then (select base from bump) + o.before + o.writes end,
         (select array_agg(k.link order by k.kind, k.n) from unknown k where k.lb = o.b)
    from offsets o join per_batch p on p.b = o.b
   order by o.b;
end
$$;
