-- Timehook's schema. Later changes are new numbered files beside this one; migrations/schema.sql is the schema
-- they build together, as the database reports it (regenerate it with `npm run schema:dump`).
--
-- 1. Tenants, clients and keys   2. The collections   3. The change log   4. Absence writes
-- 5. Webhooks                     6. Delivery


-- 1. Tenants, clients and keys ---------------------------------------------------------------------------------

-- A tenant, created on first use, and its change counter. Tenants are never deleted: the writers of absences
-- and changes rely on that (section 2).
create table tenants (
  id text primary key,
  -- The tenant-wide change counter: taken under this row's lock, so commit order = version order (SPEC §2).
  last_version bigint not null default 0,
  -- Every change at or below this version has been pruned; older delta tokens get 410.
  pruned_through_version bigint not null default 0,
  created_at timestamptz not null default now()
);

-- The API clients of a tenant (client credentials grant) and the scopes their tokens carry.
create table clients (
  id text primary key,
  tenant_id text not null references tenants (id),
  name text,
  secret_hash text not null,
  scopes text[] not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);
create index clients_by_tenant on clients (tenant_id);

-- Installation-wide secrets kept in the store (the generated encryption key on PostgreSQL).
create table installation_secrets (
  name text primary key,
  value text not null,
  created_at timestamptz not null default now()
);

-- The keys that sign access tokens, published as the JWKS.
create table signing_keys (
  kid text primary key,
  alg text not null,
  public_jwk jsonb not null,
  private_jwk_encrypted text not null,
  created_at timestamptz not null default now(),
  -- When set, the key no longer signs; it is published until its last token has expired.
  retired_at timestamptz
);


-- 2. The collections -------------------------------------------------------------------------------------------

-- People, absence definitions and shift definitions. body is the canonical object without changeVersion
-- (src/domain/collections.ts); the API serializes it in spec key order.
create table resources (
  tenant_id text not null references tenants (id),
  collection text not null check (collection in ('people', 'absence-definitions', 'shift-definitions')),
  id bigint not null check (id > 0),
  change_version bigint not null,
  body jsonb not null,
  primary key (tenant_id, collection, id)
);

-- Absences, one column per field: a batch is written with one unnest statement, far cheaper than a JSON body,
-- and the API builds the canonical object from the columns. Links are checked by the absence write under the
-- tenant lock; the link columns also serve the "still in use" checks of person and definition deletes.
--
-- The checks on the enumerations are the values src/domain/collections.ts accepts. Besides keeping the table
-- honest, they let timehook_write_absence_batches write these values into JSON between plain quotes: a value
-- that could need escaping fails its check in the same statement.
--
-- No foreign key to tenants: every writer takes the tenant row FOR UPDATE first and fails when it does not
-- exist, and a foreign key would add a trigger query for every row of a batch.
create table absences (
  tenant_id text not null,
  id bigint not null check (id > 0),
  change_version bigint not null,
  date date not null,
  person_id bigint not null,
  resulting_absence_definition_id bigint not null,
  requested_absence_definition_id bigint,
  shift_definition_id bigint,
  start_time_in_minutes integer not null check (start_time_in_minutes between 0 and 1440),
  duration_in_minutes integer not null check (duration_in_minutes between 0 and 1440),
  calculated_duration_in_minutes integer not null check (calculated_duration_in_minutes between 0 and 1440),
  day_part text not null constraint absences_day_part check (day_part in ('First', 'Second', 'Unknown')),
  request_id text,
  status text not null constraint absences_status
    check (status in ('Unknown', 'Manual', 'Auto', 'BeginOpen', 'Open', 'Terminal', 'Calendar')),
  approval_level text not null constraint absences_approval_level
    check (approval_level in ('Unknown', 'AwaitingApproval', 'Approved', 'NotApproved', 'NotApprovedByPriorities',
                              'NotApprovedByCalculations')),
  is_locked boolean not null,
  period_type text not null constraint absences_period_type
    check (period_type in ('Unknown', 'Day', 'Week', 'PayPeriod')),
  primary key (tenant_id, id)
)
-- An update round rewrites every row of a page: with half of each page free the new row versions stay on it
-- as HOT updates, which leave the six indexes alone when no indexed column changed.
with (fillfactor = 50);
create index absences_by_date on absences (tenant_id, date, id);
create index absences_by_person on absences (tenant_id, person_id, date, id);
create index absences_by_resulting_definition on absences (tenant_id, resulting_absence_definition_id);
create index absences_by_requested_definition on absences (tenant_id, requested_absence_definition_id)
  where requested_absence_definition_id is not null;
create index absences_by_shift_definition on absences (tenant_id, shift_definition_id)
  where shift_definition_id is not null;

-- Predefined (@employee-number …, kept in step with the object's fields) and custom external references of
-- people and definitions. A value is unique per (collection, name), so a lookup by reference is unambiguous.
create table external_references (
  tenant_id text not null references tenants (id),
  collection text not null,
  name text not null,
  value text not null,
  entity_id bigint not null,
  primary key (tenant_id, collection, name, value)
);
create index external_references_by_entity on external_references (tenant_id, collection, entity_id);


-- 3. The change log --------------------------------------------------------------------------------------------

-- One row per committed change, read by delta and by delivery. No foreign key to tenants, as for absences.
--
-- Each change enters one B-tree, the primary key, on the hot path: absence changes (nearly all of the log) are
-- read by tenant and version range, by delta and by the webhooks' fan-out, and the primary key walks that range
-- in order, its filter on collection skipping the few other changes in between. Pruning walks each tenant's log
-- from pruned_through_version by the primary key too (src/store/changes.ts). Only the other collections' own
-- delta needs an index of its own, a partial one that absence changes do not enter.
create table changes (
  tenant_id text not null,
  version bigint not null,
  collection text not null,
  entity_id bigint not null,
  change_type text not null check (change_type in ('InsertOrUpdate', 'Delete')),
  -- The object as written, with its changeVersion; `json` keeps the text (and key order) as stored.
  data json not null,
  -- Absences only, also for deletes: what the delta date and person filters apply to.
  absence_date date,
  person_id bigint,
  -- For an update that moved the absence (other date or person): where it was, so a delta filtered on the
  -- old range still reports that it left.
  previous_absence_date date,
  previous_person_id bigint,
  committed_at timestamptz not null default now(),
  primary key (tenant_id, version)
);
create index changes_by_collection on changes (tenant_id, collection, version) where collection <> 'absences';


-- 4. Absence writes --------------------------------------------------------------------------------------------

-- Writes several batches of absence upserts and deletes of one tenant in one call: one lock, one plan, one
-- commit. Its caller is src/store/absences.ts (writeAbsences); src/store/absence-write-queue.ts groups the
-- writes of a tenant that arrive together, only batches that share no absence id, and a lone write is a group
-- of one.
--
-- p_ids … p_period_types are the upserts, one array element per absence and column (canonical, links resolved
-- to ids, no id twice, none among the deletes), p_upsert_batches the batch (1 to p_batches) of each;
-- p_linked_* are the distinct ids each batch links to, and p_deletes the ids to delete. It takes the tenant
-- lock first; the statement after it runs with a snapshot taken once the lock was granted (a VOLATILE
-- function's statements each take their own), so it sees every write committed before. The arguments travel
-- and are parsed before the lock, so the lock is held only while the rows are compared and written.
--
-- Each batch is written as if alone, the batches one after another in number order: its changed upserts in
-- order, then its deletes of existing absences, with consecutive versions. A batch whose links name nothing
-- writes nothing and reports them while the others are written; its counts are what it would have written.
-- Returns one row per batch, 1 to p_batches.
--
-- The change data is built here from the columns, in the canonical key order of src/domain/collections.ts
-- (canonicalAbsence) with the changeVersion first: the text equals JSON.stringify(withChangeVersion(…)) of
-- the same absence (test/absence-writes.test.ts holds the two together).
--
-- Planned for every call (plan_cache_mode): a generic plan is made without the call's arrays, on the table as
-- it is then; made while absences holds a handful of rows, it may find each stored absence through an index
-- that reads all of the tenant's absences, and it is kept for good (the embedded store never analyzes, and
-- PostgreSQL replans only after an analyze). A plan made for each call fits the arrays and the table.
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
) language plpgsql set plan_cache_mode = force_custom_plan as $$
#variable_conflict use_column
begin
  perform 1 from tenants where id = p_tenant for update;
  if not found then
    raise exception 'Tenant % does not exist.', p_tenant;
  end if;
  return query
  with compared as (
    -- Each upsert beside its stored row, with its batch (ub). The lateral subqueries with "limit 1" are index
    -- probes, one per row: the limit keeps them from being flattened into joins that a plan made with stale
    -- statistics might answer by reading all of a tenant's rows.
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
    -- Batches with an upsert whose links differ from its stored row's: only theirs are looked up. An absence's
    -- person and definitions cannot be deleted while it links to them (409 EntityInUse, under the tenant
    -- lock), so the links a stored row keeps all exist.
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
             -- Plain quotes: the date parsed as a date and the enumerations pass the checks of absences, or
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


-- 5. Webhooks --------------------------------------------------------------------------------------------------

-- Webhook subscriptions to a collection of a tenant. Webhooks are never deleted (deletion is soft), which the
-- delivery tables rely on (section 6).
create table webhooks (
  id uuid primary key,
  tenant_id text not null references tenants (id),
  collection text not null,
  destination_url text not null,
  -- The externalReferences selection of the create request, e.g. {"people": ["@employee-number"]}.
  external_references jsonb not null default '{}',
  -- The signing key ("whsec_…"), encrypted under the installation key (SecretBox); never stored in clear.
  key_encrypted text not null,
  -- The key replaced by the last rotation; it signs beside key_encrypted until previous_key_valid_until.
  previous_key_encrypted text,
  previous_key_valid_until timestamptz,
  -- As written; an Enabled row past valid_until reads as Disabled/Expired before the sweeper writes it.
  status text not null default 'Enabled' check (status in ('Enabled', 'Disabled')),
  disabled_reason text check (disabled_reason in ('Expired', 'RetriesExhausted', 'EndpointGone')),
  valid_until timestamptz not null,
  created_at timestamptz not null default now(),
  -- Changes after this version are sent to the webhook; earlier ones are covered by the initial load.
  created_version bigint not null,
  -- Soft delete: gone from the API and from delivery, while its delivery log stays readable.
  deleted_at timestamptz,
  -- How many partitions (leases) its deliveries are split into, fixed when it is created (section 6).
  partitions int not null default 1 check (partitions between 1 and 64),
  constraint webhooks_disabled_has_reason check ((status = 'Disabled') = (disabled_reason is not null))
);
create index webhooks_by_tenant on webhooks (tenant_id, created_at) where deleted_at is null;
create index webhooks_enabled_by_collection on webhooks (tenant_id, collection) where status = 'Enabled' and deleted_at is null;
-- The expiry sweep (every second) finds Enabled webhooks by valid_until.
create index webhooks_enabled_by_valid_until on webhooks (valid_until) where status = 'Enabled';

-- Tells the delivery workers at once when a webhook appears or changes in a way that matters for sending
-- (created, disabled, expired, deleted, key rotated), so "delivery stops at once" needs no polling.
create function timehook_webhook_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('timehook_webhooks', new.id::text);
  return null;
end
$$;
create trigger webhooks_notify_workers
  after insert or update of status, deleted_at, valid_until, destination_url, key_encrypted,
    previous_key_encrypted, previous_key_valid_until, external_references
  on webhooks for each row execute function timehook_webhook_changed();


-- 6. Delivery (SPEC §3) and its log (§1.3) ---------------------------------------------------------------------
--
-- docs/design/delivery.md. The change log is the queue: an event needs no row before it is sent. A worker that
-- holds a lane's lease reads the lane's changes above its cursor (or is woken by the commit's NOTIFY), sends
-- them, and writes one deliveries row per event after the outcome, in batches. Lock order: a statement that
-- locks several lane rows takes them in (webhook_id, part) order, so two statements never wait in a circle.

-- The lanes of each webhook: partitions 0 to webhooks.partitions - 1 (an entity belongs to partition
-- entity_id mod partitions), each leased to one worker at a time.
create table delivery_lanes (
  webhook_id uuid not null references webhooks (id),
  part int not null check (part >= 0),
  -- The worker that sends this lane's events until lease_until (SPEC §4); epoch grows with every claim.
  lease_owner text,
  lease_until timestamptz,
  epoch bigint not null default 0,
  -- Every change of the lane at or below this version has a deliveries row; the next owner reads above it.
  -- Only raised (greatest), so a late write of an earlier owner cannot move it back.
  cursor bigint not null,
  primary key (webhook_id, part)
);

-- Gives a new webhook its lanes, with the cursor at its created_version, in the statement that inserts it.
create function timehook_create_lanes() returns trigger language plpgsql as $$
begin
  insert into delivery_lanes (webhook_id, part, cursor)
    select new.id, g, new.created_version from generate_series(0, new.partitions - 1) g;
  return null;
end
$$;
create trigger webhooks_create_lanes after insert on webhooks
  for each row execute function timehook_create_lanes();

-- One row per event of a webhook that was attempted, abandoned or redelivered: the delivery log. A row is
-- written after the event's first outcome (store/lanes.ts writeOutcomes), so a delivery at the first attempt
-- costs one insert. seq 0 is the event itself; 1, 2… are redeliveries of it (the same change_version).
--
-- No foreign key to webhooks: webhooks are never deleted, and a foreign key would add a trigger query for every
-- inserted row.
create table deliveries (
  id bigint generated always as identity primary key,
  webhook_id uuid not null,
  change_version bigint not null,
  seq int not null default 0,
  change_type text not null check (change_type in ('InsertOrUpdate', 'Delete')),
  entity_id bigint not null,
  -- The exact bytes POSTed on every attempt: {"changeType","data"} with requested externalReferences.
  body text not null,
  -- Pending: a redelivery not yet attempted. Failed: the last attempt failed and another is due at
  -- next_attempt_at. Delivered: a 2xx arrived. Abandoned: never to be sent, because the webhook was disabled
  -- (RetriesExhausted, EndpointGone, Expired) or deleted first.
  status text not null check (status in ('Pending', 'Failed', 'Delivered', 'Abandoned')),
  attempt_count int not null default 0,
  next_attempt_at timestamptz,
  -- When the change was committed (for commit-to-acknowledge latency); now() for a redelivery.
  committed_at timestamptz not null,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  -- Set on a manual redelivery: the delivery whose event it sends again.
  redelivery_of bigint,
  -- The latest attempt, kept in the row: the successful attempt lives only here (most deliveries succeed at
  -- once, so they need no delivery_attempts row); failed attempts are in delivery_attempts as well.
  last_attempt_at timestamptz,
  last_duration_ms int,
  last_status_code int,
  last_error text,
  last_response_body text,
  unique (webhook_id, change_version, seq)
);
-- The delivery log, newest first.
create index deliveries_by_webhook on deliveries (webhook_id, id);
-- The open work of a lane (failed events waiting for a retry, redeliveries), read when a worker claims it.
create index deliveries_open on deliveries (webhook_id, entity_id, change_version, seq)
  where status in ('Pending', 'Failed');

-- The failed attempts of each delivery (the successful one is the delivery's last_* columns).
create table delivery_attempts (
  delivery_id bigint not null references deliveries (id) on delete cascade,
  attempt int not null,
  at timestamptz not null,
  duration_ms int not null,
  status_code int,
  -- Why no answer arrived: timeout, connection refused, TLS, blocked address…
  error text,
  -- The first 4 KiB of the answer (lossily decoded as UTF-8).
  response_body text,
  primary key (delivery_id, attempt)
);

-- The delivery workers (SPEC §4). Each registers here and refreshes last_seen whenever it renews its leases.
-- The workers seen within the lease TTL are the live ones; each claims at most its fair share of the lanes.
create table workers (
  -- hostname:pid:random, also the lease_owner of the lanes it holds.
  id text primary key,
  host text not null,
  pid int not null,
  started_at timestamptz not null default now(),
  last_seen timestamptz not null default now()
);


-- Statistics ---------------------------------------------------------------------------------------------------

-- No statement filters, joins or sorts on an event body, a stored object or a response body, so statistics on
-- them serve no plan; gathering them would make every ANALYZE (autovacuum's on PostgreSQL, or one run by hand
-- on the embedded store, where the memory WebAssembly takes is never given back) read, copy and sort hundreds
-- of bytes per sampled row.
alter table resources alter column body set statistics 0;
alter table changes alter column data set statistics 0;
alter table deliveries alter column body set statistics 0, alter column last_response_body set statistics 0;
alter table delivery_attempts alter column response_body set statistics 0;
