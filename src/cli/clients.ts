// `timehook clients create|list|revoke`: OAuth clients of a tenant. The secret is shown once, at creation.

import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { parseScopes } from '../domain/scopes.ts';
import { hashSecret } from '../security/password.ts';
import { insertClient, listClients, revokeClient } from '../store/clients.ts';
import { openStore } from '../store/open.ts';
import { ensureTenant } from '../store/tenants.ts';
import { UsageError } from './main.ts';

const TENANT_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export async function clientsCommand(config: Config, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      scope: { type: 'string' },
      name: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (sub === 'create') {
    if (!values.tenant || !TENANT_PATTERN.test(values.tenant)) {
      throw new UsageError('--tenant is required: lower-case letters, digits and dashes, such as "acme".');
    }
    const { scopes, unknown } = parseScopes(values.scope ?? '');
    if (unknown.length > 0) throw new UsageError(`Unknown scopes: ${unknown.join(' ')}.`);
    if (scopes.length === 0)
      throw new UsageError('--scope is required, for example "connector-protimeapi-absences.read".');
    const clientId = randomUUID();
    const clientSecret = randomBytes(32).toString('base64url');
    const store = await openStore(config);
    try {
      const secretHash = await hashSecret(clientSecret);
      await store.db.transaction(async (tx) => {
        await ensureTenant(tx, values.tenant!);
        await insertClient(tx, {
          id: clientId,
          tenantId: values.tenant!,
          name: values.name ?? null,
          secretHash,
          scopes,
        });
      });
    } finally {
      await store.db.close();
    }
    const result = { tenant: values.tenant, clientId, clientSecret, scopes };
    process.stdout.write(
      values.json
        ? `${JSON.stringify(result)}\n`
        : `Client created for tenant ${values.tenant}.\n  client id:     ${clientId}\n  client secret: ${clientSecret}\n  scopes:        ${scopes.join(' ')}\nThe secret is shown only now; store it safely.\n`,
    );
    return 0;
  }
  if (sub === 'list') {
    const store = await openStore(config);
    try {
      const clients = await listClients(store.db, values.tenant);
      const rows = clients.map((c) => ({
        clientId: c.id,
        tenant: c.tenantId,
        name: c.name,
        scopes: c.scopes,
        createdAt: c.createdAt.toISOString(),
        revokedAt: c.revokedAt?.toISOString() ?? null,
      }));
      if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else
        for (const r of rows) {
          process.stdout.write(
            `${r.clientId}  ${r.tenant}  ${r.revokedAt ? 'revoked' : 'active '}  ${r.name ?? ''}  ${r.scopes.join(' ')}\n`,
          );
        }
      return 0;
    } finally {
      await store.db.close();
    }
  }
  if (sub === 'revoke') {
    const id = positionals[0];
    if (!id || positionals.length !== 1) throw new UsageError('Usage: timehook clients revoke <client-id>');
    const store = await openStore(config);
    try {
      if (!(await revokeClient(store.db, id))) {
        process.stderr.write(`timehook: no active client has the id ${id}.\n`);
        return 1;
      }
      process.stdout.write(`Client ${id} revoked; its tokens stop working within seconds.\n`);
      return 0;
    } finally {
      await store.db.close();
    }
  }
  throw new UsageError('Usage: timehook clients create|list|revoke');
}
