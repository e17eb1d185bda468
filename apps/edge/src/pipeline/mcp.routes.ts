import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ConfigStore, ErrorCode, GatewayError } from '#common';
import { errorBody } from '../errors/error-response.js';
import type { InFlight } from './in-flight.js';
import type { McpPipeline, McpRoute } from './mcp-pipeline.js';

type NsRequest = FastifyRequest<{ Params: { ns: string } }>;

/**
 * Registers the MCP routes on Fastify directly: the hot path has no Nest interceptors, pipes or
 * per-request DI. Bodies are read raw (never JSON-parsed by Fastify) so the bytes the gateway
 * inspects are the bytes it forwards, and the body limit of the current config is enforced
 * while reading: from Content-Length before a byte is read, and by counting otherwise.
 */
export async function registerMcpRoutes(
  app: FastifyInstance,
  pipeline: McpPipeline,
  config: ConfigStore,
  inflight: InFlight,
): Promise<void> {
  await app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request, payload, done) => {
      const limit = config.current.server.max_body_bytes;
      const declared = Number(request.headers['content-length'] ?? NaN);
      if (declared > limit) {
        done(
          new GatewayError(ErrorCode.PayloadTooLarge, `Body larger than ${limit} bytes`),
          undefined,
        );
        payload.resume(); // discard, do not buffer
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      payload.on('data', (chunk: Buffer) => {
        if (failed) return;
        size += chunk.length;
        if (size > limit) {
          failed = true;
          chunks.length = 0;
          done(
            new GatewayError(ErrorCode.PayloadTooLarge, `Body larger than ${limit} bytes`),
            undefined,
          );
          return;
        }
        chunks.push(chunk);
      });
      payload.on('end', () => {
        if (!failed) done(null, Buffer.concat(chunks, size));
      });
      payload.on('error', (error) => {
        if (!failed) {
          failed = true;
          done(error, undefined);
        }
      });
    });

    scope.setErrorHandler((error, request: NsRequest, reply: FastifyReply) => {
      const gatewayError =
        error instanceof GatewayError
          ? error
          : new GatewayError(ErrorCode.BadRequest, 'Bad request: the body could not be read');
      reply.hijack();
      const recorder = pipeline.newRecorder(String(request.id), request.params?.ns ?? '');
      pipeline.fail(
        {
          raw: request.raw,
          res: reply.raw,
          requestId: String(request.id),
          namespace: request.params?.ns ?? '',
        },
        gatewayError,
        undefined,
        recorder,
      );
    });

    const handler = (route: McpRoute) => async (request: NsRequest, reply: FastifyReply) => {
      reply.hijack();
      // Streams (GET) are ended at shutdown; everything else is waited for.
      const unary = request.method !== 'GET';
      if (unary) inflight.start();
      try {
        await pipeline.handle({
          route,
          raw: request.raw,
          res: reply.raw,
          requestId: String(request.id),
          namespace: request.params.ns,
          body: Buffer.isBuffer(request.body) ? request.body : undefined,
        });
      } finally {
        if (unary) inflight.end();
      }
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
            .send(errorBody(ErrorCode.MethodNotAllowed, 'Method not allowed', String(request.id)));
        },
      });
    }
    done();
  });
}
