// Group commit for the absence writes of one tenant: at most WRITES_IN_DATABASE of them per tenant and process
// wait in the database for the tenant lock; the ones that arrive meanwhile wait here and then go together, as
// one statement (writeAbsenceBatches), in the order they arrived. A group ends before a batch that shares an
// absence with it, which goes in the next one. It holds no lock and no transaction. Writes that are in flight
// at the same time have no order among them, here as in the database.

import { MAX_BATCH_ITEMS } from '../domain/collections.ts';
import {
  writeAbsenceBatches,
  writeAbsences,
  type AbsenceWriteBatch,
  type AbsenceWriteResult,
} from './absences.ts';
import type { Db } from './db.ts';

/**
 * Writes of one tenant a process lets wait in the database at once. Two keep the database busy: one writes
 * under the lock while the next one's arguments are sent and parsed. More would only queue on the lock, where
 * each hand-over waits for the next backend to be scheduled (migrations/000010_write_absence_batches.sql).
 */
const WRITES_IN_DATABASE = 2;

/** Upserts and deletes a group holds at most: as many as one batch may (a batch is never split). */
const MAX_GROUP_ITEMS = MAX_BATCH_ITEMS;

interface Waiting {
  batch: AbsenceWriteBatch;
  resolve: (result: AbsenceWriteResult) => void;
  reject: (error: unknown) => void;
}

interface TenantQueue {
  running: number;
  waiting: Waiting[];
}

const queues = new WeakMap<Db, Map<string, TenantQueue>>();

const itemsOf = (batch: AbsenceWriteBatch): number => batch.upsertIds.length + batch.deletes.length;

/**
 * Applies `batch` as writeAbsences does (autocommitted, all or nothing, the same result), possibly in one
 * statement with other batches of the tenant queued at the same time. A batch that fails alone fails only
 * itself: when a grouped statement fails, each of its batches is written again on its own.
 */
export function queueAbsenceWrite(
  db: Db,
  tenant: string,
  batch: AbsenceWriteBatch,
): Promise<AbsenceWriteResult> {
  let tenants = queues.get(db);
  if (!tenants) {
    tenants = new Map();
    queues.set(db, tenants);
  }
  let queue = tenants.get(tenant);
  if (!queue) {
    queue = { running: 0, waiting: [] };
    tenants.set(tenant, queue);
  }
  const result = new Promise<AbsenceWriteResult>((resolve, reject) => {
    queue.waiting.push({ batch, resolve, reject });
  });
  if (queue.running < WRITES_IN_DATABASE) start(db, tenant, tenants, queue);
  return result;
}

/** How many batches from the front of `waiting` go together: no absence twice, at most MAX_GROUP_ITEMS. */
function groupSize(waiting: readonly Waiting[]): number {
  const first = waiting[0]!.batch;
  let items = itemsOf(first);
  if (waiting.length === 1) return 1;
  const ids = new Set([...first.upsertIds, ...first.deletes]);
  let take = 1;
  for (; take < waiting.length; take++) {
    const next = waiting[take]!.batch;
    if (items + itemsOf(next) > MAX_GROUP_ITEMS) break;
    if (next.upsertIds.some((id) => ids.has(id)) || next.deletes.some((id) => ids.has(id))) break;
    for (const id of next.upsertIds) ids.add(id);
    for (const id of next.deletes) ids.add(id);
    items += itemsOf(next);
  }
  return take;
}

function start(db: Db, tenant: string, tenants: Map<string, TenantQueue>, queue: TenantQueue): void {
  const take = groupSize(queue.waiting);
  const group = queue.waiting.splice(0, take);
  queue.running++;
  void write(db, tenant, group).then(() => {
    queue.running--;
    if (queue.waiting.length > 0) start(db, tenant, tenants, queue);
    else if (queue.running === 0) tenants.delete(tenant);
  });
}

/** Settles every batch of the group; never rejects. */
async function write(db: Db, tenant: string, group: Waiting[]): Promise<void> {
  if (group.length > 1) {
    let results: AbsenceWriteResult[] | undefined;
    try {
      results = await writeAbsenceBatches(
        db,
        tenant,
        group.map((w) => w.batch),
      );
    } catch {
      // Nothing of the group was written. Whichever batch made it fail fails below on its own.
    }
    if (results) {
      group.forEach((w, i) => w.resolve(results[i]!));
      return;
    }
  }
  for (const w of group) {
    try {
      w.resolve(await writeAbsences(db, tenant, w.batch));
    } catch (error) {
      w.reject(error);
    }
  }
}
