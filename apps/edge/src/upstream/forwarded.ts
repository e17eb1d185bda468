import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';
import { ErrorCode, GatewayError } from '#common';
import type { Logger } from 'pino';
import type { Admitted } from '../pipeline/admission.js';
import type { ForwardingMarks } from '../sessions/forwarding-mark.js';
import type { Upstream } from './upstream.js';
import { principalRef } from '../auth/credential.js';

export const FORWARDED_HEADER = 'x-mcp-gateway-forwarded';
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
]);

/**
 * A bridged session (a stdio child, a legacy SSE connection) can only be served by the edge that
 * holds it. Another edge forwards its requests there over HTTP, byte for byte, streams included.
 * The edge that holds the session admits the request again (key, session binding) and passes
 * every message through its tap; the forwarding mark (sessions/forwarding-mark.ts) only tells
 * it that rate limits were already counted and that it must not forward again.
 */
export class ForwardedUpstream implements Upstream {
  private readonly agent = new Agent({
    connections: 64,
    keepAliveTimeout: 30_000,
    connectTimeout: 2_000,
  });

  constructor(
    private readonly marks: ForwardingMarks,
    private readonly logger: Logger,
  ) {}

  async deliver(admitted: Admitted): Promise<void> {
    const { raw: req, res, requestId, body } = admitted.request;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name))
        headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    headers['x-request-id'] = requestId;
    headers[FORWARDED_HEADER] = this.marks.make({
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      body,
      principal: principalRef(admitted.principal),
      requestId,
    });
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    let answer;
    try {
      answer = await request(ownerTarget(admitted.claims!.u!, req.url ?? '/'), {
        method: (req.method ?? 'GET') as 'GET',
        headers,
        body,
        dispatcher: this.agent,
        signal: abort.signal,
        headersTimeout: 30_000,
        bodyTimeout: 0,
      });
    } catch (error) {
      this.logger.warn(
        { request_id: requestId, owner: admitted.claims!.e, err: (error as Error).message },
        'the edge that holds the session is unreachable',
      );
      // MCP clients start anew on 404 only (SPEC §9): the session died with its edge.
      throw new GatewayError(
        ErrorCode.UnknownSession,
        'Unknown session: the edge that held it is gone',
      );
    }
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'x-request-id')
        out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    res.writeHead(answer.statusCode, out);
    res.flushHeaders();
    // pipeline() applies backpressure: a slow client slows the owner's stream, not our memory.
    await pipeline(answer.body, res).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/**
 * The owner's advertised origin plus the request's path and query, never a host the request
 * names: the router admits origin-form targets only, and this holds even if that ever changed.
 */
function ownerTarget(ownerUrl: string, target: string): string {
  const owner = new URL(ownerUrl);
  const path = target.startsWith('/') && !target.startsWith('//') ? target : '/';
  return `${owner.origin}${path}`;
}
