// A benchmark receiver: a child process (forked with IPC, advanced serialization) that listens on one or
// more ports of 127.0.0.1, answers each webhook POST at once and records what arrived. It reports to the
// parent only when asked, so it spends nothing on reporting while a workload runs.
//
// Per port a mode: "ok" answers 200; "down" answers 503 (no Retry-After) and records nothing; "hang" reads
// the request and never answers (the sender's timeout ends it); "flaky" answers 500 to the first attempt of
// about one webhook-id in a hundred (bench/failures.ts), records nothing for it, and treats the rest, that
// id's later attempts included, as "ok" does. Per URL path (one path per webhook) it keeps
// the first arrival of every changeVersion per entity in arrival order (for the ledger's order check), the
// duplicates, the arrival times, and checks a sample of the Standard Webhooks signatures.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { failsFirstAttempt } from './failures.ts';
import type { ReceiverCounts, ReceiverMessage, ReceiverMode, ReceiverReply, PathReport } from './protocol.ts';

/** Signatures checked: the first request of every path and then one in this many. */
const VERIFY_EVERY = 100;
/** Duplicates described per path (version, entity, time since its first arrival). */
const DUPLICATE_SAMPLES = 10;
/** First-arrival times kept per path for those descriptions (bounded memory on a million deliveries). */
const FIRST_TIMES_KEPT = 200_000;
/** Standard Webhooks tolerance for webhook-timestamp. */
const TIMESTAMP_TOLERANCE_S = 5 * 60;

const now = () => performance.timeOrigin + performance.now();

class Growable {
  #data = new Float64Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.#data.length) {
      const next = new Float64Array(this.#data.length * 2);
      next.set(this.#data);
      this.#data = next;
    }
    this.#data[this.length++] = value;
  }

  snapshot(): Float64Array {
    return this.#data.slice(0, this.length);
  }
}

/** A path's report in the making: its counts as reported, plus the sets and growing arrays behind them. */
interface PathState extends Omit<PathReport, 'path' | 'versions' | 'times'> {
  seen: Set<number>;
  /** version → first arrival time, kept only to describe duplicates (sampled below). */
  firstTimes: Map<number, number>;
  versions: Growable;
  times: Growable;
}

const paths = new Map<string, PathState>();
const keys = new Map<string, Buffer[]>();
const modes = new Map<number, ReceiverMode>();
const hung = new Set<Socket>();
/** The webhook-ids whose first attempt a flaky port failed (their next attempt is answered 200). */
const failedIds = new Set<string>();
let refused = 0;
let hangs = 0;
let totalFirsts = 0;
let totalRequests = 0;

function stateOf(path: string): PathState {
  let state = paths.get(path);
  if (!state) {
    state = {
      requests: 0,
      firsts: 0,
      duplicates: 0,
      missingHeaders: 0,
      badBodies: 0,
      sigChecked: 0,
      sigFailed: 0,
      firstAt: 0,
      lastAt: 0,
      seen: new Set(),
      firstTimes: new Map(),
      duplicateSamples: [],
      entities: new Map(),
      versions: new Growable(),
      times: new Growable(),
    };
    paths.set(path, state);
  }
  return state;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Verifies a Standard Webhooks signature header against the path's keys (any listed signature may match). */
function verify(path: string, id: string, timestamp: string, signature: string, body: Buffer): boolean {
  const candidates = keys.get(path);
  if (!candidates) return true; // no key registered for this path: nothing to check against
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(Date.now() / 1000 - ts) > TIMESTAMP_TOLERANCE_S) return false;
  const given = signature
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const key of candidates) {
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
    if (given.some((g) => g.length === expected.length && timingSafeEqual(g, expected))) return true;
  }
  return false;
}

function record(path: string, req: IncomingMessage, body: Buffer, at: number): void {
  const state = stateOf(path);
  state.requests++;
  totalRequests++;
  const id = header(req, 'webhook-id');
  const timestamp = header(req, 'webhook-timestamp');
  const signature = header(req, 'webhook-signature');
  if (!id || !timestamp || !signature) state.missingHeaders++;
  let version: number;
  let entity: number;
  try {
    const event = JSON.parse(body.toString('utf8')) as { data?: { id?: unknown; changeVersion?: unknown } };
    const cv = event.data?.changeVersion;
    entity = Number(event.data?.id);
    version = typeof cv === 'string' && /^[0-9A-F]{20}$/.test(cv) ? Number.parseInt(cv, 16) : Number.NaN;
    if (!Number.isSafeInteger(version) || !Number.isSafeInteger(entity)) throw new Error('bad event');
  } catch {
    state.badBodies++;
    return;
  }
  if (id && timestamp && signature && (state.requests === 1 || state.requests % VERIFY_EVERY === 0)) {
    state.sigChecked++;
    if (!verify(path, id, timestamp, signature, body)) state.sigFailed++;
  }
  if (state.seen.has(version)) {
    state.duplicates++;
    if (state.duplicateSamples.length < DUPLICATE_SAMPLES) {
      state.duplicateSamples.push({ version, entity, afterMs: at - (state.firstTimes.get(version) ?? at) });
    }
    return;
  }
  state.seen.add(version);
  if (state.firstTimes.size < FIRST_TIMES_KEPT) state.firstTimes.set(version, at);
  state.firsts++;
  totalFirsts++;
  if (state.firstAt === 0) state.firstAt = at;
  state.lastAt = at;
  let list = state.entities.get(entity);
  if (!list) state.entities.set(entity, (list = []));
  list.push(version);
  state.versions.push(version);
  state.times.push(at);
}

function handle(port: number, req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const at = now();
    const mode = modes.get(port) ?? 'ok';
    if (mode === 'hang') {
      hangs++;
      hung.add(req.socket);
      req.socket.once('close', () => hung.delete(req.socket));
      return;
    }
    if (mode === 'down') {
      refused++;
      res.writeHead(503, { 'content-length': '0' });
      res.end();
      return;
    }
    if (mode === 'flaky') {
      const id = header(req, 'webhook-id');
      if (id !== undefined && !failedIds.has(id) && failsFirstAttempt(id)) {
        failedIds.add(id);
        res.writeHead(500, { 'content-length': '0' });
        res.end();
        return;
      }
    }
    res.writeHead(200, { 'content-length': '0' });
    res.end();
    record((req.url ?? '/').split('?')[0]!, req, Buffer.concat(chunks), at);
  });
}

function reset(): void {
  paths.clear();
  keys.clear();
  for (const port of modes.keys()) modes.set(port, 'ok');
  for (const socket of hung) socket.destroy();
  hung.clear();
  failedIds.clear();
  refused = 0;
  hangs = 0;
  totalFirsts = 0;
  totalRequests = 0;
}

function counts(): ReceiverCounts {
  return {
    firsts: totalFirsts,
    requests: totalRequests,
    refused,
    hangs,
    failedFirstAttempts: failedIds.size,
  };
}

function report(withArrivals: boolean): PathReport[] {
  return [...paths].map(([path, s]) => ({
    path,
    requests: s.requests,
    firsts: s.firsts,
    duplicates: s.duplicates,
    missingHeaders: s.missingHeaders,
    badBodies: s.badBodies,
    sigChecked: s.sigChecked,
    sigFailed: s.sigFailed,
    firstAt: s.firstAt,
    lastAt: s.lastAt,
    duplicateSamples: s.duplicateSamples,
    entities: s.entities,
    ...(withArrivals ? { versions: s.versions.snapshot(), times: s.times.snapshot() } : {}),
  }));
}

async function listen(): Promise<Server> {
  const server = createServer();
  // Longer than any sender's keep-alive, so an idle connection is never closed under a request in flight.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  modes.set(port, 'ok');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => handle(port, req, res));
  return server;
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('bench/receiver.ts must be forked with an IPC channel.');
  const count = Math.max(1, Number(process.argv[2] ?? '1'));
  const servers: Server[] = [];
  for (let i = 0; i < count; i++) servers.push(await listen());
  const send = (message: ReceiverReply) => process.send!(message);
  process.on('message', (message: ReceiverMessage) => {
    switch (message.t) {
      case 'keys':
        for (const [path, list] of message.keys) {
          keys.set(
            path,
            list.map((key) => Buffer.from(key.replace(/^whsec_/, ''), 'base64')),
          );
        }
        send({ t: 'reply', id: message.id, data: null });
        break;
      case 'mode':
        modes.set(message.port, message.mode);
        if (message.mode !== 'hang') {
          for (const socket of hung) socket.destroy();
          hung.clear();
        }
        send({ t: 'reply', id: message.id, data: null });
        break;
      case 'counts':
        send({ t: 'reply', id: message.id, data: counts() });
        break;
      case 'report':
        send({ t: 'reply', id: message.id, data: { paths: report(message.arrivals), ...counts() } });
        break;
      case 'reset':
        reset();
        send({ t: 'reply', id: message.id, data: null });
        break;
    }
  });
  // The parent went away (even by SIGKILL): stop at once.
  process.on('disconnect', () => process.exit(0));
  send({ t: 'ready', ports: servers.map((s) => (s.address() as { port: number }).port) });
}

await main();
