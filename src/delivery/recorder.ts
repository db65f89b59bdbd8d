// The recorder of delivery engine v2 (docs/design/delivery.md, step 8): outcomes of all lanes gather while one
// write is in flight and go to the store together in the next, one statement each; a caller's promise
// resolves once its records are durable. Lanes' cursors ride along. Knows nothing of SQL: the write is
// handed in.

export interface RecordBatch<R> {
  records: R[];
  /** Lane key → its cursor (every version at or below it has a row). */
  cursors: Map<string, number>;
}

export interface RecorderOptions<R, A> {
  /**
   * Writes one batch atomically and answers something about it (e.g. the ids of the rows written), which every
   * caller of the batch receives; rejects when the store failed (the batch is then written again).
   */
  write(batch: RecordBatch<R>): Promise<A>;
  /** Records per statement at most. */
  maxBatch?: number;
  /** Waits between tries after a failed write: the first, doubling up to the last. */
  backoffMs?: readonly [number, number];
  /** Called with each failed write's error (for the log); the batch is kept and written again. */
  onError?(error: unknown): void;
}

interface Waiting<R, A> {
  records: R[];
  resolve(answer: A): void;
  reject(error: Error): void;
}

export class RecorderClosedError extends Error {}

export class Recorder<R, A = void> {
  readonly #options: RecorderOptions<R, A>;
  #queue: Waiting<R, A>[] = [];
  #cursors = new Map<string, number>();
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: RecorderOptions<R, A>) {
    this.#options = options;
  }

  /** Queues records; resolves once they are durable, with what the write answered. */
  record(records: R[]): Promise<A> {
    if (this.#closed) return Promise.reject(new RecorderClosedError('The recorder is closed.'));
    return new Promise<A>((resolve, reject) => {
      this.#queue.push({ records, resolve, reject });
      this.#start();
    });
  }

  /** Notes a lane's cursor for the next write (a later note of the same lane replaces it). */
  noteCursor(lane: string, cursor: number): void {
    if (this.#closed) return;
    this.#cursors.set(lane, cursor);
    this.#start();
  }

  /** Writes what is queued, then refuses more; pending callers of a failing store are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
  }

  #start(): void {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
      if (!this.#closed && (this.#queue.length > 0 || this.#cursors.size > 0)) this.#start();
    });
  }

  async #run(): Promise<void> {
    const max = this.#options.maxBatch ?? 1000;
    const [firstWait, lastWait] = this.#options.backoffMs ?? [50, 5000];
    while (this.#queue.length > 0 || this.#cursors.size > 0) {
      // One batch: whole callers, up to max records (a caller larger than max goes alone).
      const taken: Waiting<R, A>[] = [];
      let size = 0;
      while (this.#queue.length > 0 && (taken.length === 0 || size + this.#queue[0]!.records.length <= max)) {
        const next = this.#queue.shift()!;
        taken.push(next);
        size += next.records.length;
      }
      const cursors = this.#cursors;
      this.#cursors = new Map();
      const batch = { records: taken.flatMap((t) => t.records), cursors };
      for (let wait = firstWait; ; wait = Math.min(wait * 2, lastWait)) {
        try {
          const answer = await this.#options.write(batch);
          for (const t of taken) t.resolve(answer);
          break;
        } catch (error) {
          this.#options.onError?.(error);
          if (this.#closed) {
            for (const t of [...taken, ...this.#queue.splice(0)])
              t.reject(new RecorderClosedError('The store failed while closing.'));
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    }
  }
}
