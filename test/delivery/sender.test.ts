// The sender on real sockets: the destination rule on the address actually connected to, redirects not
// followed, the 4 KiB body limit, timeouts and connection errors as results, never exceptions.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { Sender } from '../../src/delivery/sender.ts';
import { classifyAddress } from '../../src/net/destination-guard.ts';
import { reply, startReceiver } from '../helpers/receiver.ts';

const receiver = await startReceiver((req) => {
  if (req.path === '/big') return { status: 200, body: 'x'.repeat(10_000) };
  if (req.path === '/redirect') return reply.redirect('/elsewhere', 301);
  if (req.path === '/hang') return reply.hang();
  if (req.path === '/retry') return reply.retryAfter(429, '7');
  return reply.ok();
});
const strict = new Sender({ timeoutMs: 1_000, allowInsecure: false, classifyAddress });
const insecure = new Sender({ timeoutMs: 1_000, allowInsecure: true, classifyAddress });
/** The rule enforced, with a classifier that refuses nothing: proves the guarded path connects normally. */
const permissive = new Sender({ timeoutMs: 1_000, allowInsecure: false, classifyAddress: () => undefined });
after(async () => {
  await Promise.all([strict.close(), insecure.close(), permissive.close()]);
  await receiver.close();
});

const post = (sender: Sender, url: string) =>
  sender.send({ url, headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });

describe('the destination rule at connect time', () => {
  test('refuses a loopback IP literal without connecting', async () => {
    const before = receiver.requests.length;
    const result = await post(strict, receiver.url('/a'));
    assert.equal(result.statusCode, undefined);
    assert.match(result.error!, /^blocked address: 127\.0\.0\.1 is a loopback address/);
    assert.equal(receiver.requests.length, before);
  });

  test('refuses a name that resolves to a loopback address (no DNS rebinding around the rule)', async () => {
    const before = receiver.requests.length;
    const result = await post(strict, receiver.url('/a').replace('127.0.0.1', 'localhost'));
    assert.equal(result.statusCode, undefined);
    assert.match(result.error!, /^blocked address: .* is a loopback address/);
    assert.equal(receiver.requests.length, before);
  });

  test('connects through the guarded lookup when the address is allowed', async () => {
    const result = await post(permissive, receiver.url('/a').replace('127.0.0.1', 'localhost'));
    assert.equal(result.statusCode, 200);
  });

  test('TIMEHOOK_ALLOW_INSECURE_DESTINATIONS connects anywhere', async () => {
    const result = await post(insecure, receiver.url('/a'));
    assert.equal(result.statusCode, 200);
    assert.equal(result.responseBody, 'ok');
  });
});

describe('answers and failures', () => {
  test('keeps only the first 4 KiB of the answer', async () => {
    const result = await post(insecure, receiver.url('/big'));
    assert.equal(result.statusCode, 200);
    assert.equal(result.responseBody, 'x'.repeat(4096));
  });

  test('reports an answer whose body goes on and on once 256 KiB have arrived, without reading the rest', async () => {
    // 300 KiB, then the body never ends: only stopping at the drain limit gives a result before the deadline.
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('y'.repeat(300 * 1024));
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = endless.address() as AddressInfo;
      const result = await post(insecure, `http://127.0.0.1:${port}/endless`);
      assert.equal(result.error, undefined);
      assert.equal(result.statusCode, 200);
      assert.equal(result.responseBody, 'y'.repeat(4096));
    } finally {
      endless.closeAllConnections();
      await new Promise((resolve) => endless.close(resolve));
    }
  });

  test('does not follow a redirect', async () => {
    const before = receiver.requests.length;
    const result = await post(insecure, receiver.url('/redirect'));
    assert.equal(result.statusCode, 301);
    assert.equal(receiver.requests.length, before + 1);
    assert.ok(!receiver.requests.some((r) => r.path === '/elsewhere'));
  });

  test('reports Retry-After', async () => {
    const result = await post(insecure, receiver.url('/retry'));
    assert.equal(result.statusCode, 429);
    assert.equal(result.retryAfter, '7');
  });

  test('ends a hanging attempt at the deadline', async () => {
    const result = await post(insecure, receiver.url('/hang'));
    assert.equal(result.statusCode, undefined);
    assert.match(result.error!, /^timeout: no complete answer within 1000 ms/);
    assert.ok(result.durationMs >= 900, String(result.durationMs));
  });

  test('reports a refused connection', async () => {
    const result = await post(insecure, 'http://127.0.0.1:9/');
    assert.equal(result.statusCode, undefined);
    assert.equal(result.error, 'connection refused');
  });

  test('reports a name that does not resolve', async () => {
    const result = await post(insecure, 'http://no-such-host.invalid/');
    assert.equal(result.statusCode, undefined);
    assert.match(result.error!, /^DNS lookup failed/);
  });

  test('reports a TLS failure', async () => {
    // An https request to a plain-HTTP port fails the handshake.
    const result = await post(insecure, receiver.url('/a').replace('http:', 'https:'));
    assert.equal(result.statusCode, undefined);
    assert.match(result.error!, /^(TLS error|connection reset)/);
  });
});

describe('the whole-attempt deadline', () => {
  test('does not count time spent waiting for a free connection to the origin', async () => {
    const slow = await startReceiver(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      return reply.ok();
    });
    // 600 ms of slack for a loaded machine; a wait that counted would add the whole second.
    const sender = new Sender({ timeoutMs: 1_600, allowInsecure: true, classifyAddress });
    try {
      // More requests than the pool has connections: the later ones wait ~1 s for a connection, then take
      // ~1 s themselves — over the deadline if the wait counted.
      const results = await Promise.all(Array.from({ length: 300 }, () => post(sender, slow.url('/slow'))));
      const failed = results.filter((r) => r.statusCode !== 200).map((r) => r.error);
      assert.deepEqual(failed, []);
    } finally {
      await sender.close();
      await slow.close();
    }
  });
});
