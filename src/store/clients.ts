// OAuth clients: one tenant each, secrets stored only as scrypt hashes.

import type { Queryable } from './db.ts';

export interface ClientRecord {
  id: string;
  tenantId: string;
  name: string | null;
  secretHash: string;
  scopes: string[];
  createdAt: Date;
  revokedAt: Date | null;
}

interface ClientRow {
  id: string;
  tenant_id: string;
  name: string | null;
  secret_hash: string;
  scopes: string[];
  created_at: Date;
  revoked_at: Date | null;
}

const toClient = (r: ClientRow): ClientRecord => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  secretHash: r.secret_hash,
  scopes: r.scopes,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

export async function insertClient(
  db: Queryable,
  client: { id: string; tenantId: string; name: string | null; secretHash: string; scopes: string[] },
): Promise<void> {
  await db.query(
    'insert into clients (id, tenant_id, name, secret_hash, scopes) values ($1, $2, $3, $4, $5::text[])',
    [client.id, client.tenantId, client.name, client.secretHash, client.scopes],
  );
}

export async function findClient(db: Queryable, id: string): Promise<ClientRecord | undefined> {
  const rows = await db.query<ClientRow>('select * from clients where id = $1', [id]);
  return rows[0] && toClient(rows[0]);
}

export async function listClients(db: Queryable, tenantId?: string): Promise<ClientRecord[]> {
  const rows = await db.query<ClientRow>(
    'select * from clients where ($1::text is null or tenant_id = $1) order by tenant_id, created_at, id',
    [tenantId ?? null],
  );
  return rows.map(toClient);
}

/** Marks a client revoked; returns false when no active client has that id. */
export async function revokeClient(db: Queryable, id: string): Promise<boolean> {
  const rows = await db.query(
    'update clients set revoked_at = now() where id = $1 and revoked_at is null returning id',
    [id],
  );
  return rows.length > 0;
}
