// Batches the bookkeeping of finished attempts: records pile up while one write is in flight and go to the
// store together in the next (one statement per batch). A store failure keeps the records and retries with
// backoff; until they are written, an acknowledged event may be sent again after a crash (at least once).

import type { Logger } from '../log.ts';
import type { AttemptRecord } from '../store/deliveries.ts';

const MAX_BATCH = 5_000;
/**
 * Records wait this long for company before a write. Bookkeeping is off the latency path (an entity's next
 * event is sent as soon as the previous one is acknowledged), so this only trades a few more duplicates after
 * a crash for far fewer statements under load. On PostgreSQL 15 here an acknowledgement statement cost about
 * 0.7 ms of server CPU whether it carried 25 records or 100 (its commit's WAL flush, and its planning when not
 * prepared), against about 10 µs per record.
 */
export const GATHER_MS = 20;
const MAX_BACKOFF_MS = 5_000;

export class Flusher {
  #buffer: AttemptRecord[] = [];
  #running: Promise<void> | undefined;
  #failures = 0;
  /** Records ever added, and ever written: the buffer is FIFO, so the first #written records are stored. */
  #added = 0;
  #written = 0;
  #wrote: (() => void)[] = [];
  /** When the current batch began to gather (performance.now()): the first record's arrival, or the last write. */
  #gatherFrom = 0;

  constructor(
    private readonly write: (records: AttemptRecord[]) => Promise<void>,
    private readonly logger: Logger,
    /** Called after each successful write (the dispatcher resumes sending if it had paused). */
    private readonly onFlushed: () => void,
  ) {}

  /** Records not yet written. */
  get backlog(): number {
    return this.#buffer.length;
  }

  add(record: AttemptRecord): void {
    this.#buffer.push(record);
    this.#added++;
    if (!this.#running) this.#running = this.#run();
  }

  /**
   * Resolves true once every record added before the call is written — records added meanwhile (other
   * webhooks keep sending) are not waited for — or false when that took longer than `giveUpMs` (store down).
   */
  async drain(giveUpMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const target = this.#added;
    const deadline = Date.now() + giveUpMs;
    while (this.#written < target) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (!this.#running) this.#running = this.#run();
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#wrote.push(resolve);
        timer = setTimeout(resolve, Math.min(left, 1_000));
      });
      clearTimeout(timer);
    }
    return true;
  }

  async #run(): Promise<void> {
    this.#gatherFrom = performance.now();
    try {
      while (this.#buffer.length > 0) {
        // Let the attempts that finish meanwhile join the batch: at most one write per GATHER_MS, also under
        // load. (Writing again as soon as the last write returned made batches of a store round trip's worth
        // of attempts, about 25 at 4,000/s, and each statement's commit and planning cost more than its rows.)
        const wait = this.#gatherFrom + GATHER_MS - performance.now();
        if (wait > 0 && this.#buffer.length < MAX_BATCH)
          await new Promise((resolve) => setTimeout(resolve, wait));
        this.#gatherFrom = performance.now();
        const batch = this.#buffer.splice(0, MAX_BATCH);
        try {
          await this.write(batch);
          this.#failures = 0;
          this.#written += batch.length;
          for (const resolve of this.#wrote.splice(0)) resolve();
          this.onFlushed();
        } catch (error) {
          this.#buffer.unshift(...batch);
          this.#failures++;
          const delay = Math.min(100 * 2 ** this.#failures, MAX_BACKOFF_MS);
          this.logger.warn(
            { err: error, records: this.#buffer.length, retryInMs: delay },
            'could not record delivery attempts; retrying',
          );
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}
