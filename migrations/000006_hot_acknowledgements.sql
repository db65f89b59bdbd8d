-- Timehook schema, version 6: acknowledgements that touch no index (issue 5).
--
-- Until now the open work of a webhook was found through partial indexes on status ('Pending', 'Failed').
-- An acknowledgement changes status, and PostgreSQL can only update a row in place (a HOT update: no new
-- index entries) when no indexed column and no column of an index predicate changes. So every
-- acknowledgement wrote a new row version elsewhere plus an entry in every index, and left dead entries in the
-- open indexes that each later load had to step over. Measured on the bench machine (PostgreSQL 15, 20,000
-- deliveries of one webhook): inserting them took 424 ms with those indexes and 232 ms without; acknowledging
-- 1,000 took 19-59 ms against 11 ms.
--
-- Now no index mentions status, and the open work is found from a per-webhook low-water mark instead:
-- webhooks.open_from, below which every delivery of the webhook is settled (Delivered or Abandoned). A runner
-- loads from it, in id order, skipping settled rows; it is advanced under the webhook's row lock by
-- timehook_sync_deliveries (below) after checking the rows it passes, so it is never ahead of the truth. A
-- settled delivery never becomes open again (a redelivery is a new row, with a higher id), so the mark only
-- moves up.
--
-- Rows are stored with half of each page free (fillfactor 50), so an acknowledgement's new row version fits
-- beside the old one: that space is what makes the update HOT. Measured (PostgreSQL 15, 20,000 deliveries of
-- 330-byte bodies, acknowledged 500 per statement): fillfactor 100 inserted in 177 ms and acknowledged in
-- 262 ms with no HOT update; 70 took 202 + 191 ms (40 % HOT); 50 took 237 + 62 ms (all HOT). The table ends
-- about as large: a non-HOT update writes the new version on another page anyway.

alter table webhooks
  -- Every delivery of this webhook with id < open_from is Delivered or Abandoned.
  add column open_from bigint not null default 0;

-- Abandoned rows keep a small index of their own for the delivery log's status filter (version 3): on a
-- column an acknowledgement never changes. (A Delivered that arrives after abandonment keeps the flag; the
-- filter checks the status too.)
alter table deliveries add column abandoned boolean not null default false;
update deliveries set abandoned = true where status = 'Abandoned';

drop index deliveries_open;
drop index deliveries_open_by_entity;
drop index deliveries_abandoned;
-- One entity's deliveries in order: refills after an acknowledgement, and the delivery log's entity filter.
create index deliveries_by_entity on deliveries (webhook_id, entity_id, id);
create index deliveries_abandoned on deliveries (webhook_id, id) where abandoned;
alter table deliveries set (fillfactor = 50);

-- Both functions below read deliveries of one webhook in id order from a point and stop early (a limit, a
-- min). Only a walk of the (webhook_id, id) index does that; with statistics from when the table was small
-- (a new installation, a burst of fan-out before autovacuum's next analyze) the planner preferred a bitmap
-- scan of every row above the point plus a sort: 37 ms instead of well under 1 ms for a window of 505 rows
-- with 13,000 above it (auto_explain, bench workload 2). Bitmap scans are off inside them.

-- The open_from of a webhook after checking the deliveries in [p_from, p_hint): p_hint when all of them are
-- settled, else the first open one. The caller holds the webhook's row lock (so no delivery of the webhook
-- is being inserted) and p_from is the webhook's current open_from.
create function timehook_open_from(p_webhook uuid, p_from bigint, p_hint bigint) returns bigint
language sql stable set enable_bitmapscan = off as $$
  select coalesce(min(d.id), greatest(p_from, p_hint))
    from deliveries d
   where d.webhook_id = p_webhook and d.id >= p_from and d.id < p_hint and d.status in ('Pending', 'Failed')
$$;

drop function timehook_sync_deliveries(uuid, text, int, bigint, int);

-- As in version 5, plus p_low: the runner's guess of where its open work starts (0 = do not move open_from).
-- The mark moves to it when every delivery below it is settled, else to the first open one. The load then
-- reads open deliveries with id > p_after and id >= open_from (a runner that starts from scratch passes
-- p_after 0 and skips the settled history).
create function timehook_sync_deliveries(p_webhook uuid, p_owner text, p_limit int, p_after bigint,
                                         p_space int, p_low bigint)
returns table (
  id bigint, entity_id bigint, change_version bigint, change_type text, body text, attempt_count int,
  next_attempt_at timestamptz, committed_at timestamptz,
  tenant_id text, collection text, destination_url text, external_references jsonb, key_encrypted text,
  previous_key_encrypted text, previous_key_valid_until timestamptz, valid_until timestamptz, active boolean,
  held boolean, fanned_out int)
language plpgsql set enable_bitmapscan = off as $$
#variable_conflict use_column
declare
  w record;
  v_fanned int := 0;
  v_last bigint;
  v_open_from bigint;
begin
  perform set_config('synchronous_commit', 'off', true);
  select wh.tenant_id, wh.collection, wh.destination_url, wh.external_references, wh.key_encrypted,
         wh.previous_key_encrypted, wh.previous_key_valid_until, wh.valid_until,
         (wh.status = 'Enabled' and wh.deleted_at is null and wh.valid_until > now()) as active,
         greatest(coalesce(wh.delivery_cursor, wh.created_version), wh.created_version) as cursor,
         coalesce(wh.lease_owner = p_owner, false) as held, wh.open_from
    into w
    from webhooks wh where wh.id = p_webhook for update;
  if not found then
    return;
  end if;
  v_open_from := w.open_from;

  if w.held and w.active and p_limit > 0 then
    with fresh as (
      select c.version, c.change_type, c.entity_id, c.data, c.committed_at
        from changes c
       where c.tenant_id = w.tenant_id and c.collection = w.collection and c.version > w.cursor
       order by c.version limit p_limit
    ), inserted as (
      -- The event body, built once from the change as stored: {"changeType","data"} (SPEC §3).
      insert into deliveries (webhook_id, change_version, change_type, entity_id, body, committed_at)
      select p_webhook, f.version, f.change_type, f.entity_id,
             '{"changeType":"' || f.change_type || '","data":' || f.data::text || '}', f.committed_at
        from fresh f order by f.version
      returning deliveries.change_version
    )
    select count(*)::int, max(inserted.change_version) into v_fanned, v_last from inserted;
  end if;

  if w.held and p_low > v_open_from then
    v_open_from := timehook_open_from(p_webhook, v_open_from, p_low);
  end if;
  if v_fanned > 0 or v_open_from <> w.open_from then
    update webhooks set delivery_cursor = case when v_fanned > 0 then v_last else delivery_cursor end,
                        open_from = v_open_from
     where webhooks.id = p_webhook;
  end if;

  return query
    select null::bigint, null::bigint, null::bigint, null::text, null::text, null::int, null::timestamptz,
           null::timestamptz, w.tenant_id, w.collection, w.destination_url, w.external_references,
           w.key_encrypted, w.previous_key_encrypted, w.previous_key_valid_until, w.valid_until, w.active,
           w.held, v_fanned;

  if w.held and w.active and p_space > 0 then
    return query
      select d.id, d.entity_id, d.change_version, d.change_type, d.body, d.attempt_count, d.next_attempt_at,
             d.committed_at, null::text, null::text, null::text, null::jsonb, null::text, null::text,
             null::timestamptz, null::timestamptz, null::boolean, null::boolean, null::int
        from deliveries d
       where d.webhook_id = p_webhook and d.id > p_after and d.id >= v_open_from
         and d.status in ('Pending', 'Failed')
       order by d.id limit p_space;
  end if;
end
$$;
