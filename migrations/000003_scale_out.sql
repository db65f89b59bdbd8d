-- Timehook schema, version 3: many worker processes over one PostgreSQL (SPEC §4, issue 4).
--
-- Every delivery worker registers here and refreshes last_seen whenever it renews its leases. The workers
-- seen within the lease TTL are the live ones; each claims at most its fair share of the sendable webhooks
-- (ceil(webhooks / live workers)) and hands surplus leases over when new workers appear.

create table workers (
  -- hostname:pid:random, also the lease_owner of the webhooks it holds.
  id text primary key,
  host text not null,
  pid int not null,
  started_at timestamptz not null default now(),
  last_seen timestamptz not null default now()
);

-- The delivery log at millions of rows (EXPLAIN findings in README, Deployment): a filter by status Abandoned
-- walked every delivery of the webhook. Abandoned rows get a small partial index of their own: they are
-- written only when a webhook stops, never on the hot path. (A full index by entity would serve the entity
-- filter too, but costs 3-5x on every fan-out and acknowledgement at this size; that filter reads in bounded
-- windows instead.) Built without CONCURRENTLY, as migrations run in a transaction: on a large existing
-- table, writes to deliveries wait while it is built.
create index deliveries_abandoned on deliveries (webhook_id, id) where status = 'Abandoned';
