// The `timehook` command line: serve, migrate, clients, keys (and demo). Each command returns an exit code.

import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Role } from '../config.ts';
import { DataDirLockedError } from '../store/pglite-db.ts';
import { clientsCommand } from './clients.ts';
import { keysCommand, migrateCommand } from './admin.ts';
import { serveCommand } from './serve.ts';

const USAGE = `Usage: timehook <command> [options]

Commands:
  serve [--role api|worker|all]     run the service (default role: all)
  migrate                           apply database migrations and exit
  clients create --tenant <t> --scope "<scopes>" [--name <n>] [--json]
  clients list [--tenant <t>] [--json]
  clients revoke <client-id>
  keys rotate                       start signing tokens with a new key
  demo                              the whole flow on a fresh embedded store

Configuration comes from the environment; see README.md.`;

export class UsageError extends Error {}

export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        const { values } = parseArgs({ args: rest, options: { role: { type: 'string', default: 'all' } } });
        if (!['api', 'worker', 'all'].includes(values.role))
          throw new UsageError('--role must be api, worker or all.');
        return await serveCommand(loadConfig(), values.role as Role);
      }
      case 'migrate':
        return await migrateCommand(loadConfig());
      case 'clients':
        return await clientsCommand(loadConfig(), rest);
      case 'keys':
        return await keysCommand(loadConfig(), rest);
      case 'demo': {
        const { demoCommand } = await import('./demo.ts');
        return await demoCommand(rest);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}".`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`timehook: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof DataDirLockedError) {
      process.stderr.write(`timehook: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
