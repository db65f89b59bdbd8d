// The SQL of delivery engine v2 (docs/design/delivery.md): leases on delivery lanes (a webhook, or one
// partition of it), reading a lane's changes above its cursor with the rows they already have, writing a batch
// of outcomes in one statement, and abandoning a stopped webhook's events. Times are the store's clock.

import { numberArray, prepared, type Db, type Queryable } from './db.ts';
import type { ReferenceSelection } from '../domain/external-references.ts';
import { WEBHOOKS_CHANNEL } from './deliveries.ts';

/** A lane's key in a worker's maps: the webhook id for partition 0, `<id>#<part>` for the others. */
export const laneKey = (webhookId: string, part: number): string =>
  part === 0 ? webhookId : `${webhookId}#${part}`;

export function parseLaneKey(key: string): { webhookId: string; part: number } {
  const hash = key.indexOf('#');
  return hash < 0
    ? { webhookId: key, part: 0 }
    : { webhookId: key.slice(0, hash), part: Number(key.slice(hash + 1)) };
}

/** What a worker needs to send a lane's events. */
export interface LaneTarget {
  webhookId: string;
  part: number;
  partitions: number;
  tenantId: string;
  collection: string;
  destinationUrl: string;
  externalReferences: ReferenceSelection;
  /** Ciphertexts (SecretBox) of the current key, and of the replaced one while its overlap lasts. */
  keyEncrypted: string;
  previousKeyEncrypted: string | null;
  previousKeyValidUntil: Date | null;
  validUntil: Date;
  /** Enabled, not deleted, not past validUntil. */
  active: boolean;
  /** Every change of the lane at or below this has a deliveries row. */
  cursor: number;
}

interface TargetRow {
  webhook_id: string;
  part: number;
  partitions: number;
  tenant_id: string;
  collection: string;
  destination_url: string;
  external_references: ReferenceSelection | null;
  key_encrypted: string;
  previous_key_encrypted: string | null;
  previous_key_valid_until: Date | null;
  valid_until: Date;
  active: boolean;
  cursor: number;
}

const TARGET_COLUMNS = `w.id as webhook_id, l.part, w.partitions, w.tenant_id, w.collection, w.destination_url,
  w.external_references, w.key_encrypted, w.previous_key_encrypted, w.previous_key_valid_until, w.valid_until,
  (w.status = 'Enabled' and w.deleted_at is null and w.valid_until > now()) as active, l.cursor`;

const toTarget = (r: TargetRow): LaneTarget => ({
  webhookId: r.webhook_id,
  part: r.part,
  partitions: r.partitions,
  tenantId: r.tenant_id,
  collection: r.collection,
  destinationUrl: r.destination_url,
  externalReferences: r.external_references ?? {},
  keyEncrypted: r.key_encrypted,
  previousKeyEncrypted: r.previous_key_encrypted,
  previousKeyValidUntil: r.previous_key_valid_until,
  validUntil: r.valid_until,
  active: r.active,
  cursor: r.cursor,
});

const MS = `$2::double precision * interval '1 millisecond'`;

/**
 * Claims up to `limit` lanes of sendable webhooks (Enabled, not deleted, not past validUntil) whose lease is
 * free or expired, for `owner` until now + ttlMs, raising each lane's epoch. Rows other transactions hold
 * are skipped.
 */
export async function claimLanes(
  db: Queryable,
  owner: string,
  ttlMs: number,
  limit: number,
): Promise<LaneTarget[]> {
  const rows = await db.query<TargetRow>(
    `with claimed as (
       update delivery_lanes l
          set lease_owner = $1, lease_until = now() + ${MS}, epoch = l.epoch + 1
        where (l.webhook_id, l.part) in (
          select f.webhook_id, f.part from delivery_lanes f join webhooks fw on fw.id = f.webhook_id
           where fw.status = 'Enabled' and fw.deleted_at is null and fw.valid_until > now()
             and (f.lease_until is null or f.lease_until < now())
           order by f.lease_until nulls first, fw.created_at, f.webhook_id, f.part
           limit $3
           for update of f skip locked)
       returning l.webhook_id, l.part, l.cursor
     )
     select ${TARGET_COLUMNS} from claimed l join webhooks w on w.id = l.webhook_id`,
    [owner, ttlMs, limit],
  );
  return rows.map(toTarget);
}

/** The lane's webhook as it is now (keys rotated, disabled, deleted…), or undefined when it is gone. */
export async function readLaneTarget(
  db: Queryable,
  webhookId: string,
  part: number,
): Promise<LaneTarget | undefined> {
  const rows = await db.query<TargetRow>(
    `select ${TARGET_COLUMNS} from delivery_lanes l join webhooks w on w.id = l.webhook_id
      where l.webhook_id = $1::uuid and l.part = $2::int`,
    [webhookId, part],
  );
  return rows[0] && toTarget(rows[0]);
}

/** Locks lane rows in (webhook, part) order, the order every multi-row lane statement takes them in. */
const LOCK_IN_ORDER = (where: string): string =>
  `select webhook_id, part from delivery_lanes where ${where} order by webhook_id, part for update`;

function splitKeys(keys: readonly string[]): { ids: string[]; parts: number[] } {
  const parsed = keys.map(parseLaneKey);
  return { ids: parsed.map((k) => k.webhookId), parts: parsed.map((k) => k.part) };
}

/** Extends `owner`'s leases of these lanes to now + ttlMs; returns the keys it still holds. */
export async function renewLanes(
  db: Queryable,
  owner: string,
  ttlMs: number,
  keys: readonly string[],
): Promise<string[]> {
  if (keys.length === 0) return [];
  const { ids, parts } = splitKeys(keys);
  const rows = await db.query<{ webhook_id: string; part: number }>(
    `with mine as (
       ${LOCK_IN_ORDER('lease_owner = $1 and (webhook_id, part) in (select * from unnest($3::uuid[], $4::int[]))')}
     )
     update delivery_lanes l set lease_until = now() + ${MS}
       from mine where l.webhook_id = mine.webhook_id and l.part = mine.part
     returning l.webhook_id, l.part`,
    [owner, ttlMs, ids, parts],
  );
  return rows.map((r) => laneKey(r.webhook_id, r.part));
}

/**
 * Gives up `owner`'s leases (these lanes, or all of them) and announces their webhooks on WEBHOOKS_CHANNEL,
 * so another worker claims them at once.
 */
export async function releaseLanes(db: Queryable, owner: string, keys?: readonly string[]): Promise<void> {
  const { ids, parts } = splitKeys(keys ?? []);
  await db.query(
    `with mine as (
       ${LOCK_IN_ORDER('lease_owner = $1 and ($2::boolean or (webhook_id, part) in (select * from unnest($3::uuid[], $4::int[])))')}
     ), released as (
       update delivery_lanes l set lease_owner = null, lease_until = null
         from mine where l.webhook_id = mine.webhook_id and l.part = mine.part
       returning l.webhook_id
     )
     select pg_notify($5, id::text) from (select distinct webhook_id as id from released) r`,
    [owner, keys === undefined, ids, parts, WEBHOOKS_CHANNEL],
  );
}

/** Embedded store only (one process, proved by the data directory lock): clears leases a killed process left. */
export async function clearAllLanes(db: Queryable): Promise<void> {
  await db.query(
    'update delivery_lanes set lease_owner = null, lease_until = null where lease_owner is not null',
  );
}

/** A change of a lane, with the state of its deliveries row when it has one. */
export interface LaneChange {
  version: number;
  entityId: number;
  changeType: 'InsertOrUpdate' | 'Delete';
  /** The change's data as stored (JSON text, changeVersion first). */
  data: string;
  committedAt: Date;
  /**
   * The event's row (seq 0), if any: settled (Delivered, Abandoned) or open (Pending, Failed; a lane loads those
   * by readLaneOpenHeads and readEntityOpenRows, so only the status is read here).
   */
  row: { status: string } | null;
}

/** Whether `entity` belongs to partition `part` of `partitions` (entity id mod partitions, never negative). */
const IN_PART = (entity: string, part = '$2', partitions = '$3') =>
  `(${partitions}::int = 1 or ((((${entity}) % ${partitions}::int) + ${partitions}::int) % ${partitions}::int) = ${part}::int)`;

/**
 * The lane's changes above `after`, in version order, at most `limit`, each with its row if it has one; and
 * `through`, the version the next read starts above: the last change returned when the limit was reached,
 * else the tenant's last committed version read before the changes (commit order = version order, so nothing
 * at or below it can still appear).
 */
export async function readLaneChanges(
  db: Queryable,
  lane: { webhookId: string; tenantId: string; collection: string; part: number; partitions: number },
  after: number,
  limit: number,
): Promise<{ changes: LaneChange[]; through: number }> {
  // One statement: the tenant's last version is read in the same snapshot as the changes up to it.
  const rows = await db.query<{
    last_version: number;
    version: number | null;
    entity_id: number;
    change_type: 'InsertOrUpdate' | 'Delete';
    data: string;
    committed_at: Date;
    status: string | null;
  }>(
    prepared(`select t.last_version, c.*
       from tenants t
       left join lateral (
         select c.version, c.entity_id, c.change_type, c.data::text as data, c.committed_at,
                d.status
           from changes c
           left join deliveries d on d.webhook_id = $3::uuid and d.change_version = c.version and d.seq = 0
          where c.tenant_id = t.id and c.collection = $2 and c.version > $4::bigint
            and c.version <= t.last_version
            and ${IN_PART('c.entity_id', '$5', '$6')}
          order by c.version
          limit $7) c on true
      where t.id = $1`),
    [lane.tenantId, lane.collection, lane.webhookId, after, lane.part, lane.partitions, limit],
  );
  const lastVersion = rows[0]?.last_version ?? after;
  const found = rows.filter((r) => r.version !== null);
  const changes = found.map((r) => ({
    version: r.version!,
    entityId: r.entity_id,
    changeType: r.change_type,
    data: r.data,
    committedAt: r.committed_at,
    row: r.status === null ? null : { status: r.status },
  }));
  const through = found.length === limit ? found.at(-1)!.version! : Math.max(after, lastVersion);
  return { changes, through };
}

/** An open row (Pending or Failed) of a lane: a failed event waiting for its retry, or a redelivery. */
export interface OpenRow {
  version: number;
  seq: number;
  entityId: number;
  changeType: 'InsertOrUpdate' | 'Delete';
  body: string;
  attemptCount: number;
  nextAttemptAt: Date | null;
  committedAt: Date;
}

type OpenRowRow = {
  change_version: number;
  seq: number;
  entity_id: number;
  change_type: 'InsertOrUpdate' | 'Delete';
  body: string;
  attempt_count: number;
  next_attempt_at: Date | null;
  committed_at: Date;
};

const OPEN_COLUMNS = `change_version, seq, entity_id, change_type, body, attempt_count, next_attempt_at, committed_at`;

const toOpenRow = (r: OpenRowRow): OpenRow => ({
  version: r.change_version,
  seq: r.seq,
  entityId: r.entity_id,
  changeType: r.change_type,
  body: r.body,
  attemptCount: r.attempt_count,
  nextAttemptAt: r.next_attempt_at,
  committedAt: r.committed_at,
});

/**
 * What a worker reads when it claims a lane: the first open row (Pending or Failed, seq 0) of each entity, at
 * most `limit` entities — the others' rows are read back as those entities are delivered — and every open
 * redelivery (seq > 0), in (entity, version, seq) order.
 */
export async function readLaneOpenHeads(
  db: Queryable,
  lane: { webhookId: string; part: number; partitions: number },
  limit: number,
): Promise<{ heads: OpenRow[]; redeliveries: OpenRow[] }> {
  const heads = await db.query<OpenRowRow>(
    `select distinct on (entity_id) ${OPEN_COLUMNS} from deliveries
      where webhook_id = $1::uuid and status in ('Pending', 'Failed') and seq = 0 and ${IN_PART('entity_id')}
      order by entity_id, change_version
      limit $4`,
    [lane.webhookId, lane.part, lane.partitions, limit],
  );
  return { heads: heads.map(toOpenRow), redeliveries: await readRedeliveries(db, lane) };
}

/** The lane's open redeliveries (seq > 0), in (entity, version, seq) order. */
export async function readRedeliveries(
  db: Queryable,
  lane: { webhookId: string; part: number; partitions: number },
): Promise<OpenRow[]> {
  const rows = await db.query<OpenRowRow>(
    `select ${OPEN_COLUMNS} from deliveries
      where webhook_id = $1::uuid and status in ('Pending', 'Failed') and seq > 0 and ${IN_PART('entity_id')}
      order by entity_id, change_version, seq`,
    [lane.webhookId, lane.part, lane.partitions],
  );
  return rows.map(toOpenRow);
}

/** One entity's open rows (seq 0) after `afterVersion`, in version order, at most `limit`. */
export async function readEntityOpenRows(
  db: Queryable,
  webhookId: string,
  entityId: number,
  afterVersion: number,
  limit: number,
): Promise<OpenRow[]> {
  const rows = await db.query<OpenRowRow>(
    prepared(`select ${OPEN_COLUMNS} from deliveries
      where webhook_id = $1::uuid and entity_id = $2::bigint and status in ('Pending', 'Failed') and seq = 0
        and change_version > $3::bigint
      order by change_version limit $4`),
    [webhookId, entityId, afterVersion, limit],
  );
  return rows.map(toOpenRow);
}

/** One outcome to write: the event's row as it stands after an attempt (or its abandonment). */
export interface OutcomeRow {
  webhookId: string;
  version: number;
  seq: number;
  entityId: number;
  changeType: string;
  /** Pending: a spilled event, waiting behind a failed one of its entity. */
  status: 'Delivered' | 'Failed' | 'Pending' | 'Abandoned';
  body: string;
  committedAt: number;
  attemptCount: number;
  /** When status is Failed: when the next attempt is due (ms since the epoch). */
  nextAttemptAt: number | null;
  /** The attempt that led here; null when none was made (Abandoned). */
  attempt: {
    at: number;
    durationMs: number;
    statusCode: number | null;
    error: string | null;
    responseBody: string | null;
  } | null;
}

/** PostgreSQL text cannot hold NUL; a receiver's answer might. */
const storable = (text: string | null): string | null =>
  text === null ? null : text.replaceAll('\u0000', '');

/**
 * Whether a written outcome's attempt replaces the row's latest attempt: it is one (not an abandonment), not
 * older than the row's, and not a failure arriving after the acknowledgement.
 */
const NEWER_ATTEMPT = `(excluded.last_attempt_at is not null and excluded.attempt_count >= d.attempt_count
  and (d.status <> 'Delivered' or excluded.status = 'Delivered'))`;

const WRITE_OUTCOMES = prepared(`with written as (
    insert into deliveries as d (webhook_id, change_version, seq, entity_id, change_type, status, body,
                                 committed_at, attempt_count, next_attempt_at, delivered_at, last_attempt_at,
                                 last_duration_ms, last_status_code, last_error, last_response_body)
    select u.w, u.v, u.s, u.e, u.t, u.st, u.b, to_timestamp(u.c / 1000), u.n,
           to_timestamp(u.due / 1000), case when u.st = 'Delivered' then to_timestamp(u.at / 1000) end,
           to_timestamp(u.at / 1000), u.ms, u.code, u.err, u.resp
      from unnest($1::uuid[], $2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::text[], $7::text[],
                  $8::float8[], $9::int[], $10::float8[], $11::float8[], $12::int[], $13::int[], $14::text[],
                  $15::text[])
             as u(w, v, s, e, t, st, b, c, n, due, at, ms, code, err, resp)
    on conflict (webhook_id, change_version, seq) do update
      set status = case when d.status = 'Delivered' or excluded.status = 'Delivered' then 'Delivered'
                        when d.status = 'Abandoned' then 'Abandoned' else excluded.status end,
          attempt_count = greatest(d.attempt_count, excluded.attempt_count),
          next_attempt_at = excluded.next_attempt_at,
          delivered_at = coalesce(d.delivered_at, excluded.delivered_at),
          last_attempt_at = case when ${NEWER_ATTEMPT} then excluded.last_attempt_at else d.last_attempt_at end,
          last_duration_ms = case when ${NEWER_ATTEMPT} then excluded.last_duration_ms else d.last_duration_ms end,
          last_status_code = case when ${NEWER_ATTEMPT} then excluded.last_status_code else d.last_status_code end,
          last_error = case when ${NEWER_ATTEMPT} then excluded.last_error else d.last_error end,
          last_response_body = case when ${NEWER_ATTEMPT} then excluded.last_response_body
                                    else d.last_response_body end
    returning d.id, d.webhook_id, d.change_version, d.seq
  ), attempts as (
    insert into delivery_attempts (delivery_id, attempt, at, duration_ms, status_code, error, response_body)
    select w.id, a.n, to_timestamp(a.at / 1000), a.ms, a.code, a.err, a.resp
      from unnest($16::uuid[], $17::bigint[], $18::int[], $19::int[], $20::float8[], $21::int[], $22::int[],
                  $23::text[], $24::text[]) as a(w, v, s, n, at, ms, code, err, resp)
      join written w on w.webhook_id = a.w and w.change_version = a.v and w.seq = a.s
    on conflict do nothing
  ), cursors as (
    update delivery_lanes l set cursor = greatest(l.cursor, k.cursor)
      from unnest($25::uuid[], $26::int[], $27::bigint[]) as k(w, p, cursor)
     where l.webhook_id = k.w and l.part = k.p
  )
  select id, webhook_id, change_version, seq from written`);

/**
 * Writes a batch of outcomes and lane cursors in one statement: each event's row inserted or brought up to
 * date (Delivered is never undone), failed attempts appended (a first-try success lives only in its row), each
 * cursor raised (never lowered). An event named twice in the batch keeps its last outcome. Returns the row ids
 * by `<webhook>:<version>:<seq>`.
 */
export async function writeOutcomes(
  db: Queryable,
  outcomes: readonly OutcomeRow[],
  cursors: readonly { webhookId: string; part: number; cursor: number }[],
): Promise<Map<string, number>> {
  if (outcomes.length === 0 && cursors.length === 0) return new Map();
  const latest = new Map<string, OutcomeRow>();
  for (const o of outcomes) latest.set(`${o.webhookId}:${o.version}:${o.seq}`, o);
  const rows = [...latest.values()];
  const failed = outcomes.filter((o) => o.status === 'Failed' && o.attempt !== null);
  const written = await db.query<{ id: number; webhook_id: string; change_version: number; seq: number }>(
    WRITE_OUTCOMES,
    [
      rows.map((o) => o.webhookId),
      numberArray(rows.map((o) => o.version)),
      numberArray(rows.map((o) => o.seq)),
      numberArray(rows.map((o) => o.entityId)),
      rows.map((o) => o.changeType),
      rows.map((o) => o.status),
      rows.map((o) => o.body),
      numberArray(rows.map((o) => o.committedAt)),
      numberArray(rows.map((o) => o.attemptCount)),
      numberArray(rows.map((o) => o.nextAttemptAt)),
      numberArray(rows.map((o) => o.attempt?.at ?? null)),
      numberArray(rows.map((o) => (o.attempt ? Math.round(o.attempt.durationMs) : null))),
      numberArray(rows.map((o) => o.attempt?.statusCode ?? null)),
      rows.map((o) => storable(o.attempt?.error ?? null)),
      rows.map((o) => storable(o.attempt?.responseBody ?? null)),
      failed.map((o) => o.webhookId),
      numberArray(failed.map((o) => o.version)),
      numberArray(failed.map((o) => o.seq)),
      numberArray(failed.map((o) => o.attemptCount)),
      numberArray(failed.map((o) => o.attempt!.at)),
      numberArray(failed.map((o) => Math.round(o.attempt!.durationMs))),
      numberArray(failed.map((o) => o.attempt!.statusCode)),
      failed.map((o) => storable(o.attempt!.error)),
      failed.map((o) => storable(o.attempt!.responseBody)),
      cursors.map((c) => c.webhookId),
      numberArray(cursors.map((c) => c.part)),
      numberArray(cursors.map((c) => c.cursor)),
    ],
  );
  return new Map(written.map((w) => [`${w.webhook_id}:${w.change_version}:${w.seq}`, w.id]));
}

/**
 * Marks a stopped webhook's open rows Abandoned, and writes the events a worker held in memory without a row
 * as Abandoned too (the delivery log shows what was never sent). One transaction.
 */
export async function abandonWebhook(
  db: Db,
  webhookId: string,
  held: readonly Omit<OutcomeRow, 'status' | 'attempt' | 'nextAttemptAt'>[],
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(
      `update deliveries set status = 'Abandoned', next_attempt_at = null
        where webhook_id = $1::uuid and status in ('Pending', 'Failed')`,
      [webhookId],
    );
    if (held.length > 0) {
      await writeOutcomes(
        tx,
        held.map((h) => ({ ...h, status: 'Abandoned' as const, attempt: null, nextAttemptAt: null })),
        [],
      );
    }
  });
}

/** Webhooks that stopped (disabled, expired, deleted) but still have open rows: for the sweep to abandon. */
export async function stoppedWebhooksWithOpenRows(db: Queryable, limit: number): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `select w.id from webhooks w
      where (w.status <> 'Enabled' or w.deleted_at is not null or w.valid_until <= now())
        and exists (select 1 from deliveries d where d.webhook_id = w.id and d.status in ('Pending', 'Failed'))
      limit $1`,
    [limit],
  );
  return rows.map((r) => r.id);
}
