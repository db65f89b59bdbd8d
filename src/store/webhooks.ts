// Webhook subscriptions: create within the tenant's limit, read, soft delete, key rotation, disabling, and
// expiry at validUntil. Keys are stored only as ciphertext (SecretBox) and never leave this module in the
// records the API renders; the delivery engine reads them through findWebhookSigningKeys / findDeliveryTarget.

import type { WebhookStatus } from '../domain/webhook-filter.ts';
import type { Db, Queryable } from './db.ts';
import { currentVersion, lockTenant } from './tenants.ts';
export type DisabledReason = 'Expired' | 'RetriesExhausted' | 'EndpointGone';

/** A webhook as the API shows it (no key material). */
export interface WebhookRecord {
  id: string;
  tenantId: string;
  collection: string;
  destinationUrl: string;
  /** The externalReferences selection of the create request, e.g. { people: ['@employee-number'] }. */
  externalReferences: Record<string, string[]>;
  /** Disabled as soon as validUntil has passed, even before the sweeper has written it. */
  status: WebhookStatus;
  disabledReason: DisabledReason | null;
  validUntil: Date;
  createdAt: Date;
  /** The tenant's version when the webhook was created: changes above it are delivered, none at or below. */
  createdVersion: number;
}

interface WebhookRow {
  id: string;
  tenant_id: string;
  collection: string;
  destination_url: string;
  external_references: Record<string, string[]>;
  status: WebhookStatus;
  disabled_reason: DisabledReason | null;
  valid_until: Date;
  created_at: Date;
  created_version: number;
}

const toWebhook = (r: WebhookRow): WebhookRecord => ({
  id: r.id,
  tenantId: r.tenant_id,
  collection: r.collection,
  destinationUrl: r.destination_url,
  externalReferences: r.external_references,
  status: r.status,
  disabledReason: r.disabled_reason,
  validUntil: r.valid_until,
  createdAt: r.created_at,
  createdVersion: r.created_version,
});

/**
 * The columns of a WebhookRecord, with status and disabled_reason as of `$1` (the caller's clock): an Enabled
 * webhook past valid_until reads Disabled/Expired whether or not expireWebhooks has run yet.
 */
const WEBHOOK_COLUMNS = `
  id, tenant_id, collection, destination_url, external_references, valid_until, created_at, created_version,
  case when status = 'Enabled' and valid_until <= $1::timestamptz then 'Disabled' else status end as status,
  case when status = 'Enabled' and valid_until <= $1::timestamptz then 'Expired' else disabled_reason end
    as disabled_reason`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when text is a UUID; lookups by any other text find nothing instead of failing the cast. */
export const isWebhookId = (text: string): boolean => UUID.test(text);

export interface NewWebhook {
  id: string;
  tenantId: string;
  collection: string;
  destinationUrl: string;
  externalReferences: Record<string, string[]>;
  keyEncrypted: string;
  createdAt: Date;
  validUntil: Date;
  /**
   * Partitions its deliveries are split into (1 to 64, fixed for its life): each is leased on its own, so that
   * many workers may send its events at once. Default 1.
   */
  partitions?: number;
}

export type CreateWebhookResult = { ok: true; webhook: WebhookRecord } | { ok: false; enabledCount: number };

/**
 * Creates a webhook unless the tenant already has `limit` enabled ones (not deleted, not past validUntil at
 * `webhook.createdAt`). One transaction under the tenant row's lock, so concurrent creates cannot both pass
 * the count, and created_version is the tenant's version as of that lock: every change committed after
 * the create is above it (SPEC §2, §3.1). The tenant must exist.
 */
export async function createWebhook(
  db: Db,
  webhook: NewWebhook,
  limit: number,
): Promise<CreateWebhookResult> {
  return db.transaction(async (tx) => {
    if (!(await lockTenant(tx, webhook.tenantId))) {
      throw new Error(`Tenant ${webhook.tenantId} does not exist.`);
    }
    const counted = await tx.query<{ n: number }>(
      `select count(*)::int as n from webhooks
        where tenant_id = $1 and deleted_at is null and status = 'Enabled' and valid_until > $2::timestamptz`,
      [webhook.tenantId, webhook.createdAt],
    );
    const enabledCount = counted[0]?.n ?? 0;
    if (enabledCount >= limit) return { ok: false, enabledCount };
    const createdVersion = await currentVersion(tx, webhook.tenantId);
    const rows = await tx.query<WebhookRow>(
      `insert into webhooks (id, tenant_id, collection, destination_url, external_references, key_encrypted,
                             valid_until, created_at, created_version, partitions)
       values ($2::uuid, $3, $4, $5, $6::jsonb, $7, $8::timestamptz, $9::timestamptz, $10::bigint, $11::int)
       returning ${WEBHOOK_COLUMNS}`,
      [
        webhook.createdAt,
        webhook.id,
        webhook.tenantId,
        webhook.collection,
        webhook.destinationUrl,
        JSON.stringify(webhook.externalReferences),
        webhook.keyEncrypted,
        webhook.validUntil,
        webhook.createdAt,
        createdVersion,
        webhook.partitions ?? 1,
      ],
    );
    return { ok: true, webhook: toWebhook(rows[0]!) };
  });
}

/** The tenant's webhook with that id, unless deleted; another tenant's webhook is undefined too. */
export async function findWebhook(
  db: Queryable,
  tenantId: string,
  id: string,
  now: Date,
): Promise<WebhookRecord | undefined> {
  if (!isWebhookId(id)) return undefined;
  const rows = await db.query<WebhookRow>(
    `select ${WEBHOOK_COLUMNS} from webhooks
      where id = $2::uuid and tenant_id = $3 and deleted_at is null`,
    [now, id, tenantId],
  );
  return rows[0] && toWebhook(rows[0]);
}

/**
 * The tenant's webhooks that are not deleted, oldest first, optionally only those with a status (as of
 * `now`) and a collection.
 */
export async function listWebhooks(
  db: Queryable,
  tenantId: string,
  now: Date,
  filter: { status?: WebhookStatus; collection?: string } = {},
): Promise<WebhookRecord[]> {
  const rows = await db.query<WebhookRow>(
    `select * from (
       select ${WEBHOOK_COLUMNS} from webhooks where tenant_id = $2 and deleted_at is null
     ) w
      where ($3::text is null or w.status = $3) and ($4::text is null or w.collection = $4)
      order by w.created_at, w.id`,
    [now, tenantId, filter.status ?? null, filter.collection ?? null],
  );
  return rows.map(toWebhook);
}

/**
 * Soft-deletes the tenant's webhook: it leaves list and get at once and delivery stops, while its delivery
 * log stays. Returns false when there is no such (undeleted) webhook of the tenant.
 */
export async function deleteWebhook(
  db: Queryable,
  tenantId: string,
  id: string,
  now: Date,
): Promise<boolean> {
  if (!isWebhookId(id)) return false;
  const rows = await db.query(
    `update webhooks set deleted_at = $3::timestamptz
      where id = $1::uuid and tenant_id = $2 and deleted_at is null returning id`,
    [id, tenantId, now],
  );
  return rows.length > 0;
}

/**
 * Replaces the signing key: `keyEncrypted` becomes the key, the key it replaces becomes the previous key,
 * valid (signing beside the new one) until `previousKeyValidUntil`. A previous key still inside its own
 * overlap is dropped: there are never more than two. Disabled webhooks may rotate too (harmless; they may
 * still be redelivered to after a fix). Returns false when the tenant has no such undeleted webhook.
 */
export async function rotateWebhookKey(
  db: Queryable,
  tenantId: string,
  id: string,
  keyEncrypted: string,
  previousKeyValidUntil: Date,
): Promise<boolean> {
  if (!isWebhookId(id)) return false;
  const rows = await db.query(
    `update webhooks
        set previous_key_encrypted = key_encrypted,
            previous_key_valid_until = $4::timestamptz,
            key_encrypted = $3
      where id = $1::uuid and tenant_id = $2 and deleted_at is null
      returning id`,
    [id, tenantId, keyEncrypted, previousKeyValidUntil],
  );
  return rows.length > 0;
}

/**
 * The key ciphertexts that sign a webhook's requests at `now`, current key first, then the previous key
 * while its rotation overlap lasts (SPEC §1.2: two signatures per request during the overlap). Decrypt
 * with SecretBox.decrypt. Undefined when the webhook does not exist or was deleted.
 */
export async function findWebhookSigningKeys(
  db: Queryable,
  webhookId: string,
  now: Date,
): Promise<string[] | undefined> {
  if (!isWebhookId(webhookId)) return undefined;
  const rows = await db.query<{ key_encrypted: string; previous_key_encrypted: string | null }>(
    `select key_encrypted,
            case when previous_key_valid_until > $2::timestamptz then previous_key_encrypted end
              as previous_key_encrypted
       from webhooks where id = $1::uuid and deleted_at is null`,
    [webhookId, now],
  );
  const row = rows[0];
  if (!row) return undefined;
  return row.previous_key_encrypted ? [row.key_encrypted, row.previous_key_encrypted] : [row.key_encrypted];
}

/** What the sender needs for one attempt: where to send, and the keys that sign. */
export interface DeliveryTarget {
  webhook: WebhookRecord;
  /** Key ciphertexts, current first (see findWebhookSigningKeys). */
  keysEncrypted: string[];
}

/**
 * The webhook and its signing keys if it may be delivered to at `now`: Enabled, not past validUntil and
 * not deleted. Undefined otherwise, which means "stop sending" (deleted or disabled since the event was
 * queued). One query, meant to be read before each attempt.
 */
export async function findDeliveryTarget(
  db: Queryable,
  webhookId: string,
  now: Date,
): Promise<DeliveryTarget | undefined> {
  if (!isWebhookId(webhookId)) return undefined;
  const rows = await db.query<WebhookRow & { key_encrypted: string; previous_key_encrypted: string | null }>(
    `select ${WEBHOOK_COLUMNS}, key_encrypted,
            case when previous_key_valid_until > $1::timestamptz then previous_key_encrypted end
              as previous_key_encrypted
       from webhooks
      where id = $2::uuid and deleted_at is null and status = 'Enabled' and valid_until > $1::timestamptz`,
    [now, webhookId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    webhook: toWebhook(row),
    keysEncrypted: row.previous_key_encrypted
      ? [row.key_encrypted, row.previous_key_encrypted]
      : [row.key_encrypted],
  };
}

/**
 * Webhooks that receive events at `now` (Enabled, not expired, not deleted), optionally of one tenant
 * and collection, oldest first. The fan-out of a change goes to those whose createdVersion is below it.
 */
export async function listEnabledWebhooks(
  db: Queryable,
  now: Date,
  filter: { tenantId?: string; collection?: string } = {},
): Promise<WebhookRecord[]> {
  const rows = await db.query<WebhookRow>(
    `select ${WEBHOOK_COLUMNS} from webhooks
      where deleted_at is null and status = 'Enabled' and valid_until > $1::timestamptz
        and ($2::text is null or tenant_id = $2) and ($3::text is null or collection = $3)
      order by created_at, id`,
    [now, filter.tenantId ?? null, filter.collection ?? null],
  );
  return rows.map(toWebhook);
}

/**
 * Disables an Enabled webhook for a reason (RetriesExhausted, EndpointGone; Expired is the sweeper's).
 * A webhook is never re-enabled (SPEC §1.2). Returns false when it was already disabled or deleted, so
 * only the first of several concurrent deciders logs the transition.
 */
export async function disableWebhook(db: Queryable, id: string, reason: DisabledReason): Promise<boolean> {
  if (!isWebhookId(id)) return false;
  const rows = await db.query(
    `update webhooks set status = 'Disabled', disabled_reason = $2
      where id = $1::uuid and status = 'Enabled' and deleted_at is null returning id`,
    [id, reason],
  );
  return rows.length > 0;
}

/**
 * True when the tenant owns a webhook with that id, including a deleted one when asked: the delivery log
 * stays readable after delete (SPEC §1.3).
 */
export async function isTenantWebhook(
  db: Queryable,
  tenantId: string,
  id: string,
  options: { includeDeleted: boolean },
): Promise<boolean> {
  if (!isWebhookId(id)) return false;
  const rows = await db.query(
    `select 1 from webhooks where id = $1::uuid and tenant_id = $2 and ($3::boolean or deleted_at is null)`,
    [id, tenantId, options.includeDeleted],
  );
  return rows.length > 0;
}

/** Sets every Enabled webhook whose validUntil has passed to Disabled/Expired; returns how many. */
export async function expireWebhooks(db: Queryable, now: Date): Promise<number> {
  const rows = await db.query(
    // Locked in id order, so two sweeps never wait for each other in a circle.
    `with due as (
       select id from webhooks where status = 'Enabled' and valid_until <= $1 order by id for update
     )
     update webhooks w set status = 'Disabled', disabled_reason = 'Expired'
       from due where w.id = due.id
     returning w.id`,
    [now],
  );
  return rows.length;
}
