// The sender: one signed POST per attempt over a keep-alive undici Pool per origin (SPEC §3 "Timeouts").
// Connect timeout 5 s, a whole-attempt deadline, the answer's body read up to 4 KiB, redirects never
// followed, and the destination rule checked on the address actually connected to (after DNS, so a name
// that re-resolves to a private address is refused). It knows nothing of the store or of retries.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import type { AttemptReport } from './outcome.ts';

export const CONNECT_TIMEOUT_MS = 5_000;
/** How much of an answer's body is kept for the delivery log. */
export const RESPONSE_BODY_KEEP_BYTES = 4 * 1024;
/** An answer body larger than this is not drained (the connection is closed instead of reused). */
const RESPONSE_BODY_DRAIN_BYTES = 256 * 1024;
/** A pool not used for this long is closed. */
const POOL_IDLE_MS = 5 * 60_000;
/** Connections of one pool (one webhook's to one origin, or all to it when requests carry no key). */
const CONNECTIONS_PER_ORIGIN = 256;
/** Parsed destination URLs kept (the cache starts over when full). */
const MAX_PARSED_URLS = 10_000;

interface Target {
  origin: string;
  path: string;
}

/** Classifies an address the destination rule refuses: its category (e.g. "private"), or undefined. */
export type AddressClassifier = (ip: string) => string | undefined;

export interface SenderOptions {
  /** The whole-attempt deadline (TIMEHOOK_DELIVERY_TIMEOUT). */
  timeoutMs: number;
  /** TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: connect to any address. */
  allowInsecure: boolean;
  classifyAddress: AddressClassifier;
  connectTimeoutMs?: number;
}

export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  body: Buffer;
  /** A shorter whole-attempt deadline than the sender's (the worker's lease ends sooner). */
  timeoutMs?: number;
  /**
   * Whose connections to use (a webhook id): requests of different keys never share a connection or wait for
   * each other's, even to one origin, so one webhook's hanging requests cannot delay another's.
   */
  poolKey?: string;
}

export interface SendResult extends AttemptReport {
  durationMs: number;
  /** The first ≤ 4 KiB of the answer's body, decoded as UTF-8 (lossily). */
  responseBody: string | undefined;
}

/** Raised (inside the connector) when the address to connect to is refused by the destination rule. */
export class BlockedAddressError extends Error {
  readonly code = 'TIMEHOOK_BLOCKED_ADDRESS';
  constructor(
    readonly address: string,
    readonly category: string,
  ) {
    super(`${address} is a ${category} address, which webhooks may not reach`);
  }
}

const TLS_CODES = /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL)/;

/** A short, log-friendly description of why an attempt got no answer. */
export function describeSendError(error: unknown, timeoutMs: number): string {
  const e = error as { code?: string; name?: string; message?: string; cause?: unknown };
  if (error instanceof BlockedAddressError) return `blocked address: ${error.message}`;
  if (e?.cause instanceof BlockedAddressError) return `blocked address: ${e.cause.message}`;
  const code = e?.code ?? '';
  if (code === 'UND_ERR_CONNECT_TIMEOUT')
    return `connect timeout: no connection within ${CONNECT_TIMEOUT_MS} ms`;
  if (
    e?.name === 'AbortError' ||
    e?.name === 'TimeoutError' ||
    code === 'UND_ERR_ABORTED' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return `timeout: no complete answer within ${timeoutMs} ms`;
  }
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') {
    return `DNS lookup failed (${code})`;
  }
  if (TLS_CODES.test(code) || /certificate|SSL|TLS/i.test(e?.message ?? '')) {
    return `TLS error: ${code || e?.message || 'handshake failed'}`;
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') {
    return `connection reset (${code})`;
  }
  if (e?.cause) return describeSendError(e.cause, timeoutMs);
  return `network error: ${code || e?.message || String(error)}`;
}

/**
 * A DNS lookup that drops addresses the destination rule refuses, and fails with BlockedAddressError when
 * none is left: net.connect then only ever dials a permitted address.
 */
function guardedLookup(classify: AddressClassifier): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error, '', 4);
        return;
      }
      const allowed = addresses.filter((a) => classify(a.address) === undefined);
      if (allowed.length === 0) {
        const first = addresses[0];
        const blocked = new BlockedAddressError(
          first?.address ?? hostname,
          classify(first?.address ?? '') ?? 'unknown',
        );
        callback(blocked, '', 4);
        return;
      }
      if (options.all) {
        (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      } else {
        callback(null, allowed[0]!.address, allowed[0]!.family);
      }
    });
  };
}

type Connector = buildConnector.connector;

/**
 * undici's connector with the destination rule: IP literals are checked before dialing, names through
 * guardedLookup, and the socket's remote address once more after connecting.
 */
function guardedConnector(options: SenderOptions): Connector {
  const connectTimeout = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  if (options.allowInsecure) return buildConnector({ timeout: connectTimeout });
  const classify = options.classifyAddress;
  const base = buildConnector({
    timeout: connectTimeout,
    lookup: guardedLookup(classify),
  });
  return (opts, callback) => {
    const literal = opts.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(literal) !== 0) {
      const category = classify(literal);
      if (category !== undefined) {
        callback(new BlockedAddressError(literal, category), null);
        return;
      }
    }
    base(opts, (error, socket) => {
      if (error || !socket) {
        callback(error ?? new Error('no socket'), null);
        return;
      }
      const remote = socket.remoteAddress;
      const category = remote === undefined ? 'unknown' : classify(remote);
      if (category !== undefined) {
        socket.destroy();
        callback(new BlockedAddressError(remote ?? 'an unknown address', category), null);
        return;
      }
      callback(null, socket);
    });
  };
}

/**
 * Limits the requests handed to one origin's pool to its connection count, so a request waits for a free
 * connection before its deadline starts: time queued behind other webhooks' requests is not the receiver's.
 */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(count: number) {
    this.#free = count;
  }

  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

export class Sender {
  readonly #pools = new Map<string, { pool: Pool; slots: Slots; lastUsed: number }>();
  readonly #targets = new Map<string, Target>();
  readonly #connector: Connector;
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(private readonly options: SenderOptions) {
    this.#connector = guardedConnector(options);
    this.#sweeper = setInterval(() => this.#closeIdlePools(), POOL_IDLE_MS);
    this.#sweeper.unref();
  }

  #poolFor(key: string, origin: string): { pool: Pool; slots: Slots } {
    let entry = this.#pools.get(key);
    if (!entry) {
      const pool = new Pool(origin, {
        connections: CONNECTIONS_PER_ORIGIN,
        pipelining: 1,
        connect: this.#connector,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        keepAliveTimeout: 4_000,
      });
      entry = { pool, slots: new Slots(CONNECTIONS_PER_ORIGIN), lastUsed: Date.now() };
      this.#pools.set(key, entry);
    }
    entry.lastUsed = Date.now();
    return entry;
  }

  /** A destination URL's origin and path, parsed once per URL (every event of a webhook goes to one URL). */
  #parse(text: string): Target {
    let target = this.#targets.get(text);
    if (!target) {
      const url = new URL(text);
      target = { origin: url.origin, path: `${url.pathname}${url.search}` };
      if (this.#targets.size >= MAX_PARSED_URLS) this.#targets.clear();
      this.#targets.set(text, target);
    }
    return target;
  }

  #closeIdlePools(): void {
    const cutoff = Date.now() - POOL_IDLE_MS;
    for (const [key, entry] of this.#pools) {
      if (entry.lastUsed < cutoff) {
        this.#pools.delete(key);
        entry.pool.close().catch(() => undefined);
      }
    }
  }

  /**
   * POSTs one event and reports what happened; never throws for a receiver's failure (those are results).
   * Redirects are not followed: a 3xx is reported as it is.
   */
  async send(request: SendRequest): Promise<SendResult> {
    let url: Target;
    try {
      if (this.#closed) throw new Error('The sender is closed.');
      url = this.#parse(request.url);
    } catch (error) {
      return failure(error, 0, this.options.timeoutMs);
    }
    const { pool, slots } = this.#poolFor(`${request.poolKey ?? ''} ${url.origin}`, url.origin);
    await slots.acquire();
    try {
      return await new Promise<SendResult>((resolve) => {
        const attempt = new Attempt(Math.min(request.timeoutMs ?? Infinity, this.options.timeoutMs), resolve);
        try {
          pool.dispatch(
            {
              method: 'POST',
              path: url.path,
              headers: request.headers,
              body: request.body,
            },
            attempt,
          );
        } catch (error) {
          attempt.onResponseError(undefined, error as Error);
        }
      });
    } finally {
      slots.release();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.pool.destroy().catch(() => undefined)));
  }
}

function failure(error: unknown, durationMs: number, timeoutMs: number): SendResult {
  return {
    statusCode: undefined,
    retryAfter: undefined,
    error: describeSendError(error, timeoutMs),
    durationMs,
    responseBody: undefined,
  };
}

const deadlineError = () => new DOMException('deadline', 'TimeoutError');

/**
 * The abort waits one turn of the event loop (setImmediate runs after I/O), so an answer that arrived while
 * the loop was busy is read before the deadline is declared missed. Module functions, not closures: nothing
 * is allocated per attempt for a deadline that almost never fires.
 */
const expire = (attempt: Attempt) => attempt.expire();
const onDeadline = (attempt: Attempt) => setImmediate(expire, attempt);

/** Raised (by us, inside undici) to stop reading an answer body beyond RESPONSE_BODY_DRAIN_BYTES. */
class BodyTooLargeError extends Error {}

/**
 * One attempt as an undici dispatch handler: the answer's status and Retry-After, the first 4 KiB of its
 * body, and the whole-attempt deadline. Cheaper than pool.request() (no AbortSignal and no body stream per
 * attempt: together about a fifth of the sender's CPU in the throughput profile). Settles exactly once.
 */
class Attempt implements Dispatcher.DispatchHandler {
  readonly #started = performance.now();
  readonly #timer: NodeJS.Timeout;
  #controller: Dispatcher.DispatchController | undefined;
  #timedOut = false;
  #settled = false;
  #statusCode = 0;
  #retryAfter: string | undefined;
  readonly #kept: Buffer[] = [];
  #keptBytes = 0;
  #total = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly resolve: (result: SendResult) => void,
  ) {
    this.#timer = setTimeout(onDeadline, timeoutMs, this);
  }

  /** The deadline passed (and the event loop has read what arrived meanwhile): abort unless settled. */
  expire(): void {
    if (this.#settled) return;
    this.#timedOut = true;
    this.#controller?.abort(deadlineError());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#timedOut) controller.abort(deadlineError());
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.#statusCode = statusCode;
    const retryAfter = headers['retry-after'];
    this.#retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#total += chunk.length;
    if (this.#keptBytes < RESPONSE_BODY_KEEP_BYTES) {
      const part = chunk.subarray(0, RESPONSE_BODY_KEEP_BYTES - this.#keptBytes);
      this.#kept.push(part);
      this.#keptBytes += part.length;
    }
    if (this.#total > RESPONSE_BODY_DRAIN_BYTES) {
      // Not worth draining: report the answer now and let undici close the connection.
      this.#succeed();
      controller.abort(new BodyTooLargeError());
    }
  }

  onResponseEnd(): void {
    this.#succeed();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.#settled) return;
    this.#settle(failure(this.#timedOut ? deadlineError() : error, this.#elapsed(), this.timeoutMs));
  }

  #succeed(): void {
    if (this.#settled) return;
    this.#settle({
      statusCode: this.#statusCode,
      retryAfter: this.#retryAfter,
      error: undefined,
      durationMs: this.#elapsed(),
      responseBody: this.#keptBytes === 0 ? '' : Buffer.concat(this.#kept).toString('utf8'),
    });
  }

  #elapsed(): number {
    return performance.now() - this.#started;
  }

  #settle(result: SendResult): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.resolve(result);
  }
}
