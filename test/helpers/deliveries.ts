// Deliveries rows made as a worker makes them (store/lanes.ts), for tests of the delivery log that run no
// worker: every change of a webhook's collection since its creation, recorded as a failed first attempt, and the
// lane's cursor moved past them.

import assert from 'node:assert/strict';
import { eventBody } from '../../src/domain/event.ts';
import type { Queryable } from '../../src/store/db.ts';
import { readLaneChanges, readLaneTarget, writeOutcomes } from '../../src/store/lanes.ts';

export async function recordFailedDeliveries(db: Queryable, webhookId: string): Promise<void> {
  const target = await readLaneTarget(db, webhookId, 0);
  assert.ok(target, `webhook ${webhookId} has a lane`);
  const { changes } = await readLaneChanges(db, target, target.cursor, 10_000);
  const now = Date.now();
  await writeOutcomes(
    db,
    changes.map((c) => ({
      webhookId,
      version: c.version,
      seq: 0,
      entityId: c.entityId,
      changeType: c.changeType,
      status: 'Failed' as const,
      body: eventBody(c.changeType, c.data),
      committedAt: c.committedAt.getTime(),
      attemptCount: 1,
      nextAttemptAt: now + 60_000,
      attempt: { at: now, durationMs: 5, statusCode: 500, error: null, responseBody: 'down' },
    })),
    changes.length > 0 ? [{ webhookId, part: 0, cursor: changes.at(-1)!.version }] : [],
  );
}
