// Group commit for the absence writes of one tenant: at most WRITES_IN_DATABASE of them per tenant and process
// wait in the database for the tenant lock; the ones that arrive meanwhile wait here and then go together, as
// one statement (writeAbsenceBatches), in the order they arrived. A group ends before a batch that touches an
// absence already in it or in a group still in the database: writes of one absence reach the database in the
// order they came. It holds no lock and no transaction.

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
 * each hand-over waits for the next backend to be scheduled.
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
  /** The absence ids of the groups in the database: a write of one of them waits for its group. */
  busy: Set<number>;
}

const queues = new WeakMap<Db, Map<string, TenantQueue>>();

/**
 * Applies `batch` as writeAbsences does (autocommitted, all or nothing, the same result), possibly in one
 * statement with other batches of the tenant queued at the same time. A batch that fails alone fails only
 * itself: when a grouped statement fails, each of its batches is written again on its own. Writes of the same
 * absence reach the database in the order they came here.
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
    queue = { running: 0, waiting: [], busy: new Set() };
    tenants.set(tenant, queue);
  }
  const result = new Promise<AbsenceWriteResult>((resolve, reject) => {
    queue.waiting.push({ batch, resolve, reject });
  });
  startGroups(db, tenant, tenants, queue);
  return result;
}

/**
 * The batches from the front of the queue that go together, and the absence ids they touch: none while the
 * first touches an absence of a group in the database; then up to the first that touches an absence already
 * taken, or MAX_GROUP_ITEMS.
 */
function takeGroup(queue: TenantQueue): { group: Waiting[]; ids: Set<number> } {
  const ids = new Set<number>();
  const touched = (id: number) => ids.has(id) || queue.busy.has(id);
  let items = 0;
  let take = 0;
  for (; take < queue.waiting.length; take++) {
    const { upsertIds, deletes } = queue.waiting[take]!.batch;
    const size = upsertIds.length + deletes.length;
    if (take > 0 && items + size > MAX_GROUP_ITEMS) break;
    if (upsertIds.some(touched) || deletes.some(touched)) break;
    for (const id of upsertIds) ids.add(id);
    for (const id of deletes) ids.add(id);
    items += size;
  }
  return { group: queue.waiting.splice(0, take), ids };
}

/** Starts groups while fewer than WRITES_IN_DATABASE are in the database and the front of the queue may go. */
function startGroups(db: Db, tenant: string, tenants: Map<string, TenantQueue>, queue: TenantQueue): void {
  while (queue.running < WRITES_IN_DATABASE && queue.waiting.length > 0) {
    const { group, ids } = takeGroup(queue);
    if (group.length === 0) return; // the group in the database that holds its absence starts it when done
    for (const id of ids) queue.busy.add(id);
    queue.running++;
    void write(db, tenant, group).then(() => {
      queue.running--;
      for (const id of ids) queue.busy.delete(id);
      if (queue.waiting.length > 0) startGroups(db, tenant, tenants, queue);
      else if (queue.running === 0) tenants.delete(tenant);
    });
  }
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
