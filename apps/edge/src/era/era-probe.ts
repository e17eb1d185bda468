import { type HttpUpstreamConfig, isStdioUpstream, type NamespaceConfig } from '#common';
import { request } from 'undici';
import { MODERN_VERSION, ENVELOPE } from './modern.js';

/** How long a verdict on a backend's era is kept; an unreachable backend is asked again soon. */
const VERDICT_MS = 5 * 60_000;
const UNREACHABLE_MS = 1_000;
const PROBE_TIMEOUT_MS = 5_000;

type UpstreamConfig = NamespaceConfig['upstream'];

/** What the probe learnt of a backend: its era, or that it did not answer. */
export type Era = 'modern' | 'legacy' | 'unreachable';

/**
 * Which era a Streamable HTTP backend speaks (SPEC §4 behaviour 10): asked once with
 * `server/discover` (as a 2026-07-28 client asks) and remembered per URL. A backend whose answer
 * is a discover result offering 2026-07-28 is modern and gets the client's requests as they are;
 * any other answer (a 2025 server's 400 "not initialized", a -32601) means 2025-era, and the
 * gateway bridges. Concurrent requests share one probe.
 */
export class EraProbe {
  private readonly verdicts = new Map<string, { era: Era; until: number }>();
  private readonly probing = new Map<string, Promise<Era>>();

  constructor(private readonly clientInfo: { name: string; version: string }) {}

  /**
   * Whether a namespace's backend speaks 2026-07-28: never a stdio or legacy SSE one (asked
   * nothing), a Streamable HTTP one as the probe finds. `requestId`: the request that made the
   * gateway ask (sent as X-Request-Id, as for it).
   */
  async modern(upstream: UpstreamConfig, requestId?: string): Promise<boolean> {
    if (isStdioUpstream(upstream) || upstream.transport === 'sse') return false;
    return (await this.era(upstream, requestId)) === 'modern';
  }

  /**
   * The backend's era. `unreachable` (no answer: refused, reset, timed out) is not a verdict on
   * its era, only remembered for a second: a 2026-07-28 client is then answered 502 rather than
   * bridged to a backend that may well speak its revision once it is up.
   */
  era(upstream: HttpUpstreamConfig, requestId?: string): Promise<Era> {
    const known = this.verdicts.get(upstream.url);
    if (known && known.until > Date.now()) return Promise.resolve(known.era);
    let pending = this.probing.get(upstream.url);
    if (!pending) {
      pending = this.probe(upstream, requestId).finally(() => this.probing.delete(upstream.url));
      this.probing.set(upstream.url, pending);
    }
    return pending;
  }

  private async probe(upstream: HttpUpstreamConfig, requestId?: string): Promise<Era> {
    let era: Era;
    let until = Date.now() + VERDICT_MS;
    try {
      const response = await request(upstream.url, {
        method: 'POST',
        headers: {
          ...Object.fromEntries(
            Object.entries(upstream.headers).map(([name, value]) => [name.toLowerCase(), value]),
          ),
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': MODERN_VERSION,
          'mcp-method': 'server/discover',
          ...(requestId !== undefined && { 'x-request-id': requestId }),
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 'gateway-discover-probe',
          method: 'server/discover',
          params: {
            _meta: {
              [ENVELOPE.version]: MODERN_VERSION,
              [ENVELOPE.capabilities]: {},
              [ENVELOPE.clientInfo]: this.clientInfo,
            },
          },
        }),
        headersTimeout: PROBE_TIMEOUT_MS,
        bodyTimeout: PROBE_TIMEOUT_MS,
      });
      const text = await response.body.text();
      era = response.statusCode === 200 && offersModern(text) ? 'modern' : 'legacy';
    } catch {
      era = 'unreachable';
      until = Date.now() + UNREACHABLE_MS;
    }
    this.verdicts.set(upstream.url, { era, until });
    return era;
  }
}

/** A discover answer (JSON, or the first data event of an SSE answer) offering 2026-07-28. */
function offersModern(text: string): boolean {
  const data = text.trimStart().startsWith('{') ? text : /^data:\s?(.*)$/m.exec(text)?.[1];
  if (data === undefined) return false;
  try {
    const versions = (JSON.parse(data) as { result?: { supportedVersions?: unknown } }).result
      ?.supportedVersions;
    return Array.isArray(versions) && versions.includes(MODERN_VERSION);
  } catch {
    return false;
  }
}
