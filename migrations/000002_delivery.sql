-- Timehook schema, version 2: the delivery engine (SPEC §3) and its log (§1.3).
--
-- The change log stays the source. Each webhook keeps a cursor (the last change version moved into
-- deliveries) and a lease (the worker that currently owns its sending). The worker holding the lease moves
-- new changes of the webhook's collection into `deliveries` — body built once, cursor advanced in the same
-- transaction — and sends them; `delivery_attempts` is the log of every attempt.

alter table webhooks
  -- Every change of the collection at or below this version is in deliveries; null = created_version.
  add column delivery_cursor bigint,
  -- The worker that owns this webhook's delivery until lease_until (renewed while it lives; SPEC §4).
  add column lease_owner text,
  add column lease_until timestamptz;

create table deliveries (
  -- Per webhook, ids grow in commit order (inserts take the webhook row's lock), so per entity id order
  -- is the order of sending.
  id bigint generated always as identity primary key,
  webhook_id uuid not null references webhooks (id),
  change_version bigint not null,
  change_type text not null check (change_type in ('InsertOrUpdate', 'Delete')),
  entity_id bigint not null,
  -- The exact bytes POSTed on every attempt: {"changeType","data"} with requested externalReferences.
  body text not null,
  -- Pending: not yet attempted, or first attempt in flight. Failed: the last attempt failed and another is
  -- scheduled at next_attempt_at. Delivered: a 2xx arrived. Abandoned: will never be sent, because the
  -- webhook was disabled (RetriesExhausted, EndpointGone, Expired) or deleted first.
  status text not null default 'Pending'
    check (status in ('Pending', 'Failed', 'Delivered', 'Abandoned')),
  attempt_count int not null default 0,
  next_attempt_at timestamptz not null default now(),
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
  last_response_body text
);
-- The open work of a webhook in sending order, and per entity (refills after an acknowledgement).
create index deliveries_open on deliveries (webhook_id, id) where status in ('Pending', 'Failed');
create index deliveries_open_by_entity on deliveries (webhook_id, entity_id, id)
  where status in ('Pending', 'Failed');
-- The delivery log, newest first.
create index deliveries_by_webhook on deliveries (webhook_id, id);

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

-- Workers are told at once when a webhook appears or changes in a way that matters for sending (created,
-- disabled, expired, deleted, key rotated), so "delivery stops at once" needs no polling.
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
