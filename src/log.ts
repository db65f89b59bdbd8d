// The process logger: pino JSON lines. Secrets never reach it: the redaction paths below are the backstop.
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'client_secret',
  'clientSecret',
  'key',
  'secret',
  '*.key',
  '*.clientSecret',
  '*.client_secret',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}
