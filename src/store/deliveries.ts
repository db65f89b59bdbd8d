// Deliveries and their attempts (SPEC §3, §1.3): the fan-out of changes into deliveries with the cursor, the
// worker's loads and batched bookkeeping, abandoning work of stopped webhooks, the delivery log reads,
// redelivery and pruning. All SQL of the delivery engine lives here and in delivery-leases.ts.

import type { DeliveryStatusName } from '../domain/delivery-filter.ts';
import type { ReferenceSelection } from '../domain/external-references.ts';
import type { CollectionName } from '../domain/scopes.ts';
import { numberArray, prepared, type Db, type Queryable } from './db.ts';
import { attachExternalReferencesToChanges } from './external-references.ts';
import { disableWebhook, type DisabledReason } from './webhooks.ts';

/** A redelivery request announces the webhook id on this channel, so its worker picks it up at once. */
export const DELIVERIES_CHANNEL = 'timehook_deliveries';
/** The trigger of migration 000002 announces created and changed webhooks (their id) on this channel. */
export const WEBHOOKS_CHANNEL = 'timehook_webhooks';

export type DeliveryStatus = DeliveryStatusName;

/** What the worker needs to send a webhook's events, read under the webhook row's lock. */
export interface DispatchTarget {
  id: string;
  tenantId: string;
  collection: string;
  destinationUrl: string;
  externalReferences: ReferenceSelection;
  /** The current key's ciphertext (SecretBox). */
  keyEncrypted: string;
  /** The replaced key's ciphertext while its rotation overlap lasts, with the end of that overlap. */
  previousKeyEncrypted: string | null;
  previousKeyValidUntil: Date | null;
  validUntil: Date;
  /** Enabled, not deleted and not past validUntil (by the store's clock). */
  active: boolean;
  /** How many partitions the webhook's deliveries are split into (migration 000007). */
  partitions: number;
}

/** An open (Pending or Failed) delivery as the worker holds it. */
export interface OpenDelivery {
  id: number;
  entityId: number;
  changeVersion: number;
  changeType: string;
  body: string;
  attemptCount: number;
  nextAttemptAt: Date;
  committedAt: Date;
}

export type SyncResult =
  /** The webhook is gone or another worker owns its lease now: stop handling it. */
  | { held: false }
  | {
      held: true;
      target: DispatchTarget;
      /** How many changes became deliveries in this call. */
      fannedOut: number;
      /** False when the fan-out stopped at its limit and more changes wait. */
      caughtUp: boolean;
      /** The open deliveries loaded (id > afterId, in id order, at most `space`). */
      rows: OpenDelivery[];
    };

interface TargetRow {
  id: string;
  tenant_id: string;
  collection: string;
  destination_url: string;
  external_references: ReferenceSelection;
  key_encrypted: string;
  previous_key_encrypted: string | null;
  previous_key_valid_until: Date | null;
  valid_until: Date;
  active: boolean;
  partitions: number;
  cursor: number;
  held: boolean;
}

interface OpenRow {
  id: number;
  entity_id: number;
  change_version: number;
  change_type: string;
  body: string;
  attempt_count: number;
  next_attempt_at: Date;
  committed_at: Date;
}

const MAX_BIGINT = '9223372036854775807';
const OPEN_COLUMNS = `id, entity_id, change_version, change_type, body, attempt_count, next_attempt_at, committed_at`;
const OPEN = `status in ('Pending', 'Failed')`;
/** The lowest low-water mark of a webhook's partitions: every delivery below it is settled. */
const LOWEST_OPEN_FROM = (webhook: string): string =>
  `(select coalesce(min(p.open_from), 0) from delivery_partitions p where p.webhook_id = ${webhook})`;

const toOpen = (r: OpenRow): OpenDelivery => ({
  id: r.id,
  entityId: r.entity_id,
  changeVersion: r.change_version,
  changeType: r.change_type,
  body: r.body,
  attemptCount: r.attempt_count,
  nextAttemptAt: r.next_attempt_at,
  committedAt: r.committed_at,
});

/**
 * The webhook row as the fan-out reads it, locked, and whether $2 holds the lease of its partition $3;
 * $1 = webhook id. (The partition row is locked by the sync call that follows, in the webhook → partition
 * order of every writer.)
 */
const TARGET_SELECT = `
  select w.id, w.tenant_id, w.collection, w.destination_url, w.external_references, w.key_encrypted,
         w.previous_key_encrypted, w.previous_key_valid_until, w.valid_until, w.partitions,
         (w.status = 'Enabled' and w.deleted_at is null and w.valid_until > now()) as active,
         greatest(coalesce(w.delivery_cursor, w.created_version), w.created_version) as cursor,
         coalesce(p.lease_owner = $2, false) as held
    from webhooks w left join delivery_partitions p on p.webhook_id = w.id and p.part = $3::int
   where w.id = $1::uuid for update of w`;

const toTarget = (t: TargetRow): DispatchTarget => ({
  id: t.id,
  tenantId: t.tenant_id,
  collection: t.collection,
  destinationUrl: t.destination_url,
  externalReferences: t.external_references ?? {},
  keyEncrypted: t.key_encrypted,
  previousKeyEncrypted: t.previous_key_encrypted,
  previousKeyValidUntil: t.previous_key_valid_until,
  validUntil: t.valid_until,
  active: t.active,
  partitions: t.partitions,
});

/** What a sync asks for: fan out up to `limit` changes, then load up to `space` open deliveries above afterId. */
export interface SyncParams {
  webhookId: string;
  /** The partition whose lease `owner` holds and whose open deliveries are loaded (0 for a whole webhook). */
  part: number;
  owner: string;
  limit: number;
  /** The webhook is known to have no externalReferences (one call; pass false when unknown). */
  plain: boolean;
  afterId: number;
  space: number;
  /**
   * Where the caller believes the partition's open work starts (0: no opinion). The partition's low-water
   * mark (open_from, migrations 000006 and 000007) moves up to it when every delivery of the partition below
   * it is settled, else to the first open one.
   */
  low?: number;
}

type SyncRow = OpenRow & Omit<TargetRow, 'id' | 'cursor'> & { fanned_out: number };

const SYNC_CALL = prepared(
  'select * from timehook_sync_deliveries($1::uuid, $2::int, $3, $4::int, $5::bigint, $6::int, $7::bigint)',
);

/** The result of a held plain sync from its target row (timehook_sync_deliveries' first row) and loads. */
const heldSync = (p: SyncParams, t: SyncRow, rows: OpenDelivery[]): SyncResult & { held: true } => ({
  held: true,
  target: toTarget({ ...t, id: p.webhookId, cursor: 0 }),
  fannedOut: t.fanned_out,
  caughtUp: t.fanned_out < p.limit,
  rows,
});

/** The sync of a webhook without externalReferences: one call of timehook_sync_deliveries (000007). */
async function syncPlain(db: Queryable, p: SyncParams): Promise<SyncResult> {
  const rows = await db.query<SyncRow>(SYNC_CALL, [
    p.webhookId,
    p.part,
    p.owner,
    p.limit,
    p.afterId,
    p.space,
    p.low ?? 0,
  ]);
  const t = rows[0];
  if (!t || !t.held) return { held: false };
  return heldSync(p, t, rows.slice(1).map(toOpen));
}

/** The sync in a transaction, with bodies decorated in JS when the webhook asked for externalReferences. */
async function syncDecorated(db: Db, p: SyncParams): Promise<SyncResult> {
  return db.transaction(async (tx) => {
    const t = (await tx.query<TargetRow>(TARGET_SELECT, [p.webhookId, p.owner, p.part]))[0];
    if (!t || !t.held) return { held: false };
    if (!t.active) return { held: true, target: toTarget(t), fannedOut: 0, caughtUp: true, rows: [] };
    const changes =
      p.limit > 0
        ? await tx.query<{
            version: number;
            change_type: string;
            entity_id: number;
            data: string;
            committed_at: Date;
          }>(
            `select version, change_type, entity_id, data::text as data, committed_at from changes
              where tenant_id = $1 and collection = $2 and version > $3::bigint
              order by version limit $4`,
            [t.tenant_id, t.collection, t.cursor, p.limit],
          )
        : [];
    if (changes.length > 0) {
      const events = await attachExternalReferencesToChanges(
        tx,
        t.tenant_id,
        t.collection as CollectionName,
        changes.map((c) => ({
          changeType: c.change_type,
          data: JSON.parse(c.data) as Record<string, unknown>,
        })),
        t.external_references,
      );
      await tx.query(
        `insert into deliveries (webhook_id, change_version, change_type, entity_id, body, committed_at)
         select $1::uuid, v, t, e, b, c
           from unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[]) with ordinality
             as u(v, t, e, b, c, o)
          order by o`,
        [
          t.id,
          changes.map((c) => c.version),
          changes.map((c) => c.change_type),
          changes.map((c) => c.entity_id),
          events.map((e) => JSON.stringify({ changeType: e.changeType, data: e.data })),
          changes.map((c) => c.committed_at),
        ],
      );
      await tx.query('update webhooks set delivery_cursor = $2 where id = $1::uuid', [
        t.id,
        changes.at(-1)!.version,
      ]);
    }
    // The low-water mark and the load as in the plain sync (no fan-out there: limit 0). A later statement
    // under the lock: it sees the rows just inserted and every earlier one.
    const rows = await tx.query<OpenRow>(SYNC_CALL, [
      p.webhookId,
      p.part,
      p.owner,
      0,
      p.afterId,
      p.space,
      p.low ?? 0,
    ]);
    return {
      held: true,
      target: toTarget(t),
      fannedOut: changes.length,
      caughtUp: changes.length < p.limit,
      rows: rows.slice(1).map(toOpen),
    };
  });
}

/**
 * A partition holder's sync, atomically under the webhook row's lock: reads the webhook (state, keys), checks
 * that `owner` still holds the lease of partition `part`, and if the webhook is active moves up to `limit`
 * changes of its collection above the cursor (and above created_version) into deliveries with their event
 * bodies, advancing the cursor (for every partition: the fan-out is the webhook's); then loads up to `space`
 * open deliveries of the partition with id > afterId, in id order (the new ones included).
 *
 * Every insert into a webhook's deliveries happens under that lock (here and in requestRedelivery), so a
 * webhook's delivery ids grow in commit order: a reader that has seen id N never later finds a new open
 * delivery of that webhook below N. A crash changes nothing or everything: the cursor and the deliveries
 * always agree, so no change is lost or duplicated by the fan-out.
 */
export async function syncDeliveries(db: Db, params: SyncParams): Promise<SyncResult> {
  return params.plain ? syncPlain(db, params) : syncDecorated(db, params);
}

const SYNC_MANY_CALL =
  prepared(`select * from timehook_sync_deliveries_many($1, $2::uuid[], $3::int[], $4::int[], $5::bigint[],
                                                          $6::int[], $7::bigint[])`);

/**
 * The plain syncs (webhooks without externalReferences) of one owner's partitions in one statement and one
 * transaction (migration 000008): each request as syncDeliveries would do it, the results in request order.
 * The requests run in (webhook, partition) order, so the webhook rows are locked in ascending id order; the
 * locks are held until the last request is done.
 */
export async function syncManyDeliveries(
  db: Queryable,
  params: readonly SyncParams[],
): Promise<SyncResult[]> {
  const owner = params[0]?.owner;
  if (owner === undefined) return [];
  if (params.some((p) => p.owner !== owner || !p.plain)) {
    throw new Error('syncManyDeliveries takes plain syncs of one owner');
  }
  const rows = await db.query<SyncRow & { request: number }>(SYNC_MANY_CALL, [
    owner,
    params.map((p) => p.webhookId),
    params.map((p) => p.part),
    params.map((p) => p.limit),
    params.map((p) => p.afterId),
    params.map((p) => p.space),
    params.map((p) => p.low ?? 0),
  ]);
  const results: SyncResult[] = params.map(() => ({ held: false }));
  let current: (SyncResult & { held: true }) | undefined;
  for (const row of rows) {
    const i = row.request - 1;
    const p = params[i]!;
    if (row.id === null) {
      // A request's target row comes first, then its open deliveries.
      current = row.held ? heldSync(p, row, []) : undefined;
      if (current) results[i] = current;
    } else if (current) {
      current.rows.push(toOpen(row));
    }
  }
  return results;
}

/** Open deliveries of one entity of a webhook with fromId <= id <= throughId, in id order. */
export async function loadEntityDeliveries(
  db: Queryable,
  webhookId: string,
  entityId: number,
  fromId: number,
  throughId: number,
  limit: number,
): Promise<OpenDelivery[]> {
  const rows = await db.query<OpenRow>(
    `select ${OPEN_COLUMNS} from deliveries
      where webhook_id = $1::uuid and entity_id = $2::bigint and ${OPEN}
        and id >= $3::bigint and id <= $4::bigint
      order by id limit $5`,
    [webhookId, entityId, fromId, throughId, limit],
  );
  return rows.map(toOpen);
}

/** One entity's refill: its open deliveries of one webhook with fromId <= id <= throughId, at most `limit`. */
export interface EntityLoad {
  webhookId: string;
  entityId: number;
  fromId: number;
  throughId: number;
  limit: number;
}

const LOAD_MANY_ENTITIES = prepared(`select u.n::int as n, d.*
       from unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[]) with ordinality
              as u(webhook, entity, from_id, through_id, lim, n)
       cross join lateral (
         select ${OPEN_COLUMNS} from deliveries
          where webhook_id = u.webhook and entity_id = u.entity and ${OPEN}
            and id >= u.from_id and id <= u.through_id
          order by id limit u.lim) d
      order by u.n, d.id`);

/**
 * Several entities' refills in one statement (one index walk each, as loadEntityDeliveries does): the rows of
 * each load in id order, the loads in request order.
 */
export async function loadManyEntityDeliveries(
  db: Queryable,
  loads: readonly EntityLoad[],
): Promise<OpenDelivery[][]> {
  const rows = await db.query<OpenRow & { n: number }>(LOAD_MANY_ENTITIES, [
    loads.map((l) => l.webhookId),
    loads.map((l) => l.entityId),
    loads.map((l) => l.fromId),
    loads.map((l) => l.throughId),
    loads.map((l) => l.limit),
  ]);
  const results: OpenDelivery[][] = loads.map(() => []);
  for (const row of rows) results[row.n - 1]!.push(toOpen(row));
  return results;
}

/** One finished attempt and the state of its delivery after it. */
export interface AttemptRecord {
  deliveryId: number;
  /** 1 for the first attempt. */
  attempt: number;
  at: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  /** The first ≤ 4 KiB of the answer. */
  responseBody: string | null;
  result: 'Delivered' | 'Failed';
  /** When result is Failed: when the next attempt is due. */
  nextAttemptAt: Date | null;
}

/** PostgreSQL text cannot hold NUL; a receiver's body might. */
const storable = (text: string | null): string | null =>
  text === null ? null : text.replaceAll('\u0000', '');

/**
 * The delivery states of recordAttempts ($1–$9, one element per delivery). Times travel as epoch milliseconds
 * (float8): cheaper to write and to parse than timestamp text.
 */
const RECORD_STATES = prepared(`update deliveries d
    set status = u.status,
        attempt_count = greatest(d.attempt_count, u.attempt),
        next_attempt_at = coalesce(to_timestamp(u.next_at / 1000), d.next_attempt_at),
        delivered_at = case when u.status = 'Delivered' then to_timestamp(u.at / 1000) end,
        last_attempt_at = to_timestamp(u.at / 1000),
        last_duration_ms = u.duration_ms,
        last_status_code = u.status_code,
        last_error = u.error,
        last_response_body = u.response_body
   from unnest($1::bigint[], $2::int[], $3::text[], $4::float8[], $5::float8[], $6::int[], $7::int[],
               $8::text[], $9::text[])
     as u(id, attempt, status, next_at, at, duration_ms, status_code, error, response_body)
  where d.id = u.id
    and ((u.status = 'Delivered' and d.status <> 'Delivered') or (u.status = 'Failed' and d.${OPEN}))`);

/**
 * Records a batch of attempts and the resulting delivery states in one statement. Several records of one
 * delivery may be in a batch (the last one wins for its state). Each delivery keeps its latest attempt in its
 * row; failed attempts are also appended to delivery_attempts (a first-try success writes no attempt row).
 * Delivered is never undone, and is recorded even over Abandoned (the receiver did acknowledge it); Failed only
 * updates a delivery that is still open. Re-recording a failed attempt number (after a crash or a lease
 * takeover) keeps the first record.
 */
export async function recordAttempts(db: Queryable, records: readonly AttemptRecord[]): Promise<void> {
  if (records.length === 0) return;
  const latest = new Map<number, AttemptRecord>();
  for (const r of records) latest.set(r.deliveryId, r);
  const states = [...latest.values()];
  const failed = records.filter((r) => r.result === 'Failed');
  const params: unknown[] = [
    numberArray(states.map((r) => r.deliveryId)),
    numberArray(states.map((r) => r.attempt)),
    states.map((r) => r.result),
    numberArray(states.map((r) => (r.result === 'Failed' ? (r.nextAttemptAt?.getTime() ?? null) : null))),
    numberArray(states.map((r) => r.at.getTime())),
    numberArray(states.map((r) => Math.round(r.durationMs))),
    numberArray(states.map((r) => r.statusCode)),
    states.map((r) => storable(r.error)),
    states.map((r) => storable(r.responseBody)),
  ];
  if (failed.length === 0) {
    // The common batch: no attempts CTE.
    await db.query(RECORD_STATES, params);
    return;
  }
  await db.query(
    `with attempts as (
       insert into delivery_attempts (delivery_id, attempt, at, duration_ms, status_code, error, response_body)
       select id, attempt, to_timestamp(at / 1000), duration_ms, status_code, error, response_body
         from unnest($10::bigint[], $11::int[], $12::float8[], $13::int[], $14::int[], $15::text[], $16::text[])
           as a(id, attempt, at, duration_ms, status_code, error, response_body)
       on conflict do nothing
     )
     ${RECORD_STATES}`,
    [
      ...params,
      failed.map((r) => r.deliveryId),
      failed.map((r) => r.attempt),
      failed.map((r) => r.at.getTime()),
      failed.map((r) => Math.round(r.durationMs)),
      failed.map((r) => r.statusCode),
      failed.map((r) => storable(r.error)),
      failed.map((r) => storable(r.responseBody)),
    ],
  );
}

/**
 * Disables an Enabled webhook for `reason` (EndpointGone, RetriesExhausted) and abandons its open
 * deliveries, in one transaction. Returns false when it was already disabled or deleted.
 */
export async function stopWebhook(db: Db, webhookId: string, reason: DisabledReason): Promise<boolean> {
  return db.transaction(async (tx) => {
    // disableWebhook locks the webhook's row first: no delivery of it is inserted meanwhile.
    const changed = await disableWebhook(tx, webhookId, reason);
    await tx.query(
      `update deliveries d set status = 'Abandoned', abandoned = true
        where d.webhook_id = $1::uuid and d.id >= ${LOWEST_OPEN_FROM('$1::uuid')} and d.${OPEN}`,
      [webhookId],
    );
    await tx.query(SETTLED_THROUGH_LAST, [[webhookId]]);
    return changed;
  });
}

/**
 * Marks open deliveries of disabled, expired or deleted webhooks Abandoned, at most `limit` per call; returns
 * how many. (The webhook API and the expiry sweep only change the webhook; this settles its deliveries.)
 */
export async function abandonStoppedDeliveries(db: Db, limit: number): Promise<number> {
  return db.transaction(async (tx) => {
    // Stopped webhooks whose lowest low-water mark is not yet past their last delivery, locked (no delivery
    // of a stopped webhook is inserted, and a webhook enabled again meanwhile is no longer picked).
    const stopped = await tx.query<{ id: string; open_from: number }>(
      `select w.id, o.open_from
         from webhooks w cross join lateral (select ${LOWEST_OPEN_FROM('w.id')} as open_from) o
        where (w.status <> 'Enabled' or w.deleted_at is not null or w.valid_until <= now())
          and o.open_from <= (select coalesce(max(d.id), 0) from deliveries d where d.webhook_id = w.id)
        order by w.id limit $1
        for update of w skip locked`,
      [limit],
    );
    if (stopped.length === 0) return 0;
    const rows = await tx.query<{ id: string }>(
      `with doomed as (
         select d.id from unnest($1::uuid[], $2::bigint[]) as s(id, open_from)
           join deliveries d on d.webhook_id = s.id and d.id >= s.open_from
          where d.${OPEN}
          limit $3
       )
       update deliveries d set status = 'Abandoned', abandoned = true from doomed where d.id = doomed.id
       returning d.webhook_id as id`,
      [stopped.map((s) => s.id), stopped.map((s) => s.open_from), limit],
    );
    if (rows.length < limit) {
      // Every open delivery of these webhooks is settled now: move their marks past the last one, so the
      // next sweep (and the gauges) need not look at them again.
      await tx.query(SETTLED_THROUGH_LAST, [stopped.map((s) => s.id)]);
    }
    return rows.length;
  });
}

/**
 * Moves the low-water marks of every partition of webhooks ($1, locked, with no open delivery) past their last
 * delivery.
 */
const SETTLED_THROUGH_LAST = `update delivery_partitions p
    set open_from = greatest(p.open_from, (select coalesce(max(d.id), 0) + 1 from deliveries d
                                            where d.webhook_id = p.webhook_id))
  where p.webhook_id = any($1::uuid[])`;

// ---- The delivery log (SPEC §1.3) ----

export interface DeliveryRecord {
  id: number;
  webhookId: string;
  changeVersion: number;
  changeType: string;
  entityId: number;
  status: DeliveryStatus;
  attemptCount: number;
  /** For Pending and Failed deliveries: when the next attempt is due (at the latest). */
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
  redeliveryOf: number | null;
}

export interface AttemptView {
  attempt: number;
  at: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseBody: string | null;
}

interface DeliveryRow {
  id: number;
  webhook_id: string;
  change_version: number;
  change_type: string;
  entity_id: number;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: Date;
  delivered_at: Date | null;
  created_at: Date;
  redelivery_of: number | null;
}

const DELIVERY_COLUMNS = `id, webhook_id, change_version, change_type, entity_id, status, attempt_count,
  next_attempt_at, delivered_at, created_at, redelivery_of`;

const toDelivery = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  webhookId: r.webhook_id,
  changeVersion: r.change_version,
  changeType: r.change_type,
  entityId: r.entity_id,
  status: r.status,
  attemptCount: r.attempt_count,
  nextAttemptAt: r.status === 'Pending' || r.status === 'Failed' ? r.next_attempt_at : null,
  deliveredAt: r.delivered_at,
  createdAt: r.created_at,
  redeliveryOf: r.redelivery_of,
});

/** Deliveries read per statement when the log is filtered by entity (no index serves that filter). */
/**
 * The status filter ($3) narrowed the way the indexes can use it: open deliveries lie at or above the
 * webhook's low-water mark, Abandoned ones are in their partial index.
 */
const STATUS_INDEXED = `($3::text is distinct from 'Abandoned' or abandoned)
        and id >= case when $3::text in ('Pending', 'Failed') then ${LOWEST_OPEN_FROM('$1::uuid')} else 0 end`;

/**
 * A page of a webhook's deliveries, newest first: those with id below beforeId (all when undefined),
 * optionally only one status and/or one entity. Returns up to `limit` records, read through the
 * (webhook_id, id) or (webhook_id, entity_id, id) index.
 */
export async function listDeliveries(
  db: Queryable,
  webhookId: string,
  options: { status?: DeliveryStatus; entityId?: number; beforeId?: number; limit: number },
): Promise<DeliveryRecord[]> {
  // The row comparison repeats `webhook_id = $1 and id < $2` in the shape of the indexes: without it the
  // planner may walk the primary key backwards through other webhooks' newer deliveries (121 ms instead of
  // 0.6 ms for a first page at 4M rows, see README, Deployment).
  const before = `coalesce($2::bigint, ${MAX_BIGINT})`;
  const below =
    options.entityId === undefined
      ? `webhook_id = $1::uuid and id < ${before} and (webhook_id, id) < ($1::uuid, ${before})`
      : `webhook_id = $1::uuid and entity_id = $5::bigint and id < ${before}
         and (webhook_id, entity_id, id) < ($1::uuid, $5::bigint, ${before})`;
  const rows = await db.query<DeliveryRow>(
    `select ${DELIVERY_COLUMNS} from deliveries
      where ${below} and ($3::text is null or status = $3) and ${STATUS_INDEXED}
      order by id desc limit $4`,
    [
      webhookId,
      options.beforeId ?? null,
      options.status ?? null,
      options.limit,
      ...(options.entityId === undefined ? [] : [options.entityId]),
    ],
  );
  return rows.map(toDelivery);
}

/** One delivery of a webhook with all its attempts (oldest first), or undefined. */
export async function findDelivery(
  db: Queryable,
  webhookId: string,
  deliveryId: number,
): Promise<(DeliveryRecord & { attempts: AttemptView[] }) | undefined> {
  const rows = await db.query<
    DeliveryRow & {
      last_attempt_at: Date | null;
      last_duration_ms: number | null;
      last_status_code: number | null;
      last_error: string | null;
      last_response_body: string | null;
    }
  >(
    `select ${DELIVERY_COLUMNS}, last_attempt_at, last_duration_ms, last_status_code, last_error,
            last_response_body
       from deliveries where id = $1::bigint and webhook_id = $2::uuid`,
    [deliveryId, webhookId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const failed = await db.query<{
    attempt: number;
    at: Date;
    duration_ms: number;
    status_code: number | null;
    error: string | null;
    response_body: string | null;
  }>(
    `select attempt, at, duration_ms, status_code, error, response_body from delivery_attempts
      where delivery_id = $1::bigint order by attempt`,
    [deliveryId],
  );
  const attempts: AttemptView[] = failed.map((a) => ({
    attempt: a.attempt,
    at: a.at,
    durationMs: a.duration_ms,
    statusCode: a.status_code,
    error: a.error,
    responseBody: a.response_body,
  }));
  // The successful attempt is kept only in the delivery's row.
  if (
    row.status === 'Delivered' &&
    row.last_attempt_at &&
    !attempts.some((a) => a.attempt === row.attempt_count)
  ) {
    attempts.push({
      attempt: row.attempt_count,
      at: row.last_attempt_at,
      durationMs: row.last_duration_ms ?? 0,
      statusCode: row.last_status_code,
      error: row.last_error,
      responseBody: row.last_response_body,
    });
  }
  return { ...toDelivery(row), attempts };
}

export type RedeliveryResult =
  | { ok: true; delivery: DeliveryRecord }
  | { ok: false; reason: 'webhook-not-found' }
  | { ok: false; reason: 'delivery-not-found' }
  | {
      ok: false;
      reason: 'webhook-not-enabled';
      status: string;
      disabledReason: string | null;
      deleted: boolean;
    };

/**
 * Queues the event of a delivery again as a new Pending delivery of the same webhook (same body and
 * webhook-id, committed_at = now), behind that entity's open deliveries. The webhook must belong to the
 * tenant and be Enabled (not deleted, not past validUntil). Takes the webhook row's lock like the fan-out
 * (see syncDeliveries), and tells the workers on DELIVERIES_CHANNEL.
 */
export async function requestRedelivery(
  db: Db,
  tenantId: string,
  webhookId: string,
  deliveryId: number,
): Promise<RedeliveryResult> {
  return db.transaction(async (tx) => {
    const hooks = await tx.query<{
      status: string;
      disabled_reason: string | null;
      deleted: boolean;
      expired: boolean;
    }>(
      `select status, disabled_reason, deleted_at is not null as deleted, valid_until <= now() as expired
         from webhooks where id = $1::uuid and tenant_id = $2 for update`,
      [webhookId, tenantId],
    );
    const hook = hooks[0];
    if (!hook) return { ok: false, reason: 'webhook-not-found' };
    const original = await tx.query<{ id: number }>(
      'select id from deliveries where id = $1::bigint and webhook_id = $2::uuid',
      [deliveryId, webhookId],
    );
    if (original.length === 0) return { ok: false, reason: 'delivery-not-found' };
    if (hook.status !== 'Enabled' || hook.deleted || hook.expired) {
      return {
        ok: false,
        reason: 'webhook-not-enabled',
        status: hook.expired && hook.status === 'Enabled' ? 'Disabled' : hook.status,
        disabledReason: hook.expired && hook.status === 'Enabled' ? 'Expired' : hook.disabled_reason,
        deleted: hook.deleted,
      };
    }
    const rows = await tx.query<DeliveryRow>(
      `insert into deliveries (webhook_id, change_version, change_type, entity_id, body, committed_at, redelivery_of)
       select webhook_id, change_version, change_type, entity_id, body, now(), id
         from deliveries where id = $1::bigint
       returning ${DELIVERY_COLUMNS}`,
      [deliveryId],
    );
    await tx.query('select pg_notify($1, $2)', [DELIVERIES_CHANNEL, webhookId]);
    return { ok: true, delivery: toDelivery(rows[0]!) };
  });
}

/**
 * One step of pruning the delivery log: looks at the `limit` deliveries with the lowest ids above afterId and
 * deletes the settled (Delivered or Abandoned) ones created before `olderThan`, with their attempts. Open
 * deliveries are kept whatever their age. Returns how many were deleted and where the next step starts, or
 * `next: undefined` when this step reached deliveries younger than olderThan (or the end): ids grow with
 * creation time, so nothing older lies beyond.
 *
 * Walking the primary key in id ranges reads each row once per pruning pass, and a pass with nothing to prune
 * reads one range; a `created_at < $1 order by id limit n` filter instead scanned the whole table whenever
 * nothing was old enough (374 ms at 4M rows, every minute).
 */
export async function pruneDeliveries(
  db: Queryable,
  olderThan: Date,
  limit: number,
  afterId = 0,
): Promise<{ deleted: number; next: number | undefined }> {
  const rows = await db.query<{ deleted: number; last_id: number | null; young: boolean }>(
    `with win as (
       select id, status, created_at from deliveries where id > $2::bigint order by id limit $3
     ), gone as (
       delete from deliveries d using win
        where d.id = win.id and win.created_at < $1 and win.status in ('Delivered', 'Abandoned')
       returning 1
     )
     select (select count(*) from gone)::int as deleted, (select max(id) from win) as last_id,
            exists (select 1 from win where created_at >= $1) as young`,
    [olderThan, afterId, limit],
  );
  const row = rows[0]!;
  return {
    deleted: row.deleted,
    next: row.young || row.last_id === null ? undefined : row.last_id,
  };
}

// ---- Gauges ----

export interface OpenDeliveryStats {
  webhookId: string;
  open: number;
  oldestCommittedAt: Date;
}

/** Per enabled, undeleted webhook with open deliveries: how many, and the commit time of the oldest. */
export async function openDeliveryStats(db: Queryable): Promise<OpenDeliveryStats[]> {
  const rows = await db.query<{ webhook_id: string; n: number; oldest: Date }>(
    `select d.webhook_id, count(*)::int as n, min(d.committed_at) as oldest
       from webhooks w join deliveries d on d.webhook_id = w.id and d.id >= ${LOWEST_OPEN_FROM('w.id')}
      where d.${OPEN} and w.status = 'Enabled' and w.deleted_at is null
      group by d.webhook_id`,
  );
  return rows.map((r) => ({ webhookId: r.webhook_id, open: r.n, oldestCommittedAt: r.oldest }));
}

/** Undeleted webhooks counted by status and disabled reason ('' when Enabled). */
export async function countWebhooksByStatus(
  db: Queryable,
): Promise<{ status: string; reason: string; count: number }[]> {
  return db.query(
    `select status, coalesce(disabled_reason, '') as reason, count(*)::int as count
       from webhooks where deleted_at is null group by status, disabled_reason`,
  );
}
