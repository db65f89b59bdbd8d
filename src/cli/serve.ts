// `timehook serve`: runs until SIGTERM/SIGINT, then shuts down gracefully and exits 0.

import type { Config, Role } from '../config.ts';
import { createLogger } from '../log.ts';
import { startServer } from '../main.ts';

export async function serveCommand(config: Config, role: Role): Promise<number> {
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, role, logger);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  await server.stop();
  return 0;
}
