// `timehook migrate` and `timehook keys rotate`.

import { KeyRing } from '../auth/key-ring.ts';
import type { Config } from '../config.ts';
import { openStore } from '../store/open.ts';
import { UsageError } from './main.ts';

export async function migrateCommand(config: Config): Promise<number> {
  const store = await openStore(config); // opening migrates
  await store.db.close();
  process.stdout.write('Migrations are up to date.\n');
  return 0;
}

export async function keysCommand(config: Config, args: string[]): Promise<number> {
  if (args[0] !== 'rotate' || args.length !== 1) throw new UsageError('Usage: timehook keys rotate');
  const store = await openStore(config);
  try {
    const keyRing = new KeyRing(store.db, store.box);
    await keyRing.init();
    const kid = await keyRing.rotate();
    process.stdout.write(`New signing key ${kid}; older keys stay published until their tokens expire.\n`);
    return 0;
  } finally {
    await store.db.close();
  }
}
