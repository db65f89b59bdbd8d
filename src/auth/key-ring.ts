// The installation's token signing keys (ES256): generated on first start, rotatable, and a retired key
// stays published until every token it signed has expired (SPEC §1.1). Private keys are encrypted at rest.

import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { SecretBox } from '../security/secret-box.ts';
import type { Db } from '../store/db.ts';
import {
  insertSigningKey,
  listPublishedKeys,
  lockSigningKeys,
  retireSigningKeysExcept,
} from '../store/signing-keys.ts';

export const TOKEN_TTL_SECONDS = 1800;
export const SIGNING_ALG = 'ES256';
const KEY_GRACE_SECONDS = TOKEN_TTL_SECONDS + 300;
const RELOAD_MIN_INTERVAL_MS = 5_000;

interface LoadedKey {
  kid: string;
  publicJwk: JWK;
  publicKey: CryptoKey | Uint8Array;
  privateKey?: CryptoKey | Uint8Array;
  active: boolean;
}

export class KeyRing {
  #keys: LoadedKey[] = [];
  #lastLoad = 0;

  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  /** Loads the published keys, generating the first one if the installation has none. */
  async init(): Promise<void> {
    await this.#load();
    if (!this.#keys.some((k) => k.active)) {
      await this.db.transaction(async (tx) => {
        await lockSigningKeys(tx);
        const existing = await listPublishedKeys(tx, KEY_GRACE_SECONDS);
        if (!existing.some((k) => k.retired_at === null)) await this.#create(tx);
      });
      await this.#load();
    }
  }

  /** Makes a new signing key and retires the others (they stay published until their tokens expire). */
  async rotate(): Promise<string> {
    const kid = await this.db.transaction(async (tx) => {
      await lockSigningKeys(tx);
      const created = await this.#create(tx);
      await retireSigningKeysExcept(tx, created);
      return created;
    });
    await this.#load();
    return kid;
  }

  signingKey(): { kid: string; key: CryptoKey | Uint8Array } {
    const active = this.#keys.find((k) => k.active && k.privateKey);
    if (!active?.privateKey) throw new Error('No active signing key; call init() first.');
    return { kid: active.kid, key: active.privateKey };
  }

  /** The public key for kid; reloads once (throttled) for a kid made by another process's rotation. */
  async verificationKey(kid: string): Promise<CryptoKey | Uint8Array | undefined> {
    let key = this.#keys.find((k) => k.kid === kid);
    if (!key && Date.now() - this.#lastLoad > RELOAD_MIN_INTERVAL_MS) {
      await this.#load();
      key = this.#keys.find((k) => k.kid === kid);
    }
    return key?.publicKey;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.#keys.map((k) => ({ ...k.publicJwk, kid: k.kid, alg: SIGNING_ALG, use: 'sig' })) };
  }

  async #create(tx: Parameters<Parameters<Db['transaction']>[0]>[0]): Promise<string> {
    const kid = randomUUID();
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
    await insertSigningKey(tx, {
      kid,
      alg: SIGNING_ALG,
      publicJwk: await exportJWK(publicKey),
      privateJwkEncrypted: this.box.encrypt(JSON.stringify(await exportJWK(privateKey))),
    });
    return kid;
  }

  async #load(): Promise<void> {
    const rows = await listPublishedKeys(this.db, KEY_GRACE_SECONDS);
    this.#keys = await Promise.all(
      rows.map(async (row) => {
        const active = row.retired_at === null;
        return {
          kid: row.kid,
          publicJwk: row.public_jwk,
          publicKey: await importJWK(row.public_jwk as JWK, SIGNING_ALG),
          ...(active
            ? {
                privateKey: await importJWK(
                  JSON.parse(this.box.decrypt(row.private_jwk_encrypted)) as JWK,
                  SIGNING_ALG,
                ),
              }
            : {}),
          active,
        };
      }),
    );
    this.#lastLoad = Date.now();
  }
}
