/**
 * A real logger (pino, the project's one Logger type) that keeps its records, for tests that read
 * what a module logged.
 */
import pino from 'pino';
import type { Logger } from '../../src/log.js';

export interface LogRecord {
  level: number;
  msg?: string;
  [field: string]: unknown;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function recordingLogger(): { log: Logger; records: LogRecord[]; at(level: keyof typeof LEVELS): LogRecord[] } {
  const records: LogRecord[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { log, records, at: (level) => records.filter((r) => r.level === LEVELS[level]) };
}
