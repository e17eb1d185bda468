import { AUTH_KEY_VERIFY, type Bus, BusRemoteError, BusTimeoutError } from '#common';
import type { Redis } from 'ioredis';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

/**
 * /readyz: NATS connected, Redis answering, auth service answering. Checked at most once a
 * second so a load balancer polling many edges does not load the auth service.
 */
export class Readiness {
  private cached?: { at: number; report: Promise<ReadinessReport> };
  draining = false;

  constructor(
    private readonly bus: Bus,
    private readonly distributed: boolean,
    private readonly redis?: Redis,
  ) {}

  check(): Promise<ReadinessReport> {
    // Draining answers at once, never from the cache: a load balancer must see it on its very
    // next check (EDGE_SHUTDOWN_DELAY_MS is sized to that).
    if (this.draining)
      return Promise.resolve({
        ready: false,
        checks: { shutdown: { ok: false, detail: 'draining' } },
      });
    const now = Date.now();
    if (!this.cached || now - this.cached.at > 1_000) this.cached = { at: now, report: this.run() };
    return this.cached.report;
  }

  private async run(): Promise<ReadinessReport> {
    const checks: ReadinessReport['checks'] = {};
    if (this.distributed)
      checks.nats = {
        ok: this.bus.isConnected(),
        detail: this.bus.isConnected() ? undefined : 'disconnected',
      };
    if (this.redis) {
      checks.redis = await this.redis
        .ping()
        .then(() => ({ ok: true }))
        .catch((error: unknown) => ({ ok: false, detail: String(error) }));
    }
    checks.auth = await this.bus
      .send(AUTH_KEY_VERIFY, { keySha256: '0'.repeat(64) }, { timeoutMs: 1_000 })
      .then(() => ({ ok: true }))
      .catch((error: unknown) =>
        error instanceof BusRemoteError
          ? { ok: true }
          : {
              ok: false,
              detail:
                error instanceof BusTimeoutError ? 'timeout' : String((error as Error).message),
            },
      );
    return { ready: Object.values(checks).every((check) => check.ok), checks };
  }
}
