import { describe, expect, it } from '@jest/globals';

import { commonEnv } from './common.env.js';
import { ConfigError, env, loadConfig } from './env-spec.js';

/** A small spec with one variable of every kind, like a service declares. */
function serviceSpec() {
  return {
    PORT: env.int(3000, 'HTTP port', { min: 1, max: 65_535 }),
    VERBOSE: env.bool(false, 'Log every request'),
    LOG_LEVEL: env.oneOf(['error', 'warn', 'info'] as const, 'info', 'Log level'),
    NATS_URL: env.url('nats://127.0.0.1:4222', 'NATS server URL(s)', ['nats:', 'tls:']),
    NAMESPACE: env.string('toolkit', 'Stream prefix', /^[a-z]{1,8}$/),
    GREETING: env.string('hello', 'Any text'),
    TOKEN: env.optional('Auth token'),
  };
}

/** The error `loadConfig` throws for `source`, or a failure when it throws none. */
function configErrorOf(source: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(serviceSpec(), source);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('loadConfig accepted a bad environment');
}

describe(loadConfig.name, () => {
  it('applies every default to an empty environment', () => {
    expect(loadConfig(serviceSpec(), {})).toEqual({
      PORT: 3000,
      VERBOSE: false,
      LOG_LEVEL: 'info',
      NATS_URL: 'nats://127.0.0.1:4222',
      NAMESPACE: 'toolkit',
      GREETING: 'hello',
      TOKEN: undefined,
    });
  });

  it('treats an empty value like an unset one', () => {
    const config = loadConfig(serviceSpec(), { PORT: '', VERBOSE: '', LOG_LEVEL: '', TOKEN: '' });
    expect(config).toMatchObject({ PORT: 3000, VERBOSE: false, LOG_LEVEL: 'info', TOKEN: undefined });
  });

  it('parses every kind of variable', () => {
    const config = loadConfig(serviceSpec(), {
      PORT: '8080',
      VERBOSE: 'yes',
      LOG_LEVEL: 'warn',
      NATS_URL: 'tls://nats-1:4222,nats://nats-2:4222',
      NAMESPACE: 'prod',
      GREETING: 'hi there',
      TOKEN: 's3cret',
    });
    expect(config).toEqual({
      PORT: 8080,
      VERBOSE: true,
      LOG_LEVEL: 'warn',
      NATS_URL: 'tls://nats-1:4222,nats://nats-2:4222',
      NAMESPACE: 'prod',
      GREETING: 'hi there',
      TOKEN: 's3cret',
    });
  });

  it.each([
    ['1', true],
    ['true', true],
    ['TRUE', true],
    ['on', true],
    ['0', false],
    ['false', false],
    ['No', false],
    ['off', false],
  ])('reads the boolean %s as %s', (raw, expected) => {
    expect(loadConfig(serviceSpec(), { VERBOSE: raw }).VERBOSE).toBe(expected);
  });

  it('reads integers with a sign and surrounding spaces', () => {
    const spec = { OFFSET: env.int(0, 'Offset') };
    expect(loadConfig(spec, { OFFSET: '-12' }).OFFSET).toBe(-12);
    expect(loadConfig(spec, { OFFSET: ' 42 ' }).OFFSET).toBe(42);
  });

  it('accepts the bounds of an integer range', () => {
    expect(loadConfig(serviceSpec(), { PORT: '1' }).PORT).toBe(1);
    expect(loadConfig(serviceSpec(), { PORT: '65535' }).PORT).toBe(65_535);
  });

  it('ignores variables the spec does not declare', () => {
    expect(loadConfig({ PORT: env.int(1, 'port') }, { PORT: '2', OTHER: 'x' })).toEqual({ PORT: 2 });
  });

  it('names every bad variable in one ConfigError', () => {
    const error = configErrorOf({ PORT: 'abc', NATS_URL: 'http://x' });

    expect(error.name).toBe('ConfigError');
    expect(error.problems).toHaveLength(2);
    expect(error.problems[0]).toMatch(/^PORT: "abc" is not a whole number \(HTTP port\)$/);
    expect(error.problems[1]).toMatch(/^NATS_URL: "http:\/\/x" must use nats: or tls:/);
    expect(error.message).toContain('PORT');
    expect(error.message).toContain('NATS_URL');
  });

  it('names each variable of a wholly bad environment', () => {
    const error = configErrorOf({
      PORT: '70000',
      VERBOSE: 'maybe',
      LOG_LEVEL: 'loud',
      NATS_URL: 'not a url',
      NAMESPACE: 'UPPER',
    });

    expect(error.problems.map((problem) => problem.split(':')[0])).toEqual([
      'PORT',
      'VERBOSE',
      'LOG_LEVEL',
      'NATS_URL',
      'NAMESPACE',
    ]);
    expect(error.problems[0]).toContain('70000 is above 65535');
    expect(error.problems[1]).toContain('"maybe" is not a boolean');
    expect(error.problems[2]).toContain('"loud" is not one of error, warn, info');
    expect(error.problems[3]).toContain('"not a url" is not a URL');
    expect(error.problems[4]).toContain('"UPPER" must match');
  });

  it.each(['1.5', '1e3', '0x10', '12abc'])('refuses %s as an integer', (raw) => {
    expect(configErrorOf({ PORT: raw }).problems).toEqual([
      expect.stringMatching(new RegExp(`^PORT: "${raw.replace('.', '\\.')}" is not a whole number`)),
    ]);
  });

  it('refuses an integer below its range', () => {
    expect(configErrorOf({ PORT: '0' }).problems).toEqual([expect.stringContaining('PORT: 0 is below 1')]);
  });

  it('refuses a list of URLs when one of them has another protocol', () => {
    expect(configErrorOf({ NATS_URL: 'nats://a:4222,http://b:80' }).problems).toEqual([
      expect.stringContaining('NATS_URL: "http://b:80" must use nats: or tls:'),
    ]);
  });

  it('checks a default against its pattern too', () => {
    const spec = { NAME: env.string('Bad Default', 'Name', /^[a-z]+$/) };
    expect(() => loadConfig(spec, {})).toThrow(ConfigError);
  });

  it('lets an error that is not a variable problem through', () => {
    const failure = new Error('boom');
    const spec = {
      BROKEN: {
        description: 'throws',
        parse: (): string => {
          throw failure;
        },
      },
    };
    expect(() => loadConfig(spec, {})).toThrow(failure);
  });

  it('reads process.env when no source is given', () => {
    const name = `SPEC_VAR_${process.pid}_${Date.now()}`;
    process.env[name] = '17';
    try {
      expect(loadConfig({ [name]: env.int(0, 'from process.env') })[name]).toBe(17);
    } finally {
      delete process.env[name];
    }
  });

  it('accepts the defaults of the common service variables', () => {
    expect(loadConfig(commonEnv, {})).toMatchObject({
      NATS_URL: 'nats://127.0.0.1:4222',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
      DB_SCHEMA: 'public',
      DB_POOL_SIZE: 10,
      MIGRATE_ON_START: true,
      PARTITIONS: 16,
      LOG_LEVEL: 'info',
    });
  });
});
