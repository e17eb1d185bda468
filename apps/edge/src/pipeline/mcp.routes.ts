import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ConfigStore, ErrorCode, GatewayError } from '#common';
import { errorBody } from '../errors/error-response.js';
import type { InFlight } from './in-flight.js';
import type { McpPipeline, McpRequest, McpRoute } from './mcp-pipeline.js';
import { requestIdOf } from './request-id.js';

type NsRequest = FastifyRequest<{ Params: { ns: string } }>;

/**
 * The MCP routes. Bodies are read raw (never JSON-parsed by a framework) so the bytes the
 * gateway inspects are the bytes it forwards, and the body limit of the current config is
 * enforced while reading: from Content-Length before a byte is read, and by counting otherwise.
 *
 * Two doors, one handler: `serve()` takes the plain requests that make up nearly all MCP
 * traffic straight from the HTTP server, before Fastify (and Nest's hooks) see them: a path of
 * one plain segment (`/mcp/{ns}`, `/mcp/{ns}/sse`, `/mcp/{ns}/messages`) with the route's
 * method. Everything else — a percent-encoded or over-long segment, a trailing slash, another
 * method — goes through the same routes registered on Fastify (`register()`), so its router
 * keeps deciding the unusual cases (404, 405, 414) exactly as before.
 */
export class McpRoutes {
  constructor(
    private readonly pipeline: McpPipeline,
    private readonly config: ConfigStore,
    private readonly inflight: InFlight,
  ) {}

  /** Serves a plain MCP request and returns true; false leaves the request to Fastify. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url;
    if (url === undefined || !url.startsWith('/mcp/')) return false;
    const match = PLAIN_ROUTE.exec(url);
    if (!match) return false;
    const route = routeOf(match[2], req.method);
    if (!route) return false;
    const request: McpRequest = {
      route,
      raw: req,
      res,
      requestId: requestIdOf(req),
      namespace: match[1],
    };
    // Every response, errors and streams included, carries the request id.
    res.setHeader('X-Request-Id', request.requestId);
    if (req.method === 'GET' || !hasBody(req)) {
      this.runServed(request);
      return true;
    }
    readBody(
      req,
      req.headers['content-length'],
      this.config.current.server.max_body_bytes,
      (error, body) => {
        if (error) return this.rejectBody(error, request);
        request.body = body;
        this.runServed(request);
      },
    );
    return true;
  }

  /** The same routes on Fastify, for what `serve()` leaves to it. */
  async register(app: FastifyInstance): Promise<void> {
    await app.register((scope, _options, done) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (request, payload, done) => {
        readBody(
          payload,
          request.headers['content-length'],
          this.config.current.server.max_body_bytes,
          (error, body) => done(error, body),
        );
      });

      scope.setErrorHandler((error, request: NsRequest, reply: FastifyReply) => {
        reply.hijack();
        this.rejectBody(error, {
          raw: request.raw,
          res: reply.raw,
          requestId: String(request.id),
          namespace: request.params?.ns ?? '',
        });
      });

      const handler = (route: McpRoute) => async (request: NsRequest, reply: FastifyReply) => {
        reply.hijack();
        await this.run({
          route,
          raw: request.raw,
          res: reply.raw,
          requestId: String(request.id),
          namespace: request.params.ns,
          body: Buffer.isBuffer(request.body) ? request.body : undefined,
        });
      };
      scope.post('/mcp/:ns', handler('streamable'));
      scope.get('/mcp/:ns', handler('streamable'));
      scope.delete('/mcp/:ns', handler('streamable'));
      // Legacy HTTP+SSE (2024-11-05): the stream, and the endpoint its `endpoint` event names.
      scope.get('/mcp/:ns/sse', handler('sse'));
      scope.post('/mcp/:ns/messages', handler('messages'));
      for (const method of ['PUT', 'PATCH', 'OPTIONS'] as const) {
        scope.route({
          method,
          url: '/mcp/:ns',
          handler: (request, reply) => {
            reply
              .code(405)
              .header('allow', 'GET, POST, DELETE')
              .type('application/json')
              .send(
                errorBody(ErrorCode.MethodNotAllowed, 'Method not allowed', String(request.id)),
              );
          },
        });
      }
      done();
    });
  }

  /** `run()` outside Fastify: nothing else would catch what the pipeline did not. */
  private runServed(request: McpRequest): void {
    this.run(request).catch((error: unknown) =>
      this.pipeline.fail(
        request,
        error,
        undefined,
        this.pipeline.newRecorder(request.requestId, request.namespace),
      ),
    );
  }

  private async run(request: McpRequest): Promise<void> {
    // Streams (GET) are ended at shutdown; everything else is waited for.
    const unary = request.raw.method !== 'GET';
    if (unary) this.inflight.start();
    try {
      await this.pipeline.handle(request);
    } finally {
      if (unary) this.inflight.end();
    }
  }

  /** A body that could not be read (too large, broken off): answered and recorded here. */
  private rejectBody(error: unknown, request: McpRequest): void {
    const gatewayError =
      error instanceof GatewayError
        ? error
        : new GatewayError(ErrorCode.BadRequest, 'Bad request: the body could not be read');
    this.pipeline.fail(
      request,
      gatewayError,
      undefined,
      this.pipeline.newRecorder(request.requestId, request.namespace),
    );
  }
}

/** `/mcp/{ns}`, `/mcp/{ns}/sse`, `/mcp/{ns}/messages`, any query; a segment as Fastify's router takes it without decoding (no `%`, at most 100 characters). */
const PLAIN_ROUTE = /^\/mcp\/([^/?%#]{1,100})(\/sse|\/messages)?(?:\?.*)?$/s;

function routeOf(suffix: string | undefined, method: string | undefined): McpRoute | undefined {
  if (suffix === undefined)
    return method === 'POST' || method === 'GET' || method === 'DELETE' ? 'streamable' : undefined;
  if (suffix === '/sse') return method === 'GET' ? 'sse' : undefined;
  return method === 'POST' ? 'messages' : undefined;
}

/** As Fastify decides whether to read a body: a Content-Length above 0, or chunked. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads a body of at most `limit` bytes: refused at once from Content-Length, otherwise when the
 * count passes the limit (and the rest is discarded, not buffered).
 */
function readBody(
  payload: Readable,
  contentLength: string | undefined,
  limit: number,
  done: (error: Error | null, body?: Buffer) => void,
): void {
  const declared = Number(contentLength ?? NaN);
  if (declared > limit) {
    done(new GatewayError(ErrorCode.PayloadTooLarge, `Body larger than ${limit} bytes`));
    payload.resume(); // discard, do not buffer
    return;
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let failed = false;
  payload.on('data', (chunk: Buffer) => {
    if (failed) return;
    size += chunk.length;
    if (size > limit) {
      failed = true;
      first = undefined;
      chunks = undefined;
      done(new GatewayError(ErrorCode.PayloadTooLarge, `Body larger than ${limit} bytes`));
      return;
    }
    // A body usually arrives in one chunk: kept as it is, without a copy.
    if (first === undefined) first = chunk;
    else (chunks ??= [first]).push(chunk);
  });
  payload.on('end', () => {
    if (failed) return;
    done(null, chunks ? Buffer.concat(chunks, size) : (first ?? Buffer.alloc(0)));
  });
  payload.on('error', (error) => {
    if (failed) return;
    failed = true;
    done(error);
  });
}
