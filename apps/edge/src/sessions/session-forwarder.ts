import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';
import { ErrorCode, GatewayError } from '#common';

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
 * Requests of a bridged session (a stdio child, a legacy SSE connection) can only be served by
 * the edge that holds it. Another edge forwards them there over HTTP, byte for byte, streams
 * included; the forwarded mark is an HMAC with the shared session secret, so the owner can trust
 * that rate limits were already counted and never forwards again.
 */
export class SessionForwarder {
  private readonly agent = new Agent({
    connections: 64,
    keepAliveTimeout: 30_000,
    connectTimeout: 2_000,
  });

  constructor(private readonly secret: string) {}

  isForwarded(req: IncomingMessage, requestId: string): boolean {
    const mark = req.headers[FORWARDED_HEADER];
    if (typeof mark !== 'string') return false;
    const expected = Buffer.from(this.mark(requestId, req.url ?? ''));
    const given = Buffer.from(mark);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  async forward(
    ownerUrl: string,
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    body?: Buffer,
  ): Promise<void> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name))
        headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    headers['x-request-id'] = requestId;
    headers[FORWARDED_HEADER] = this.mark(requestId, req.url ?? '');
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    let answer;
    try {
      answer = await request(new URL(req.url ?? '/', ownerUrl), {
        method: (req.method ?? 'GET') as 'GET',
        headers,
        body,
        dispatcher: this.agent,
        signal: abort.signal,
        headersTimeout: 30_000,
        bodyTimeout: 0,
      });
    } catch (error) {
      throw new GatewayError(
        ErrorCode.UpstreamError,
        `The edge that holds this session is unreachable: ${(error as Error).message}`,
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

  private mark(requestId: string, url: string): string {
    return createHmac('sha256', this.secret).update(`${requestId}\n${url}`).digest('base64url');
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
