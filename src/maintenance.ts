// Background upkeep on the worker role: flips webhooks past validUntil to Disabled/Expired (every second, on
// every worker: idempotent and cheap), prunes the change log and the delivery log past
// TIMEHOOK_CHANGE_RETENTION (on one worker at a time, under an advisory lock, in bounded batches) and, on the
// embedded store only, vacuums the tables as autovacuum would (store/upkeep.ts; a PostgreSQL server does that
// itself). Store failures are logged and retried at the next round; they never end the process.

import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { pruneChangeLog } from './store/changes.ts';
import { pruneDeliveries } from './store/deliveries.ts';
import type { Db, Queryable } from './store/db.ts';
import { runUpkeep, upkeepDue } from './store/upkeep.ts';
import { expireWebhooks } from './store/webhooks.ts';

const EXPIRY_INTERVAL_MS = 1_000;
const FIRST_PRUNE_AFTER_MS = 5_000;
const PRUNE_INTERVAL_MS = 60_000;
const PRUNE_BATCH = 5_000;
/**
 * Between two prune batches: each batch is its own short statement (no long transaction, no long row
 * locks), and the pause lets delivery's statements take the connection and the disk in between.
 */
const PRUNE_PAUSE_MS = 20;
/** Autovacuum's default naptime: how often the embedded store's tables are checked for VACUUM. */
const UPKEEP_INTERVAL_MS = 60_000;
const FIRST_UPKEEP_AFTER_MS = 10_000;
/**
 * A VACUUM that took longer is logged at info (the embedded store waits for it meanwhile). Steps are
 * one statement each with PRUNE_PAUSE_MS between them, so delivery's statements run in between.
 */
const SLOW_UPKEEP_MS = 1_000;
/** The advisory lock that makes one worker at a time prune (pg_try_advisory_lock; the others skip the round). */
export const PRUNE_LOCK_KEY = 727_364_002;

export interface Maintenance {
  stop(): Promise<void>;
}

export interface MaintenanceOptions {
  pruneIntervalMs?: number;
  firstPruneAfterMs?: number;
  upkeepIntervalMs?: number;
  firstUpkeepAfterMs?: number;
}

/** Runs `work` every intervalMs, never two at once; the returned stop() waits for the running one. */
function every(firstAfterMs: number, intervalMs: number, work: () => Promise<void>): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const schedule = (delay: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = work().then(
        () => schedule(intervalMs),
        () => schedule(intervalMs),
      );
    }, delay);
    timer.unref();
  };
  schedule(firstAfterMs);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}

export function startMaintenance(
  db: Db,
  config: Config,
  logger: Logger,
  options: MaintenanceOptions = {},
): Maintenance {
  let stopping = false;
  const pause = () => new Promise((resolve) => setTimeout(resolve, PRUNE_PAUSE_MS));

  const expire = async () => {
    try {
      const expired = await expireWebhooks(db, new Date());
      if (expired > 0) logger.info({ expired }, 'webhooks expired');
    } catch (error) {
      logger.warn({ err: error }, 'webhook expiry sweep failed; retrying');
    }
  };

  const prune = async (session: Queryable) => {
    const cutoff = new Date(Date.now() - config.changeRetentionMs);
    const changes = stopping
      ? 0
      : await pruneChangeLog(session, cutoff, PRUNE_BATCH, async () => {
          await pause();
          return !stopping;
        });
    if (changes > 0) logger.info({ pruned: changes }, 'change log pruned');
    let deliveries = 0;
    for (let next: number | undefined = 0; next !== undefined && !stopping;) {
      const step = await pruneDeliveries(session, cutoff, PRUNE_BATCH, next);
      deliveries += step.deleted;
      next = step.next;
      if (next !== undefined) await pause();
    }
    if (deliveries > 0) logger.info({ pruned: deliveries }, 'delivery log pruned');
  };

  const pruneOnce = async () => {
    try {
      const ran = await db.tryWithLock(PRUNE_LOCK_KEY, prune);
      if (!ran) logger.debug('another worker is pruning; skipped this round');
    } catch (error) {
      logger.warn({ err: error }, 'pruning failed; retrying at the next round');
    }
  };

  const upkeepOnce = async () => {
    try {
      for (const [i, step] of (await upkeepDue(db)).entries()) {
        if (stopping) return;
        if (i > 0) await pause();
        const started = performance.now();
        await runUpkeep(db, step);
        const ms = Math.round(performance.now() - started);
        const fields = { table: step.table || '(database)', ms };
        if (ms >= SLOW_UPKEEP_MS) logger.info(fields, 'embedded store upkeep');
        else logger.debug(fields, 'embedded store upkeep');
      }
    } catch (error) {
      logger.warn({ err: error }, 'embedded store upkeep failed; retrying at the next round');
    }
  };

  const stopExpiry = every(EXPIRY_INTERVAL_MS, EXPIRY_INTERVAL_MS, expire);
  const stopUpkeep =
    db.kind === 'pglite'
      ? every(
          options.firstUpkeepAfterMs ?? FIRST_UPKEEP_AFTER_MS,
          options.upkeepIntervalMs ?? UPKEEP_INTERVAL_MS,
          upkeepOnce,
        )
      : async () => undefined;
  const stopPruning = every(
    options.firstPruneAfterMs ?? FIRST_PRUNE_AFTER_MS,
    options.pruneIntervalMs ?? PRUNE_INTERVAL_MS,
    pruneOnce,
  );
  return {
    async stop() {
      stopping = true;
      await Promise.all([stopExpiry(), stopPruning(), stopUpkeep()]);
    },
  };
}
