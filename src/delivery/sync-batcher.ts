// Coalesces the runners' plain syncs into one store call per turn of the event loop (migration 000008): a
// change notification wakes every runner of the tenant at once, and each would otherwise run a statement of
// its own. Knows nothing of SQL: the single and the batched sync are handed in.

import type { SyncParams, SyncResult } from '../store/deliveries.ts';

export interface SyncFunctions {
  sync(params: SyncParams): Promise<SyncResult>;
  /** Plain syncs of one owner in one call, results in request order. Absent: every sync runs on its own. */
  syncMany?(params: SyncParams[]): Promise<SyncResult[]>;
}

interface Pending {
  params: SyncParams;
  resolve: (result: SyncResult) => void;
  reject: (error: unknown) => void;
}

/** Requests per batched call: bounds the locks one transaction holds and how long it holds them. */
const MAX_BATCH = 32;

export class SyncBatcher {
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(private readonly store: SyncFunctions) {}

  /**
   * Runs one sync. Plain ones asked for in the same synchronous run of code go to the store together, after
   * it (a microtask); the others run at once, on their own.
   */
  sync(params: SyncParams): Promise<SyncResult> {
    if (!params.plain || !this.store.syncMany) return this.store.sync(params);
    return new Promise<SyncResult>((resolve, reject) => {
      this.#pending.push({ params, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    // At least two statements when there are two syncs: they run side by side on the store's cores, and the
    // first runners start sending sooner than after one statement that does every sync.
    const size = Math.max(1, Math.min(MAX_BATCH, Math.ceil(pending.length / 2)));
    for (let i = 0; i < pending.length; i += size) void this.#run(pending.slice(i, i + size));
  }

  async #run(batch: Pending[]): Promise<void> {
    if (batch.length > 1 && this.store.syncMany) {
      let results: SyncResult[] | undefined;
      try {
        results = await this.store.syncMany(batch.map((b) => b.params));
      } catch {
        // One webhook's failure must not hold the others back: each runs again on its own below, and only the
        // one that fails again reports it (its runner backs off).
      }
      if (results) {
        batch.forEach((b, i) => b.resolve(results[i]!));
        return;
      }
    }
    for (const b of batch) this.store.sync(b.params).then(b.resolve, b.reject);
  }
}
