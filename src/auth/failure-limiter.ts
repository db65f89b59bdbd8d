// Slows down secret guessing: after MAX_FAILURES bad secrets for one client id within the window,
// the token endpoint answers 429 with Retry-After until the window has passed. In memory, per process.

const MAX_FAILURES = 5;
const WINDOW_MS = 60_000;
const MAX_TRACKED = 10_000;

export class FailureLimiter {
  readonly #failures = new Map<string, number[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Seconds to wait before this client id may try again, or 0 when it may try now. */
  retryAfterSeconds(clientId: string): number {
    const recent = this.#recent(clientId);
    if (recent.length < MAX_FAILURES) return 0;
    return Math.max(1, Math.ceil((recent[0]! + WINDOW_MS - this.now()) / 1000));
  }

  recordFailure(clientId: string): void {
    if (this.#failures.size >= MAX_TRACKED && !this.#failures.has(clientId)) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
    this.#failures.set(clientId, [...this.#recent(clientId), this.now()].slice(-MAX_FAILURES));
  }

  recordSuccess(clientId: string): void {
    this.#failures.delete(clientId);
  }

  #recent(clientId: string): number[] {
    const cutoff = this.now() - WINDOW_MS;
    return (this.#failures.get(clientId) ?? []).filter((t) => t > cutoff);
  }
}
