// Opens the store the configuration names (PGlite under DATA_DIR, or PostgreSQL on DATABASE_URL),
// applies migrations, and loads the installation key that encrypts secrets at rest.

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { SecretBox } from '../security/secret-box.ts';
import type { Db } from './db.ts';
import { migrate } from './migrate.ts';
import { openPgDb } from './pg-db.ts';
import { openPgliteDb } from './pglite-db.ts';

export interface Store {
  db: Db;
  box: SecretBox;
  /** True when the installation key was generated and kept beside the data (not from TIMEHOOK_ENCRYPTION_KEY). */
  generatedKey: boolean;
}

const KEY_FILE = 'installation.key';

export async function openDb(config: Config, schema?: string): Promise<Db> {
  return config.databaseUrl
    ? openPgDb({
        connectionString: config.databaseUrl,
        poolSize: config.pgPoolSize,
        statementTimeoutMs: config.statementTimeoutMs,
        lockTimeoutMs: config.lockTimeoutMs,
        idleInTransactionTimeoutMs: config.idleInTransactionTimeoutMs,
        ...(schema ? { schema } : {}),
      })
    : openPgliteDb(config.dataDir);
}

async function loadGeneratedKey(db: Db, dataDir: string | undefined): Promise<Buffer> {
  if (db.kind === 'pglite' && dataDir !== undefined) {
    const path = join(resolve(dataDir), KEY_FILE);
    if (!existsSync(path)) {
      writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    }
    chmodSync(path, 0o600);
    return Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  }
  await db.query(
    `insert into installation_secrets (name, value) values ('encryption_key', $1) on conflict (name) do nothing`,
    [randomBytes(32).toString('base64')],
  );
  const rows = await db.query<{ value: string }>(
    `select value from installation_secrets where name = 'encryption_key'`,
  );
  return Buffer.from(rows[0]!.value, 'base64');
}

/** Migrates db and builds the SecretBox from TIMEHOOK_ENCRYPTION_KEY or the generated installation key. */
export async function prepareStore(db: Db, config: Config, dataDir?: string): Promise<Store> {
  await migrate(db);
  if (config.encryptionKey) {
    return { db, box: new SecretBox(Buffer.from(config.encryptionKey, 'base64')), generatedKey: false };
  }
  return { db, box: new SecretBox(await loadGeneratedKey(db, dataDir)), generatedKey: true };
}

export async function openStore(config: Config): Promise<Store> {
  const db = await openDb(config);
  try {
    return await prepareStore(db, config, config.databaseUrl ? undefined : config.dataDir);
  } catch (error) {
    await db.close();
    throw error;
  }
}
