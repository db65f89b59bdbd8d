-- Timehook schema, version 8: the syncs of many webhook partitions in one statement (issue 5).
--
-- A change to a tenant wakes every runner of the tenant's webhooks a worker holds, and each ran its own sync
-- statement: ten webhooks meant ten statements and ten commits per change notification, and below saturation
-- that fixed cost per statement was most of PostgreSQL's work per delivery. A worker now hands the plain syncs
-- (webhooks without externalReferences) asked for in the same turn of its event loop to this function, which
-- runs timehook_sync_deliveries (version 7) for each, unchanged, in one transaction.
--
-- Lock order: the requests run sorted by (webhook id, partition), so a statement takes webhook rows in
-- ascending id order, each followed by its partition rows. Every other statement that locks several webhook
-- or partition rows and waits for them takes them in the same order (src/store/delivery-leases.ts renew and
-- release, src/store/webhooks.ts expireWebhooks; the abandon sweep skips locked rows), so two of them never
-- wait for each other in a circle.
create function timehook_sync_deliveries_many(p_owner text, p_webhooks uuid[], p_parts int[], p_limits int[],
                                              p_afters bigint[], p_spaces int[], p_lows bigint[])
returns table (
  request int, id bigint, entity_id bigint, change_version bigint, change_type text, body text,
  attempt_count int, next_attempt_at timestamptz, committed_at timestamptz,
  tenant_id text, collection text, destination_url text, external_references jsonb, key_encrypted text,
  previous_key_encrypted text, previous_key_valid_until timestamptz, valid_until timestamptz, active boolean,
  held boolean, fanned_out int, partitions int)
language plpgsql as $$
declare
  r record;
begin
  for r in
    select u.webhook, u.part, u.lim, u.after_id, u.space, u.low, u.n
      from unnest(p_webhooks, p_parts, p_limits, p_afters, p_spaces, p_lows)
             with ordinality as u(webhook, part, lim, after_id, space, low, n)
     order by u.webhook, u.part
  loop
    -- Each request's rows as timehook_sync_deliveries returns them (its target row first), tagged with the
    -- request's position in the arrays (1-based). A webhook that no longer exists returns no rows.
    return query
      select r.n::int, s.*
        from timehook_sync_deliveries(r.webhook, r.part, p_owner, r.lim, r.after_id, r.space, r.low) s;
  end loop;
end
$$;
