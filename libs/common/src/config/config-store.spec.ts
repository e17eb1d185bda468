import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { eventually } from '../../../../test/support/eventually.js';
import { ConfigStore } from './config-store.js';
import { ConfigError, loadConfigFile } from './load.js';
import type { GatewayConfig } from './schema.js';

const ENV = { BACKEND: 'http://127.0.0.1:3001/mcp' };

function configWith(namespace: string, timeoutMs = 1000): string {
  return `namespaces:\n  ${namespace}:\n    upstream: { url: "\${BACKEND}" }\n    timeout_ms: ${timeoutMs}\n`;
}

function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

describe('loadConfigFile', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'gw-config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads, expands and validates a file', () => {
    const path = join(dir, 'gateway.yaml');
    writeFileSync(path, configWith('search'));
    expect(loadConfigFile(path, ENV).namespaces.search?.upstream).toMatchObject({
      url: ENV.BACKEND,
    });
  });

  it('throws a ConfigError naming a missing file', () => {
    const path = join(dir, 'missing.yaml');
    let thrown: unknown;
    try {
      loadConfigFile(path, ENV);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const error = thrown as ConfigError;
    expect(error.source).toBe(path);
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.path).toBe('(file)');
    expect(error.issues[0]?.message).toContain('ENOENT');
    expect(error.message).toContain(path);
  });

  it('throws a ConfigError naming the file for an invalid one', () => {
    const path = join(dir, 'gateway.yaml');
    writeFileSync(path, 'rate_limits: { on_store_error: maybe }\n');
    expect(() => loadConfigFile(path, ENV)).toThrow(`invalid configuration in ${path}`);
  });
});

describe('ConfigStore', () => {
  let dir: string;
  let path: string;
  let store: ConfigStore | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    path = join(dir, 'gateway.yaml');
    writeFileSync(path, configWith('first'));
  });

  afterEach(() => {
    store?.close();
    store = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the config of the file it was created from', () => {
    store = ConfigStore.fromFile(path, ENV);
    expect(Object.keys(store.current.namespaces)).toEqual(['first']);
  });

  it('applies a valid new file on reload and tells listeners the new and the previous config', () => {
    store = ConfigStore.fromFile(path, ENV);
    const before = store.current;
    const calls: Array<[GatewayConfig, GatewayConfig]> = [];
    store.onChange((next, previous) => calls.push([next, previous]));

    writeFileSync(path, configWith('second'));
    expect(store.reload()).toBe(true);

    expect(Object.keys(store.current.namespaces)).toEqual(['second']);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.[0]).toBe(store.current);
    expect(calls[0]?.[1]).toBe(before);
  });

  it('refuses an invalid new file, keeps the old config, does not call listeners and logs the issues', () => {
    const { logger, lines } = capturingLogger();
    store = ConfigStore.fromFile(path, ENV, logger);
    const before = store.current;
    let called = false;
    store.onChange(() => (called = true));

    writeFileSync(path, configWith('Bad Name'));
    expect(store.reload('test')).toBe(false);

    expect(store.current).toBe(before);
    expect(called).toBe(false);
    const refused = lines.find((line) => line.level === 50);
    expect(refused).toMatchObject({
      reason: 'test',
      issues: [{ path: 'namespaces.Bad Name', message: 'invalid namespace name' }],
    });
  });

  it('keeps the old config when the file disappears', () => {
    store = ConfigStore.fromFile(path, ENV);
    const before = store.current;
    rmSync(path);
    expect(store.reload()).toBe(false);
    expect(store.current).toBe(before);
  });

  it('keeps calling the other listeners when one throws', () => {
    store = ConfigStore.fromFile(path, ENV);
    const seen: string[] = [];
    store.onChange(() => {
      throw new Error('listener bug');
    });
    store.onChange((next) => seen.push(Object.keys(next.namespaces).join()));
    writeFileSync(path, configWith('second'));
    expect(store.reload()).toBe(true);
    expect(seen).toEqual(['second']);
  });

  it('stops calling a listener once it unsubscribed', () => {
    store = ConfigStore.fromFile(path, ENV);
    let calls = 0;
    const unsubscribe = store.onChange(() => calls++);
    expect(store.reload()).toBe(true);
    unsubscribe();
    expect(store.reload()).toBe(true);
    expect(calls).toBe(1);
  });

  it('has nothing to reload without a file', () => {
    store = new ConfigStore(loadConfigFile(path, ENV));
    expect(store.reload()).toBe(false);
  });

  it('picks up a rewritten file through the file watch', async () => {
    store = ConfigStore.fromFile(path, ENV).watch();
    writeFileSync(path, configWith('second'));
    await eventually(
      () => 'second' in store!.current.namespaces,
      5_000,
      'the watched change to apply',
      20,
    );
  });

  it('picks up a file replaced by rename (as editors and Kubernetes do) through the file watch', async () => {
    store = ConfigStore.fromFile(path, ENV).watch();
    const staged = join(dir, '.gateway.yaml.tmp');
    writeFileSync(staged, configWith('third'));
    renameSync(staged, path);
    await eventually(
      () => 'third' in store!.current.namespaces,
      5_000,
      'the replaced file to apply',
      20,
    );
  });

  it('keeps the old config when the watched file turns invalid, and applies the next valid one', async () => {
    const { logger, lines } = capturingLogger();
    store = ConfigStore.fromFile(path, ENV, logger).watch();
    const before = store.current;
    writeFileSync(path, 'namespaces: [\n');
    await eventually(
      () => lines.some((line) => line.level === 50),
      5_000,
      'the refused reload to be logged',
      20,
    );
    expect(store.current).toBe(before);

    writeFileSync(path, configWith('second'));
    await eventually(
      () => 'second' in store!.current.namespaces,
      5_000,
      'the next valid file to apply',
      20,
    );
  });

  it('picks up a Kubernetes ConfigMap update (the ..data symlink swapped to a new directory)', async () => {
    // The layout the kubelet keeps in a ConfigMap volume: the file is a symlink through `..data`,
    // and an update writes a new timestamped directory, then renames a new `..data` over the old.
    // No event ever names gateway.yaml.
    const mount = join(dir, 'configmap');
    mkdirSync(join(mount, '..2026_01_01_00_00_00.1'), { recursive: true });
    writeFileSync(join(mount, '..2026_01_01_00_00_00.1', 'gateway.yaml'), configWith('first'));
    symlinkSync('..2026_01_01_00_00_00.1', join(mount, '..data'));
    symlinkSync('..data/gateway.yaml', join(mount, 'gateway.yaml'));
    const calls: string[] = [];
    store = ConfigStore.fromFile(join(mount, 'gateway.yaml'), ENV).watch();
    store.onChange((next) => calls.push(Object.keys(next.namespaces).join()));

    mkdirSync(join(mount, '..2026_01_02_00_00_00.2'));
    writeFileSync(join(mount, '..2026_01_02_00_00_00.2', 'gateway.yaml'), configWith('second'));
    symlinkSync('..2026_01_02_00_00_00.2', join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    rmSync(join(mount, '..2026_01_01_00_00_00.1'), { recursive: true });

    await eventually(
      () => 'second' in store!.current.namespaces,
      5_000,
      'the swapped ConfigMap to apply',
      20,
    );
    expect(calls).toEqual(['second']);
  });

  it('picks up a change behind a symlink into another directory (by polling the file)', async () => {
    // The watched directory holds only the symlink, which never changes: only a stat of the
    // path, following the link, sees the target rewritten.
    const elsewhere = join(dir, 'elsewhere');
    const linkDir = join(dir, 'etc');
    mkdirSync(elsewhere);
    mkdirSync(linkDir);
    writeFileSync(join(elsewhere, 'real.yaml'), configWith('first'));
    symlinkSync(join(elsewhere, 'real.yaml'), join(linkDir, 'gateway.yaml'));
    store = ConfigStore.fromFile(join(linkDir, 'gateway.yaml'), ENV).watch({ pollIntervalMs: 50 });

    writeFileSync(join(elsewhere, 'real.yaml'), configWith('second', 2000));
    await eventually(
      () => 'second' in store!.current.namespaces,
      5_000,
      'the symlink target change to apply',
      20,
    );
  });

  it('reloads on SIGHUP', () => {
    store = ConfigStore.fromFile(path, ENV).watch();
    writeFileSync(path, configWith('second'));
    // Synchronous: the file watch is debounced, so only the signal handler can have applied it here.
    process.emit('SIGHUP');
    expect(Object.keys(store.current.namespaces)).toEqual(['second']);
  });

  it('no longer reloads on SIGHUP once closed', () => {
    store = ConfigStore.fromFile(path, ENV).watch();
    store.close();
    writeFileSync(path, configWith('second'));
    process.emit('SIGHUP');
    expect(Object.keys(store.current.namespaces)).toEqual(['first']);
  });
});
