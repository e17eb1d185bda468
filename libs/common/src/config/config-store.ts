import {
  type FSWatcher,
  readFileSync,
  type StatsListener,
  unwatchFile,
  watch,
  watchFile,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { configAdvice } from './advice.js';
import { ConfigError, loadConfigFile } from './load.js';
import type { GatewayConfig } from './schema.js';

export type ConfigListener = (next: GatewayConfig, previous: GatewayConfig) => void;

export interface WatchOptions {
  /** How often the file is also polled (stat, following symlinks). Default 2 s. */
  pollIntervalMs?: number;
}

/** Events of one save (write, rename, several writes) are applied once. */
const DEBOUNCE_MS = 100;
const POLL_INTERVAL_MS = 2_000;

/**
 * Holds the config in force. Services read `current` per request, so a reload applies to new
 * requests only. Reloads come from a file watch and from SIGHUP. An invalid new file is logged
 * and refused; the old config stays.
 *
 * The file watch has two sources, both ending in one debounced check that reloads only when the
 * file's text changed:
 * - every entry of the file's directory, not just the file's own name: editors replace the file
 *   by rename, and Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink that
 *   the file's own symlink goes through, so the file's name never appears in an event;
 * - a stat poll of the path (which follows symlinks): it catches what the directory watch
 *   cannot, such as a symlink into another directory whose target changes, or a file system
 *   without inotify.
 */
export class ConfigStore {
  private config: GatewayConfig;
  private readonly listeners = new Set<ConfigListener>();
  private watcher?: FSWatcher;
  private polled?: { file: string; listener: StatsListener };
  private debounce?: NodeJS.Timeout;
  /** The file's text as last seen by the watch (undefined: unreadable). */
  private seenText?: string;
  private readonly onSighup = () => this.reload('SIGHUP');

  constructor(
    initial: GatewayConfig,
    private readonly path?: string,
    private readonly env: Record<string, string | undefined> = process.env,
    private readonly logger?: Logger,
  ) {
    this.config = initial;
  }

  static fromFile(
    path: string,
    env: Record<string, string | undefined>,
    logger?: Logger,
  ): ConfigStore {
    const store = new ConfigStore(loadConfigFile(path, env), path, env, logger);
    store.advise();
    return store;
  }

  get current(): GatewayConfig {
    return this.config;
  }

  onChange(listener: ConfigListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts the file watch and SIGHUP handler; safe to call once per process per store. */
  watch(options: WatchOptions = {}): this {
    if (!this.path || this.polled) return this;
    const file = resolve(this.path);
    this.seenText = readText(file);
    const changed = () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reloadIfChanged(file), DEBOUNCE_MS);
    };
    try {
      this.watcher = watch(dirname(file), changed);
      this.watcher.on('error', (error) => {
        this.logger?.warn(
          { err: error.message },
          'config directory watch failed; polling the file instead',
        );
        this.watcher?.close();
      });
      this.watcher.unref();
    } catch (error) {
      this.logger?.warn(
        { err: (error as Error).message },
        'cannot watch the config directory; polling the file instead',
      );
    }
    // Called when the stat (of the symlink's target) differs from the previous poll's.
    const listener: StatsListener = () => changed();
    watchFile(
      file,
      { interval: options.pollIntervalMs ?? POLL_INTERVAL_MS, persistent: false },
      listener,
    );
    this.polled = { file, listener };
    process.on('SIGHUP', this.onSighup);
    // The poll's first stat is its baseline, taken asynchronously: a change made before it lands
    // would never be seen as one. One check once it is in place covers that window.
    changed();
    return this;
  }

  /** Re-reads the file; returns true when a new config was applied. */
  reload(reason = 'reload'): boolean {
    if (!this.path) return false;
    let next: GatewayConfig;
    try {
      next = loadConfigFile(this.path, this.env);
    } catch (error) {
      const detail = error instanceof ConfigError ? error.issues : String(error);
      this.logger?.error(
        { reason, issues: detail },
        'config reload refused; the previous config stays in force',
      );
      return false;
    }
    const previous = this.config;
    this.config = next;
    this.logger?.info({ reason }, 'config reloaded');
    this.advise();
    for (const listener of this.listeners) {
      try {
        listener(next, previous);
      } catch (error) {
        this.logger?.error({ err: error }, 'config listener failed');
      }
    }
    return true;
  }

  /** Logs what the config in force probably does not mean (configAdvice). */
  private advise(): void {
    for (const advice of configAdvice(this.config)) this.logger?.warn(advice);
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.polled) unwatchFile(this.polled.file, this.polled.listener);
    this.polled = undefined;
    clearTimeout(this.debounce);
    process.off('SIGHUP', this.onSighup);
  }

  /**
   * The watch's check: other files of the directory, and a swap that leaves the text as it was,
   * change nothing. The text, not the stat: a ConfigMap swap gives a new inode with an old mtime.
   */
  private reloadIfChanged(file: string): void {
    if (!this.polled) return;
    const text = readText(file);
    if (text === this.seenText) return;
    this.seenText = text;
    this.reload('file change');
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
