import { pino, type Logger } from 'pino';
import { REDACT_PATHS } from '../security/keys.js';

/** One JSON logger per service; keys and credentials are censored on every line. */
export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
