-- Timehook schema, version 7: one webhook's delivery split across workers (issue 5, scale-out).
--
-- Until now a webhook was one lease: only its holder fanned out and sent, so a single busy webhook was
-- delivered by one process however many ran. Now a webhook has `partitions` (1 to 64, fixed when it is
-- created, from TIMEHOOK_DELIVERY_PARTITIONS), and each partition is a lease of its own: a row of
-- delivery_partitions with the lease and the partition's low-water mark, both moved here from webhooks.
--
-- An entity belongs to partition timehook_partition(entity_id, partitions), for as long as the webhook
-- lives, so all events of one entity are sent by one partition's holder, in id order: per-entity order needs
-- no more coordination than before. Any partition's holder runs the fan-out (it already runs under the
-- webhook row's lock and cursor) and loads only its partition's open deliveries.
--
-- Lock order everywhere: the webhook row, then its partition rows (the sync, disabling, abandoning); lease
-- statements take partition rows only.

alter table webhooks
  add column partitions int not null default 1 check (partitions between 1 and 64);

create table delivery_partitions (
  webhook_id uuid not null references webhooks (id),
  part int not null,
  -- The worker that sends this partition's deliveries until lease_until (SPEC §4).
  lease_owner text,
  lease_until timestamptz,
  -- Every delivery of this partition with id < open_from is Delivered or Abandoned (version 6's mark).
  open_from bigint not null default 0,
  primary key (webhook_id, part),
  check (part >= 0)
);

insert into delivery_partitions (webhook_id, part, lease_owner, lease_until, open_from)
  select id, 0, lease_owner, lease_until, open_from from webhooks;

-- A new webhook gets its partition rows in the statement that inserts it.
create function timehook_create_partitions() returns trigger language plpgsql as $$
begin
  insert into delivery_partitions (webhook_id, part)
    select new.id, g from generate_series(0, new.partitions - 1) g;
  return null;
end
$$;
create trigger webhooks_create_partitions after insert on webhooks
  for each row execute function timehook_create_partitions();

-- The partition of an entity; src/store/deliveries.ts never computes it in JS.
create function timehook_partition(p_entity bigint, p_partitions int) returns int
language sql immutable parallel safe as $$
  select (((p_entity % p_partitions) + p_partitions) % p_partitions)::int
$$;

drop function timehook_sync_deliveries(uuid, text, int, bigint, int, bigint);
drop function timehook_open_from(uuid, bigint, bigint);
alter table webhooks drop column lease_owner, drop column lease_until, drop column open_from;

-- The open_from of a partition after checking its deliveries in [p_from, p_hint): p_hint when all of them are
-- settled, else the first open one. The caller holds the webhook's row lock (so no delivery of the webhook
-- is being inserted) and p_from is the partition's current open_from.
create function timehook_open_from(p_webhook uuid, p_part int, p_partitions int, p_from bigint, p_hint bigint)
returns bigint
language sql stable set enable_bitmapscan = off as $$
  select coalesce(min(d.id), greatest(p_from, p_hint))
    from deliveries d
   where d.webhook_id = p_webhook and d.id >= p_from and d.id < p_hint and d.status in ('Pending', 'Failed')
     and (p_partitions = 1 or timehook_partition(d.entity_id, p_partitions) = p_part)
$$;

-- As in version 6, for one partition (p_part) of the webhook: the lease checked is the partition's, the
-- low-water mark moved is the partition's, and the load returns only the partition's open deliveries (a walk
-- of the (webhook_id, id) index that skips the other partitions' rows). The fan-out is the webhook's, as
-- before: whichever partition's holder syncs first moves the new changes into deliveries.
create function timehook_sync_deliveries(p_webhook uuid, p_part int, p_owner text, p_limit int, p_after bigint,
                                         p_space int, p_low bigint)
returns table (
  id bigint, entity_id bigint, change_version bigint, change_type text, body text, attempt_count int,
  next_attempt_at timestamptz, committed_at timestamptz,
  tenant_id text, collection text, destination_url text, external_references jsonb, key_encrypted text,
  previous_key_encrypted text, previous_key_valid_until timestamptz, valid_until timestamptz, active boolean,
  held boolean, fanned_out int, partitions int)
language plpgsql set enable_bitmapscan = off as $$
#variable_conflict use_column
declare
  w record;
  p record;
  v_fanned int := 0;
  v_last bigint;
  v_open_from bigint;
begin
  perform set_config('synchronous_commit', 'off', true);
  select wh.tenant_id, wh.collection, wh.destination_url, wh.external_references, wh.key_encrypted,
         wh.previous_key_encrypted, wh.previous_key_valid_until, wh.valid_until, wh.partitions,
         (wh.status = 'Enabled' and wh.deleted_at is null and wh.valid_until > now()) as active,
         greatest(coalesce(wh.delivery_cursor, wh.created_version), wh.created_version) as cursor
    into w
    from webhooks wh where wh.id = p_webhook for update;
  if not found then
    return;
  end if;
  select coalesce(dp.lease_owner = p_owner, false) as held, dp.open_from
    into p
    from delivery_partitions dp where dp.webhook_id = p_webhook and dp.part = p_part for update;
  if not found then
    return;
  end if;
  v_open_from := p.open_from;

  if p.held and w.active and p_limit > 0 then
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
    if v_fanned > 0 then
      update webhooks set delivery_cursor = v_last where webhooks.id = p_webhook;
    end if;
  end if;

  if p.held and p_low > v_open_from then
    v_open_from := timehook_open_from(p_webhook, p_part, w.partitions, v_open_from, p_low);
    if v_open_from <> p.open_from then
      update delivery_partitions set open_from = v_open_from
       where webhook_id = p_webhook and part = p_part;
    end if;
  end if;

  return query
    select null::bigint, null::bigint, null::bigint, null::text, null::text, null::int, null::timestamptz,
           null::timestamptz, w.tenant_id, w.collection, w.destination_url, w.external_references,
           w.key_encrypted, w.previous_key_encrypted, w.previous_key_valid_until, w.valid_until, w.active,
           p.held, v_fanned, w.partitions;

  if p.held and w.active and p_space > 0 then
    return query
      select d.id, d.entity_id, d.change_version, d.change_type, d.body, d.attempt_count, d.next_attempt_at,
             d.committed_at, null::text, null::text, null::text, null::jsonb, null::text, null::text,
             null::timestamptz, null::timestamptz, null::boolean, null::boolean, null::int, null::int
        from deliveries d
       where d.webhook_id = p_webhook and d.id > p_after and d.id >= v_open_from
         and d.status in ('Pending', 'Failed')
         and (w.partitions = 1 or timehook_partition(d.entity_id, w.partitions) = p_part)
       order by d.id limit p_space;
  end if;
end
$$;
