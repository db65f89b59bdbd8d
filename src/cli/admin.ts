// `timehook migrate` and `timehook keys rotate`.

import { KeyRing } from '../auth/key-ring.ts';
import type { Config } from '../config.ts';
import { migrate } from '../store/migrate.ts';
import { openDb, openStore } from '../store/open.ts';
import { UsageError } from './main.ts';

export async function migrateCommand(config: Config): Promise<number> {
  const db = await openDb(config);
  try {
    const applied = await migrate(db);
    const names = applied.map((v) => String(v).padStart(6, '0'));
    process.stdout.write(
      applied.length > 0
        ? `Applied migration${applied.length > 1 ? 's' : ''} ${names.join(', ')}; migrations are up to date.\n`
        : 'Migrations are up to date.\n',
    );
    return 0;
  } finally {
    await db.close();
  }
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
