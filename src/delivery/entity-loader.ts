// Gathers the runners' entity refills into batched store calls: one call in flight per worker, and the
// refills asked for meanwhile go together in the next (as the Flusher does for records). Draining a backlog
// spread over many entities refills an entity after almost every acknowledgement, and one statement each
// made the store's fixed cost per statement the drain's. Knows nothing of SQL.

import type { EntityLoad, OpenDelivery } from '../store/deliveries.ts';

export interface EntityLoadFunctions {
  loadEntity(
    webhookId: string,
    entityId: number,
    fromId: number,
    throughId: number,
    limit: number,
  ): Promise<OpenDelivery[]>;
  /** Several refills in one call, results in request order. Absent: every refill runs on its own. */
  loadEntities?(loads: EntityLoad[]): Promise<OpenDelivery[][]>;
}

interface Pending {
  load: EntityLoad;
  resolve: (rows: OpenDelivery[]) => void;
  reject: (error: unknown) => void;
}

/** Refills per call at most. */
const MAX_BATCH = 500;

export class EntityLoader {
  #queue: Pending[] = [];
  #running = false;

  constructor(private readonly store: EntityLoadFunctions) {}

  /** One entity's refill; waits for the call in flight, if any, and goes with the others queued behind it. */
  load(load: EntityLoad): Promise<OpenDelivery[]> {
    if (!this.store.loadEntities) return this.#loadOne(load);
    return new Promise<OpenDelivery[]>((resolve, reject) => {
      this.#queue.push({ load, resolve, reject });
      if (this.#running) return;
      this.#running = true;
      queueMicrotask(() => void this.#run());
    });
  }

  #loadOne(l: EntityLoad): Promise<OpenDelivery[]> {
    return this.store.loadEntity(l.webhookId, l.entityId, l.fromId, l.throughId, l.limit);
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          const results =
            batch.length === 1 || !this.store.loadEntities
              ? [await this.#loadOne(batch[0]!.load)]
              : await this.store.loadEntities(batch.map((b) => b.load));
          batch.forEach((b, i) => b.resolve(results[i] ?? []));
        } catch (error) {
          // Each runner retries its own refill later (habit 9).
          for (const b of batch) b.reject(error);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
