// `timehook demo` (SPEC §5): the whole flow on a fresh machine, in one process. An embedded store in a temp
// directory, a sample tenant and data, a local receiver that verifies every signature with the
// standardwebhooks package, a webhook, a stream of absence changes through the HTTP API, and a live progress
// line (changes/s, delivered/s, lag p50/p99) until Ctrl-C or --duration.

import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { ALL_SCOPES } from '../domain/scopes.ts';
import { createLogger } from '../log.ts';
import { startServer } from '../main.ts';
import { hashSecret } from '../security/password.ts';
import { insertClient } from '../store/clients.ts';
import { ensureTenant } from '../store/tenants.ts';
import { UsageError } from './main.ts';

const PREFIX = '/connector/protimeapi/api/v1';
const TENANT = 'demo';
const PEOPLE = 20;
const ENTITIES = 200;
const USER_AGENT = 'TimehookDemo/1.0';

interface Verifier {
  verify(payload: string, headers: Record<string, string>): unknown;
}

/** standardwebhooks is a development dependency: present after `npm ci`, absent in a production install. */
async function loadVerifier(key: string): Promise<Verifier> {
  try {
    const { Webhook } = await import('standardwebhooks');
    return new Webhook(key);
  } catch {
    throw new UsageError(
      'The demo verifies signatures with the standardwebhooks package, a development dependency; run `npm ci` (not --omit=dev) first.',
    );
  }
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Receipt {
  arrivedAt: number;
}

class DemoReceiver {
  readonly server: Server;
  verifier: Verifier | undefined;
  received = 0;
  verified = 0;
  badSignatures = 0;
  readonly seenIds = new Set<string>();
  duplicates = 0;
  /** changeVersion → arrival time, until the write that made it is known. */
  readonly arrivals = new Map<string, Receipt>();

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const arrivedAt = performance.now();
        const body = Buffer.concat(chunks).toString('utf8');
        this.received++;
        const headers = {
          'webhook-id': String(req.headers['webhook-id'] ?? ''),
          'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
          'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
        };
        try {
          const event = this.verifier!.verify(body, headers) as { data: { changeVersion: string } };
          this.verified++;
          if (this.seenIds.has(headers['webhook-id'])) this.duplicates++;
          else this.seenIds.add(headers['webhook-id']);
          this.arrivals.set(event.data.changeVersion, { arrivedAt });
          res.writeHead(204).end();
        } catch {
          this.badSignatures++;
          res.writeHead(400).end('bad signature');
        }
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as { port: number };
    return `http://127.0.0.1:${port}/webhook`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

async function api<T = unknown>(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${base}${PREFIX}${path}`, {
    method,
    headers: {
      'user-agent': USER_AGENT,
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

const definition = (id: number, name: string, code: string) => ({
  name: { default: name, translations: { nl: name } },
  code,
  isEnabled: true,
  id,
});

function sampleAbsence(entity: number, step: number) {
  const person = (entity % PEOPLE) + 1;
  const day = 1 + (entity % 28);
  return {
    person: { id: person },
    resultingAbsenceDefinition: { id: 10 + (step % 2) },
    requestedAbsenceDefinition: { id: 10 },
    shiftDefinition: { id: 20 },
    date: `2026-03-${String(day).padStart(2, '0')}`,
    startTimeInMinutes: 480,
    durationInMinutes: 1 + (step % 480),
    calculatedDurationInMinutes: 1 + (step % 480),
    dayPart: step % 2 === 0 ? 'First' : 'Second',
    request: { id: `demo-${person}-${entity}` },
    status: 'Manual',
    approvalLevel: step % 3 === 0 ? 'AwaitingApproval' : 'Approved',
    isLocked: false,
    periodType: 'Day',
  };
}

export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: 'string' },
      rate: { type: 'string', default: '200' },
      'data-dir': { type: 'string' },
    },
  });
  const durationS = values.duration === undefined ? undefined : Number(values.duration);
  if (durationS !== undefined && !(durationS > 0))
    throw new UsageError('--duration must be a positive number of seconds.');
  const rate = Number(values.rate);
  if (!(rate > 0 && rate <= 100_000))
    throw new UsageError('--rate must be changes per second, from 1 to 100000.');

  const ownDir = values['data-dir'] === undefined;
  const dataDir = values['data-dir'] ?? mkdtempSync(join(tmpdir(), 'timehook-demo-'));
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: '',
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    TIMEHOOK_ALLOW_INSECURE_DESTINATIONS: 'true',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
  });
  const out = process.stdout;
  const tty = out.isTTY === true;
  const receiver = new DemoReceiver();
  const server = await startServer(config, 'all', createLogger(config.logLevel));
  let exitCode = 0;
  try {
    const base = server.url!;
    const receiverUrl = await receiver.listen();

    // A tenant, a client with every scope, and its token.
    const clientId = randomUUID();
    const clientSecret = randomBytes(24).toString('base64url');
    await ensureTenant(server.store.db, TENANT);
    await insertClient(server.store.db, {
      id: clientId,
      tenantId: TENANT,
      name: 'demo',
      secretHash: await hashSecret(clientSecret),
      scopes: [...ALL_SCOPES],
    });
    const tokenRes = await fetch(`${base}/tenants/${TENANT}/connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
      }),
    });
    const token = ((await tokenRes.json()) as { access_token: string }).access_token;

    // Sample data: people and the definitions absences refer to.
    for (let id = 1; id <= PEOPLE; id++) {
      await api(base, token, 'PUT', `/people/${id}`, {
        firstName: 'Demo',
        lastName: `Person ${id}`,
        badgeNumber: null,
        employeeNumber: `E${String(id).padStart(3, '0')}`,
      });
    }
    await api(base, token, 'PUT', '/absence-definitions/10', definition(10, 'Holiday', 'HOL'));
    await api(base, token, 'PUT', '/absence-definitions/11', definition(11, 'Sick leave', 'SICK'));
    await api(base, token, 'PUT', '/shift-definitions/20', definition(20, 'Day shift', 'DAY'));

    const webhook = await api<{ id: string; key: string }>(
      base,
      token,
      'POST',
      `/webhooks?externalReferences=${encodeURIComponent('(people,@employee-number)')}`,
      { destinationUrl: receiverUrl, collectionName: 'absences' },
    );
    receiver.verifier = await loadVerifier(webhook.key);

    out.write(
      `Timehook demo — embedded store in ${dataDir}\n` +
        `  API       ${base}${PREFIX}  (tenant "${TENANT}")\n` +
        `  receiver  ${receiverUrl}  (verifies every signature with standardwebhooks)\n` +
        `  webhook   ${webhook.id} → absences, with people's @employee-number\n` +
        `Writing absence changes at ~${rate}/s over ${ENTITIES} absences; ` +
        `${durationS === undefined ? 'Ctrl-C to stop' : `stopping after ${durationS} s`}.\n` +
        `(lag = from sending the PUT to receiving its signed event, so it includes the write itself)\n`,
    );

    // The stream: writes at the target rate, a few in flight; each write's start time is kept by version.
    const writtenAt = new Map<string, number>();
    const lags: number[] = [];
    let written = 0;
    let failedWrites = 0;
    let stopping = false;
    const started = performance.now();
    let step = 0;
    const inFlight = new Set<Promise<void>>();
    const writeOne = () => {
      const entity = 1000 + (step % ENTITIES);
      const body = sampleAbsence(entity, Math.floor(step / ENTITIES) + 1);
      step++;
      const at = performance.now();
      const work = api<{ changeVersion: string }>(base, token, 'PUT', `/absences/${entity}`, body)
        .then((stored) => {
          written++;
          writtenAt.set(stored.changeVersion, at);
        })
        .catch(() => {
          failedWrites++;
        })
        .finally(() => inFlight.delete(work));
      inFlight.add(work);
    };
    const writer = (async () => {
      while (!stopping) {
        const due = Math.floor(((performance.now() - started) / 1000) * rate);
        while (step < due && inFlight.size < 16 && !stopping) writeOne();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await Promise.all([...inFlight]);
    })();

    // The progress line, once a second.
    let lastWritten = 0;
    let lastVerified = 0;
    let lastTick = performance.now();
    const report = (final: boolean) => {
      for (const [version, receipt] of receiver.arrivals) {
        const at = writtenAt.get(version);
        if (at === undefined) continue;
        lags.push(Math.max(0, receipt.arrivedAt - at));
        receiver.arrivals.delete(version);
        writtenAt.delete(version);
      }
      const now = performance.now();
      const seconds = (now - lastTick) / 1000;
      const recent = lags.slice(-5_000).sort((a, b) => a - b);
      const line =
        `${((now - started) / 1000).toFixed(1).padStart(6)} s  ` +
        `changes ${Math.round((written - lastWritten) / seconds)}/s  ` +
        `delivered ${Math.round((receiver.verified - lastVerified) / seconds)}/s  ` +
        `lag p50 ${percentile(recent, 50).toFixed(1)} ms p99 ${percentile(recent, 99).toFixed(1)} ms  ` +
        `total ${written} written, ${receiver.verified} verified, ${receiver.badSignatures} bad signatures`;
      lastWritten = written;
      lastVerified = receiver.verified;
      lastTick = now;
      out.write(tty && !final ? `\r${line}\x1b[K` : `${line}\n`);
    };
    const ticker = setInterval(() => report(false), 1_000);

    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (durationS !== undefined) setTimeout(stop, durationS * 1000).unref();
    });
    stopping = true;
    await writer;
    // Let the last events arrive (bounded), then report once more.
    const drainUntil = performance.now() + 10_000;
    while (receiver.seenIds.size < written && performance.now() < drainUntil) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    clearInterval(ticker);
    if (tty) out.write('\n');
    report(true);
    const all = lags.sort((a, b) => a - b);
    out.write(
      `Done: ${written} changes written (${failedWrites} failed writes); ${receiver.received} events received, ` +
        `${receiver.verified} with a valid signature (${receiver.duplicates} duplicates), ` +
        `${receiver.badSignatures} with a bad one. Lag p50 ${percentile(all, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(all, 99).toFixed(1)} ms, max ${(all.at(-1) ?? 0).toFixed(1)} ms.\n`,
    );
    if (receiver.badSignatures > 0 || receiver.seenIds.size < written) exitCode = 1;
  } finally {
    await server.stop();
    await receiver.close();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  }
  return exitCode;
}
