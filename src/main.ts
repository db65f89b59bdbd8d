// Composition root: config → store → API and/or background roles → graceful shutdown.

import { collectDefaultMetrics, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './api/app.ts';
import { KeyRing } from './auth/key-ring.ts';
import type { Config, Role } from './config.ts';
import { createLogger, type Logger } from './log.ts';
import { startDeliveryWorker } from './delivery/worker.ts';
import { startMaintenance } from './maintenance.ts';
import { classifyAddress } from './net/destination-guard.ts';
import { openStore, type Store } from './store/open.ts';

export interface RunningServer {
  app: FastifyInstance | undefined;
  store: Store;
  url: string | undefined;
  stop(): Promise<void>;
}

export function warnAboutSettings(config: Config, store: Store, logger: Logger): void {
  if (config.allowInsecureDestinations) {
    logger.warn(
      'TIMEHOOK_ALLOW_INSECURE_DESTINATIONS=true: webhooks may target http URLs and private, loopback and metadata ' +
        'addresses. Use this for development and tests only.',
    );
  }
  if (!config.publicBaseUrl && ['0.0.0.0', '::'].includes(config.host)) {
    logger.warn(
      `HOST=${config.host} without PUBLIC_BASE_URL: the token issuer and discovery document name a loopback ` +
        'address, which other machines cannot reach; set PUBLIC_BASE_URL to the origin clients use.',
    );
  }
  if (store.generatedKey) {
    logger.warn(
      store.db.kind === 'pglite'
        ? `Secrets are encrypted with a generated installation key kept in ${config.dataDir}/installation.key; ` +
            'set TIMEHOOK_ENCRYPTION_KEY in production.'
        : 'Secrets are encrypted with a generated installation key kept in the database; set TIMEHOOK_ENCRYPTION_KEY in production.',
    );
  }
}

/** Starts the service in the given role; resolves once it listens (api/all) or runs (worker). */
export async function startServer(
  config: Config,
  role: Role,
  logger = createLogger(config.logLevel),
): Promise<RunningServer> {
  const store = await openStore(config);
  warnAboutSettings(config, store, logger);
  const keyRing = new KeyRing(store.db, store.box);
  await keyRing.init();
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });

  let app: FastifyInstance | undefined;
  let url: string | undefined;
  if (role === 'api' || role === 'all') {
    app = await buildApp({
      db: store.db,
      box: store.box,
      config,
      keyRing,
      logger,
      metrics,
      now: () => new Date(),
    });
    url = await app.listen({ port: config.port, host: config.host });
  }
  const maintenance =
    role === 'worker' || role === 'all' ? startMaintenance(store.db, config, logger) : undefined;
  const delivery =
    role === 'worker' || role === 'all'
      ? await startDeliveryWorker({ db: store.db, box: store.box, config, logger, metrics, classifyAddress })
      : undefined;
  logger.info({ role, store: store.db.kind, url }, 'timehook started');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await app?.close();
      await delivery?.stop();
      await maintenance?.stop();
      await store.db.close();
      logger.info('timehook stopped');
    })());
  return { app, store, url, stop };
}
