/** The logger factory: levels and formats from flags or the environment, secrets redacted. */
import { Writable } from 'node:stream';
import { createLogger, LogConfigError, resolveLogFormat, resolveLogLevel, scrubSecrets } from '../../src/log.js';

function capture(): { stream: Writable; records: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, records: () => chunks.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('level and format: the flag, else the environment, else info and json', () => {
  expect(resolveLogLevel(undefined, {})).toBe('info');
  expect(resolveLogLevel(undefined, { RPA_ACCESS_LOG_LEVEL: 'DEBUG' })).toBe('debug');
  expect(resolveLogLevel('warn', { RPA_ACCESS_LOG_LEVEL: 'debug' })).toBe('warn');
  expect(() => resolveLogLevel('verbose', {})).toThrow(LogConfigError);
  expect(resolveLogFormat(undefined, {})).toBe('json');
  expect(resolveLogFormat(undefined, { RPA_ACCESS_LOG_FORMAT: 'pretty' })).toBe('pretty');
  expect(() => resolveLogFormat('xml', {})).toThrow('invalid log format "xml": expected one of json, pretty');
});

test('JSON records, filtered by level, with passwords, tokens, authorization headers and store URLs redacted', () => {
  const { stream, records } = capture();
  const log = createLogger({ level: 'info', destination: stream, env: {}, name: 'test' });
  log.debug('not shown');
  log.info(
    {
      storeUrl: 'postgres://app:s3cret@db/rpa',
      options: { storeUrl: 'postgres://app:s3cret@db/rpa', password: 'p', token: 't' },
      req: { method: 'POST', headers: { authorization: 'Bearer abc', host: 'x' } },
      client: { authorization: 'Basic xyz' },
      tenant: 'finance',
    },
    'hello',
  );
  const [record, ...rest] = records();
  expect(rest).toEqual([]);
  expect(record).toMatchObject({
    level: 30, name: 'test', msg: 'hello', tenant: 'finance',
    storeUrl: '[redacted]',
    options: { storeUrl: '[redacted]', password: '[redacted]', token: '[redacted]' },
    req: { method: 'POST', headers: { authorization: '[redacted]', host: 'x' } },
    client: { authorization: '[redacted]' },
  });
  expect(JSON.stringify(record)).not.toMatch(/s3cret|Bearer|Basic/);
});

test('credentials inside error messages and stacks are scrubbed: URL passwords and bearer tokens', () => {
  expect(scrubSecrets('connect failed: postgres://app:s3cr%40t@db:5432/rpa?x=1')).toBe('connect failed: postgres://app:***@db:5432/rpa?x=1');
  expect(scrubSecrets('sent Authorization: Bearer eyJhbGciOi.payload.sig to the API')).toBe('sent Authorization: Bearer [redacted] to the API');
  expect(scrubSecrets('postgres://app@db/rpa has no password')).toBe('postgres://app@db/rpa has no password');

  const { stream, records } = capture();
  const log = createLogger({ level: 'info', destination: stream, env: {} });
  log.error({ err: new Error('cannot reach postgres://app:s3cret@db/rpa') }, 'store down');
  const text = JSON.stringify(records());
  expect(text).toContain('postgres://app:***@db/rpa');
  expect(text).not.toContain('s3cret');
});
