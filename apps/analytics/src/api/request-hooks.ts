import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { redactSecrets } from '#common';
import type { Logger } from 'pino';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Fastify's genReqId: the client's X-Request-Id when it is sane, else a fresh UUID. */
export function requestId(request: { headers: IncomingHttpHeaders }): string {
  const header = request.headers['x-request-id'];
  const value = Array.isArray(header) ? header[0] : header;
  return value && SANE_REQUEST_ID.test(value) ? value : randomUUID();
}

/**
 * Echoes X-Request-Id on every response (errors and 404s included) and logs one line per
 * request. The line has the path but not the query string, and no headers: keys never reach
 * the log even when a client misplaces one (a path segment shaped like a key is redacted).
 */
export function installRequestHooks(fastify: FastifyInstance, logger: Logger): void {
  fastify.addHook('onRequest', async (request, reply) => {
    void reply.header('X-Request-Id', request.id);
  });
  fastify.addHook('onResponse', async (request, reply) => {
    logger.info(
      {
        request_id: request.id,
        method: request.method,
        // A secret pasted where an id belongs (DELETE /api/v1/admin/keys/mcpgw_…) is not logged.
        path: redactSecrets(request.url.split('?')[0]),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request',
    );
  });
}
