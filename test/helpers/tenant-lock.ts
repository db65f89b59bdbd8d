// Holds a tenant's row lock from a transaction of its own, so a test can line writes up behind it.

import assert from 'node:assert/strict';
import type { Db } from '../../src/store/db.ts';
import { lockTenant } from '../../src/store/tenants.ts';

/**
 * Takes the tenant lock in a transaction of its own and holds it until the returned release is called (which
 * resolves once that transaction has ended): absence writes queued meanwhile wait, the first two in the
 * database and the rest in the process.
 */
export async function holdTenantLock(db: Db, tenant: string): Promise<() => Promise<void>> {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let held!: () => void;
  const locked = new Promise<void>((resolve) => (held = resolve));
  const holder = db.transaction(async (tx) => {
    assert.ok(await lockTenant(tx, tenant));
    held();
    await gate;
  });
  await locked;
  return async () => {
    open();
    await holder;
  };
}
