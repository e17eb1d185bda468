import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, loadConfigFile } from './load.js';
import type { GatewayConfig } from './schema.js';

export type ConfigListener = (next: GatewayConfig, previous: GatewayConfig) => void;

/**
 * Holds the config in force. Services read `current` per request, so a reload applies to new
 * requests only. Reloads come from a file watch (the directory is watched, because editors and
 * Kubernetes replace the file rather than write it) and from SIGHUP. An invalid new file is
 * logged and refused; the old config stays.
 */
export class ConfigStore {
  private config: GatewayConfig;
  private readonly listeners = new Set<ConfigListener>();
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;
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
    return new ConfigStore(loadConfigFile(path, env), path, env, logger);
  }

  get current(): GatewayConfig {
    return this.config;
  }

  onChange(listener: ConfigListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts the file watch and SIGHUP handler; safe to call once per process per store. */
  watch(): this {
    if (!this.path || this.watcher) return this;
    const file = resolve(this.path);
    this.watcher = watch(dirname(file), (_event, name) => {
      if (name && name.toString() !== basename(file)) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reload('file change'), 100);
    });
    this.watcher.unref();
    process.on('SIGHUP', this.onSighup);
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
    for (const listener of this.listeners) {
      try {
        listener(next, previous);
      } catch (error) {
        this.logger?.error({ err: error }, 'config listener failed');
      }
    }
    return true;
  }

  close(): void {
    this.watcher?.close();
    clearTimeout(this.debounce);
    process.off('SIGHUP', this.onSighup);
  }
}
