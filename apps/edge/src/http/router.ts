import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ConfigStore, ErrorCode, GatewayError } from '#common';
import { writeError } from '../errors/error-writer.js';
import type { OpsRoutes } from '../health/ops-routes.js';
import type { McpRequest, McpRoute } from '../pipeline/admission.js';
import type { McpPipeline } from '../pipeline/mcp-pipeline.js';
import { requestIdOf } from '../pipeline/request-id.js';
import { hasBody, readBody } from './body-reader.js';
import { applyCors } from './cors.js';
import { serveOAuthRoutes } from './oauth-routes.js';
import type { InFlight } from './in-flight.js';

/** Longest namespace segment the router takes; longer is 414 (names are at most 63). */
const MAX_SEGMENT = 100;

/**
 * The edge's one router: every request of every route enters here, straight off Node's HTTP
 * server. It sets the request id (on every response, errors and streams included), answers the
 * operations routes, reads MCP bodies within `max_body_bytes`, and hands MCP requests to the
 * pipeline. Every error it answers goes through the one error writer.
 *
 *   /mcp/{ns}            POST GET DELETE (else 405)    Streamable HTTP
 *   /mcp/{ns}/sse        GET                           legacy HTTP+SSE stream
 *   /mcp/{ns}/messages   POST                          legacy HTTP+SSE messages
 *   /healthz /readyz /metrics  GET                     operations, no key
 *   OPTIONS on the MCP routes and /.well-known/        CORS preflight, with `server.cors` (cors.ts)
 *   /.well-known/oauth-protected-resource[{base}]/mcp/{ns}  RFC 9728 metadata, with `auth.oauth`
 *   OAuth discovery probes without `auth.oauth`       RFC 6749-shaped 404 (oauth-routes.ts)
 */
export class EdgeRouter {
  constructor(
    private readonly pipeline: McpPipeline,
    private readonly ops: OpsRoutes,
    private readonly config: ConfigStore,
    private readonly inflight: InFlight,
  ) {}

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = requestIdOf(req);
    res.setHeader('X-Request-Id', requestId);
    try {
      const url = req.url ?? '';
      // Origin form only (`/path?query`): an absolute-form target names a host, and nothing the
      // edge does may be pointed at a host by a client.
      if (url.charCodeAt(0) !== 47 /* '/' */ || url.charCodeAt(1) === 47) {
        throw new GatewayError(
          ErrorCode.BadRequest,
          'Bad request: the request target must be a path',
        );
      }
      const query = url.indexOf('?');
      const path = query === -1 ? url : url.slice(0, query);
      // CORS before everything else that answers: a preflight is answered here, and an allowed
      // origin's headers are on `res` whatever answers the request (stream, relay or error).
      if (applyCors(req, res, path, this.config.current.server)) return;
      if (path.startsWith('/mcp/')) this.mcp(req, res, requestId, path);
      else if (serveOAuthRoutes(path, req, res, this.config.current)) req.resume();
      else if (!this.ops.serve(path, req, res)) notFound(req, path);
    } catch (error) {
      req.resume();
      if (error instanceof GatewayError) {
        writeError(res, error, requestId);
        return;
      }
      // A fault of the edge's own: logged and answered 500 by the pipeline's one failure path,
      // never thrown out of the server's request handler (that would end the process).
      const request = { requestId, res, namespace: '', raw: req };
      this.pipeline.fail(request, error, this.pipeline.newExchange(request));
    }
  };

  private mcp(req: IncomingMessage, res: ServerResponse, requestId: string, path: string): void {
    const rest = path.slice(5);
    const slash = rest.indexOf('/');
    const segment = slash === -1 ? rest : rest.slice(0, slash);
    const route = routeOf(slash === -1 ? '' : rest.slice(slash), req.method);
    if (segment === '' || route === undefined) notFound(req, path);
    if (route === 'wrong-method') {
      throw new GatewayError(ErrorCode.MethodNotAllowed, 'Method not allowed', {
        Allow: 'GET, POST, DELETE',
      });
    }
    if (segment.length > MAX_SEGMENT) throw new GatewayError(ErrorCode.UriTooLong, 'URI too long');
    const request: McpRequest = {
      route,
      raw: req,
      res,
      requestId,
      namespace: decodeSegment(segment),
    };
    if (req.method === 'GET' || !hasBody(req)) {
      this.run(request);
      return;
    }
    const { max_body_bytes: maxBytes, request_timeout: timeoutMs } = this.config.current.server;
    readBody(
      req,
      { maxBytes, timeoutMs },
      (error, body) => {
        if (error) {
          this.pipeline.fail(request, error, this.pipeline.newExchange(request));
          return;
        }
        request.body = body;
        this.run(request);
      },
      res,
    );
  }

  private run(request: McpRequest): void {
    // Streams (GET, and a 2026-07-28 `subscriptions/listen`, which is a POST whose Mcp-Method
    // header must name it) are ended at shutdown; everything else is waited for.
    const unary =
      request.raw.method !== 'GET' && request.raw.headers['mcp-method'] !== 'subscriptions/listen';
    if (unary) this.inflight.start();
    this.pipeline
      .handle(request)
      .catch((error: unknown) =>
        this.pipeline.fail(request, error, this.pipeline.newExchange(request)),
      )
      .finally(() => {
        if (unary) this.inflight.end();
      });
  }
}

function routeOf(
  suffix: string,
  method: string | undefined,
): McpRoute | 'wrong-method' | undefined {
  if (suffix === '')
    return method === 'POST' || method === 'GET' || method === 'DELETE'
      ? 'streamable'
      : 'wrong-method';
  if (suffix === '/sse') return method === 'GET' ? 'sse' : undefined;
  if (suffix === '/messages') return method === 'POST' ? 'messages' : undefined;
  return undefined;
}

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new GatewayError(ErrorCode.BadRequest, 'Malformed URL');
  }
}

function notFound(req: IncomingMessage, path: string): never {
  throw new GatewayError(ErrorCode.NotFound, `Not found: ${req.method} ${path}`);
}
