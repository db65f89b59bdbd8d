// Runs pruneChanges step by step through every tenant, as the maintenance loop does; returns the count.

import { pruneChanges } from '../../src/store/changes.ts';
import type { Queryable } from '../../src/store/db.ts';

export async function pruneAllChanges(db: Queryable, olderThan: Date, batch: number): Promise<number> {
  let pruned = 0;
  for (let after: string | undefined = ''; after !== undefined;) {
    const step = await pruneChanges(db, olderThan, batch, after);
    assert(step.deleted <= batch, `a step deleted ${step.deleted} changes, more than its batch of ${batch}`);
    pruned += step.deleted;
    if (step.deleted < batch) after = step.tenant;
  }
  return pruned;
}

function assert(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}
