// A scriptable webhook receiver on 127.0.0.1:0 for delivery tests: answers each request as the script says
// (200, 500, 410, 429 + Retry-After, 503, a redirect, a delay, or never) and records every request with its
// arrival and answer times. Closing it destroys open sockets, hanging ones included.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ReceivedRequest {
  /** 0-based arrival index. */
  index: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() at arrival (body read). */
  arrivedAt: number;
  /** Date.now() when the answer was sent; undefined while pending or for a hang. */
  answeredAt: number | undefined;
  /** The status sent; undefined for a hang. */
  status: number | undefined;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Never answer (the sender's timeout must end the attempt). */
  hang?: boolean;
}

/** Decides the answer to one request; the default answers 200. */
export type Script = (request: ReceivedRequest) => Reply | Promise<Reply>;

export const reply = {
  ok: (): Reply => ({ status: 200, body: 'ok' }),
  status: (status: number, body = ''): Reply => ({ status, body }),
  gone: (): Reply => ({ status: 410, body: 'gone' }),
  retryAfter: (status: 429 | 503, value: string): Reply => ({
    status,
    headers: { 'retry-after': value },
    body: 'slow down',
  }),
  redirect: (location: string, status = 302): Reply => ({ status, headers: { location } }),
  hang: (): Reply => ({ hang: true }),
  delayed: (delayMs: number, status = 200): Reply => ({ status, delayMs, body: 'ok' }),
};

export interface Receiver {
  /** http://127.0.0.1:<port> */
  origin: string;
  /** origin + path, e.g. url('/hooks/a'). */
  url(path?: string): string;
  readonly requests: ReceivedRequest[];
  /** Requests to one path. */
  requestsTo(path: string): ReceivedRequest[];
  script: Script;
  /** Resolves when `predicate` holds over the recorded requests (polled), or rejects after timeoutMs. */
  waitFor(
    predicate: (requests: ReceivedRequest[]) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<void>;
  close(): Promise<void>;
}

/** Polls `predicate` every 20 ms until it holds, or rejects naming `what` after timeoutMs. */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function startReceiver(script: Script = () => reply.ok()): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const receiver = { script } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const record: ReceivedRequest = {
        index: requests.length,
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        arrivedAt: Date.now(),
        answeredAt: undefined,
        status: undefined,
      };
      requests.push(record);
      void Promise.resolve()
        .then(() => receiver.script(record))
        .then((answer) => {
          if (answer.hang) return;
          const send = () => {
            if (res.destroyed) return;
            record.status = answer.status ?? 200;
            record.answeredAt = Date.now();
            res.writeHead(record.status, answer.headers ?? {});
            res.end(answer.body ?? '');
          };
          if (answer.delayMs) {
            const timer = setTimeout(() => {
              timers.delete(timer);
              send();
            }, answer.delayMs);
            timers.add(timer);
          } else {
            send();
          }
        });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('receiver has no port');
  const origin = `http://127.0.0.1:${address.port}`;
  Object.assign(receiver, {
    origin,
    url: (path = '/') => `${origin}${path}`,
    requests,
    requestsTo: (path: string) => requests.filter((r) => r.path === path),
    waitFor: (predicate: (r: ReceivedRequest[]) => boolean, timeoutMs = 15_000, what = 'requests') =>
      waitUntil(() => predicate(requests), timeoutMs, what),
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  return receiver;
}
