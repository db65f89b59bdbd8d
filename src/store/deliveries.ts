// The delivery log of SPEC §1.3 (engine v2, docs/design/delivery.md): a webhook's deliveries newest first, one
// delivery with its attempts, redelivery, pruning, and the gauges read at scrape time. The engine's own SQL
// (leases, reads, outcome writes) is in lanes.ts.

import type { DeliveryStatusName } from '../domain/delivery-filter.ts';
import type { Db, Queryable } from './db.ts';

/** A redelivery request announces the webhook id on this channel, so its worker picks it up at once. */
export const DELIVERIES_CHANNEL = 'timehook_deliveries';
/** The webhooks trigger announces created and changed webhooks (their id) on this channel. */
export const WEBHOOKS_CHANNEL = 'timehook_webhooks';

export type DeliveryStatus = DeliveryStatusName;

const MAX_BIGINT = '9223372036854775807';

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

/**
 * A page of a webhook's deliveries, newest first: those with id below beforeId (all when undefined),
 * optionally only one status and/or one entity. Returns up to `limit` records, read through the
 * (webhook_id, id) index.
 */
export async function listDeliveries(
  db: Queryable,
  webhookId: string,
  options: { status?: DeliveryStatus; entityId?: number; beforeId?: number; limit: number },
): Promise<DeliveryRecord[]> {
  // The row comparison repeats `webhook_id = $1 and id < $2` in the shape of the index, so the planner walks
  // (webhook_id, id) backwards rather than the primary key through other webhooks' newer deliveries.
  const before = `coalesce($2::bigint, ${MAX_BIGINT})`;
  const below =
    options.entityId === undefined
      ? `webhook_id = $1::uuid and id < ${before} and (webhook_id, id) < ($1::uuid, ${before})`
      : `webhook_id = $1::uuid and entity_id = $5::bigint and id < ${before}
         and (webhook_id, id) < ($1::uuid, ${before})`;
  const rows = await db.query<DeliveryRow>(
    `select ${DELIVERY_COLUMNS} from deliveries
      where ${below} and ($3::text is null or status = $3)
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
 * Queues the event of a delivery again as a new Pending delivery of the same webhook (same body, webhook-id
 * and change_version, the next seq, committed_at = now); its worker sends it behind the entity's outstanding
 * events. The webhook must belong to the tenant and be Enabled (not deleted, not past validUntil). Tells the
 * workers on DELIVERIES_CHANNEL.
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
      `insert into deliveries (webhook_id, change_version, seq, change_type, entity_id, status, body,
                               committed_at, redelivery_of)
       select o.webhook_id, o.change_version,
              (select max(s.seq) + 1 from deliveries s
                where s.webhook_id = o.webhook_id and s.change_version = o.change_version),
              o.change_type, o.entity_id, 'Pending', o.body, now(), o.id
         from deliveries o where o.id = $1::bigint
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

/**
 * Per enabled, undeleted webhook with events owed: how many (open rows, plus changes above its lowest lane
 * cursor that have no row yet), and the commit time of the oldest.
 */
export async function openDeliveryStats(db: Queryable): Promise<OpenDeliveryStats[]> {
  const rows = await db.query<{ webhook_id: string; n: number; oldest: Date }>(
    `with owed as (
       select d.webhook_id, d.committed_at from deliveries d join webhooks w on w.id = d.webhook_id
        where d.status in ('Pending', 'Failed') and w.status = 'Enabled' and w.deleted_at is null
       union all
       select w.id, c.committed_at
         from webhooks w
         join lateral (select min(l.cursor) as cursor from delivery_lanes l where l.webhook_id = w.id) l on true
         join changes c on c.tenant_id = w.tenant_id and c.collection = w.collection and c.version > l.cursor
        where w.status = 'Enabled' and w.deleted_at is null
          and not exists (select 1 from deliveries d
                           where d.webhook_id = w.id and d.change_version = c.version and d.seq = 0)
     )
     select webhook_id, count(*)::int as n, min(committed_at) as oldest from owed group by webhook_id`,
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
