// Token signing keys: public JWK in clear, private JWK encrypted under the installation key.

import type { Queryable } from './db.ts';

export interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: Record<string, unknown>;
  private_jwk_encrypted: string;
  created_at: Date;
  retired_at: Date | null;
}

/** Keys that sign now or whose tokens may still be valid (retired less than `graceSeconds` ago), newest first. */
export async function listPublishedKeys(db: Queryable, graceSeconds: number): Promise<SigningKeyRow[]> {
  return db.query<SigningKeyRow>(
    `select * from signing_keys
      where retired_at is null or retired_at > now() - make_interval(secs => $1)
      order by created_at desc, kid`,
    [graceSeconds],
  );
}

export async function insertSigningKey(
  db: Queryable,
  key: { kid: string; alg: string; publicJwk: object; privateJwkEncrypted: string },
): Promise<void> {
  await db.query(
    'insert into signing_keys (kid, alg, public_jwk, private_jwk_encrypted) values ($1, $2, $3::jsonb, $4)',
    [key.kid, key.alg, JSON.stringify(key.publicJwk), key.privateJwkEncrypted],
  );
}

/** Retires every active key except `keepKid`. */
export async function retireSigningKeysExcept(db: Queryable, keepKid: string): Promise<void> {
  await db.query('update signing_keys set retired_at = now() where retired_at is null and kid <> $1', [
    keepKid,
  ]);
}

/** Serializes key creation across processes: only one start-up generates the first key. */
export async function lockSigningKeys(db: Queryable): Promise<void> {
  await db.query('select pg_advisory_xact_lock(727364002)');
}
