import { readRuntimeSettings } from './runtime.js';

describe('readRuntimeSettings', () => {
  it('reads EDGE_SHUTDOWN_DELAY_MS, 0 when unset', () => {
    expect(readRuntimeSettings({}).shutdownDelayMs).toBe(0);
    expect(readRuntimeSettings({ EDGE_SHUTDOWN_DELAY_MS: '' }).shutdownDelayMs).toBe(0);
    expect(readRuntimeSettings({ EDGE_SHUTDOWN_DELAY_MS: '5000' }).shutdownDelayMs).toBe(5000);
  });

  it.each(['-1', '1.5', 'soon', '5s', '600001'])(
    'refuses EDGE_SHUTDOWN_DELAY_MS=%s, naming the variable',
    (value) => {
      expect(() => readRuntimeSettings({ EDGE_SHUTDOWN_DELAY_MS: value })).toThrow(
        /EDGE_SHUTDOWN_DELAY_MS: must be a whole number of milliseconds/,
      );
    },
  );

  it('refuses a port that is not one, naming the variable', () => {
    expect(() => readRuntimeSettings({ EDGE_PORT: '80a' })).toThrow(/EDGE_PORT: must be a port/);
  });

  it('refuses a LOG_LEVEL that is not a level, naming the variable and the levels', () => {
    expect(readRuntimeSettings({}).logLevel).toBe('info');
    expect(readRuntimeSettings({ LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
    expect(() => readRuntimeSettings({ LOG_LEVEL: 'verbose' })).toThrow(
      /LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/,
    );
  });

  it('listens where HOST says, else on the default of the mode', () => {
    expect(readRuntimeSettings({}).host).toBe('0.0.0.0');
    expect(readRuntimeSettings({}, { host: '127.0.0.1' }).host).toBe('127.0.0.1');
    expect(readRuntimeSettings({ HOST: '0.0.0.0' }, { host: '127.0.0.1' }).host).toBe('0.0.0.0');
  });
});
