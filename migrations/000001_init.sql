-- Timehook schema, version 1: tenants and their clients, signing keys, the collections,
-- the tenant-wide change log, and webhook subscriptions.

create table tenants (
  id text primary key,
  -- The tenant-wide change counter: taken under this row's lock, so commit order = version order (SPEC §2).
  last_version bigint not null default 0,
  -- Every change at or below this version has been pruned; older delta tokens get 410.
  pruned_through_version bigint not null default 0,
  created_at timestamptz not null default now()
);

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

create table signing_keys (
  kid text primary key,
  alg text not null,
  public_jwk jsonb not null,
  private_jwk_encrypted text not null,
  created_at timestamptz not null default now(),
  -- When set, the key no longer signs; it is published until its last token has expired.
  retired_at timestamptz
);

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

-- Absences, one column per field (batch ingest writes them with one unnest statement, far cheaper than a
-- JSON body); the API builds the canonical object from them. Links are checked by the ingest code under the
-- tenant lock; the link columns also serve the "still in use" checks of person/definition deletes.
create table absences (
  tenant_id text not null references tenants (id),
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
  day_part text not null,
  request_id text,
  status text not null,
  approval_level text not null,
  is_locked boolean not null,
  period_type text not null,
  primary key (tenant_id, id)
);
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

-- The change log: one row per committed change, read by delta and by delivery.
create table changes (
  tenant_id text not null references tenants (id),
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
create index changes_by_commit_time on changes (committed_at);
create index changes_by_collection on changes (tenant_id, collection, version);

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
  constraint webhooks_disabled_has_reason check ((status = 'Disabled') = (disabled_reason is not null))
);
create index webhooks_by_tenant on webhooks (tenant_id, created_at) where deleted_at is null;
create index webhooks_enabled_by_collection on webhooks (tenant_id, collection) where status = 'Enabled' and deleted_at is null;
-- The expiry sweep (every second) finds Enabled webhooks by valid_until.
create index webhooks_enabled_by_valid_until on webhooks (valid_until) where status = 'Enabled';
