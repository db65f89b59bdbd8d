// Background upkeep on the worker role: flips webhooks past validUntil to Disabled/Expired and prunes the
// change log past TIMEHOOK_CHANGE_RETENTION in bounded batches. Store failures are logged and retried.

import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { pruneChanges } from './store/changes.ts';
import { pruneDeliveries } from './store/deliveries.ts';
import type { Db } from './store/db.ts';
import { expireWebhooks } from './store/webhooks.ts';

const EXPIRY_INTERVAL_MS = 1_000;
const PRUNE_INTERVAL_MS = 60_000;
const PRUNE_BATCH = 5_000;

export interface Maintenance {
  stop(): Promise<void>;
}

export function startMaintenance(db: Db, config: Config, logger: Logger): Maintenance {
  let running: Promise<unknown> = Promise.resolve();
  let lastPrune = 0;
  const tick = async () => {
    try {
      const expired = await expireWebhooks(db, new Date());
      if (expired > 0) logger.info({ expired }, 'webhooks expired');
      if (Date.now() - lastPrune >= PRUNE_INTERVAL_MS) {
        lastPrune = Date.now();
        const cutoff = new Date(Date.now() - config.changeRetentionMs);
        let pruned = 0;
        for (let n = PRUNE_BATCH; n === PRUNE_BATCH; pruned += n)
          n = await pruneChanges(db, cutoff, PRUNE_BATCH);
        if (pruned > 0) logger.info({ pruned }, 'change log pruned');
        let prunedDeliveries = 0;
        for (let n = PRUNE_BATCH; n === PRUNE_BATCH; prunedDeliveries += n)
          n = await pruneDeliveries(db, cutoff, PRUNE_BATCH);
        if (prunedDeliveries > 0) logger.info({ pruned: prunedDeliveries }, 'delivery log pruned');
      }
    } catch (error) {
      logger.warn({ err: error }, 'maintenance failed; retrying');
    }
  };
  const timer = setInterval(() => {
    running = tick();
  }, EXPIRY_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
