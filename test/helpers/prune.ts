// Prunes the whole change log as the maintenance loop does, checking that no step exceeds its batch.

import assert from 'node:assert/strict';
import { pruneChangeLog } from '../../src/store/changes.ts';
import type { Queryable } from '../../src/store/db.ts';

export const pruneAllChanges = (db: Queryable, olderThan: Date, batch: number): Promise<number> =>
  pruneChangeLog(db, olderThan, batch, (step) => {
    assert.ok(
      step.deleted <= batch,
      `a step deleted ${step.deleted} changes, more than its batch of ${batch}`,
    );
    return true;
  });
