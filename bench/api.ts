// The loader's view of the service: the public connector API over an undici Pool — token, people and
// definitions, absence batches (with the changeVersion of every change they recorded), webhooks, metrics.

import { Pool } from 'undici';
import {
  absence,
  ABSENCE_DEFINITIONS,
  definition,
  PEOPLE,
  PERSON_BASE,
  person,
  SHIFT_DEFINITIONS,
} from './fixtures.ts';

export const PREFIX = '/connector/protimeapi/api/v1';
const USER_AGENT = 'TimehookBench/1.0 (bench/run.ts)';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 500)}`);
  }
}

export interface BatchWrite {
  /** The changeVersion of each upsert, in the order sent. */
  versions: number[];
  /** When the request was sent and when its response arrived (epoch ms). */
  sentAt: number;
  committedAt: number;
}

export interface CreatedWebhook {
  id: string;
  key: string;
}

const now = () => performance.timeOrigin + performance.now();

export class Api {
  readonly pool: Pool;
  #token = '';

  constructor(readonly origin: string) {
    this.pool = new Pool(origin, { connections: 16, pipelining: 1 });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  async login(tenant: string, clientId: string, clientSecret: string): Promise<void> {
    const response = await this.pool.request({
      method: 'POST',
      path: `/tenants/${tenant}/connect/token`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': USER_AGENT },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
      }).toString(),
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new ApiError(response.statusCode, text, 'token');
    this.#token = (JSON.parse(text) as { access_token: string }).access_token;
  }

  async call(method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
    const response = await this.pool.request({
      method: method,
      path: `${PREFIX}${path}`,
      headers: {
        authorization: `Bearer ${this.#token}`,
        'user-agent': USER_AGENT,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body,
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
    return { status: response.statusCode, text: await response.body.text() };
  }

  async expect(method: string, path: string, statuses: number[], body?: unknown): Promise<unknown> {
    const result = await this.call(method, path, body === undefined ? undefined : JSON.stringify(body));
    if (!statuses.includes(result.status))
      throw new ApiError(result.status, result.text, `${method} ${path}`);
    return result.text ? JSON.parse(result.text) : undefined;
  }

  /** The people and definitions every absence links to (fixtures.ts); idempotent. */
  async seed(): Promise<void> {
    const puts: [string, unknown][] = [];
    for (let i = 0; i < PEOPLE; i++) puts.push([`/people/${PERSON_BASE + i}`, person(PERSON_BASE + i)]);
    for (const id of ABSENCE_DEFINITIONS)
      puts.push([`/absence-definitions/${id}`, definition(id, 'absence')]);
    for (const id of SHIFT_DEFINITIONS) puts.push([`/shift-definitions/${id}`, definition(id, 'shift')]);
    let next = 0;
    const worker = async () => {
      while (next < puts.length) {
        const [path, body] = puts[next++]!;
        await this.expect('PUT', path, [200, 201], body);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }

  /**
   * POST /absences/batch with upserts of (entity, round). Every upsert must record a change (the content
   * of each round differs), so the batch's versions are the `n` ending at lastChangeVersion, in order.
   */
  async writeBatch(items: readonly (readonly [entity: number, round: number])[]): Promise<BatchWrite> {
    const body = JSON.stringify({ upsert: items.map(([entity, round]) => absence(entity, round)) });
    const sentAt = now();
    const result = await this.call('POST', '/absences/batch', body);
    const committedAt = now();
    if (result.status !== 200) throw new ApiError(result.status, result.text, 'POST /absences/batch');
    const answer = JSON.parse(result.text) as {
      upserted: number;
      unchanged: number;
      lastChangeVersion: string | null;
    };
    if (answer.upserted !== items.length || answer.lastChangeVersion === null) {
      throw new Error(
        `POST /absences/batch recorded ${answer.upserted} of ${items.length} upserts (${answer.unchanged} unchanged); ` +
          'the ledger cannot attribute versions',
      );
    }
    const last = Number.parseInt(answer.lastChangeVersion, 16);
    const first = last - items.length + 1;
    return { versions: items.map((_, i) => first + i), sentAt, committedAt };
  }

  async createWebhook(destinationUrl: string): Promise<CreatedWebhook> {
    const created = (await this.expect('POST', '/webhooks', [201], {
      destinationUrl,
      collectionName: 'absences',
    })) as CreatedWebhook;
    return { id: created.id, key: created.key };
  }

  async deleteWebhook(id: string): Promise<void> {
    await this.expect('DELETE', `/webhooks/${id}`, [204, 404]);
  }

  /** The Prometheus text of /metrics (no token needed). */
  async metrics(): Promise<string> {
    const response = await this.pool.request({ method: 'GET', path: '/metrics' });
    return response.body.text();
  }
}
