import { ErrorCode, GatewayError } from '#common';
import type { FastifyInstance } from 'fastify';

/** A JSON body that could not be read: kept for the route to refuse once the caller is known. */
export class UnreadableJson {
  constructor(readonly reason: string) {}
}

/**
 * JSON bodies are parsed as Fastify does (prototype poisoning refused), but a body that cannot
 * be read does not fail the request before its route: the admin guard first answers a caller
 * without an admin key 401, and the route refuses the body (400) in its audited action, so a
 * refused admin write is recorded however malformed its body.
 */
export function installJsonBodies(fastify: FastifyInstance): void {
  const parse = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    parse(request, body as string, (error, value) =>
      done(null, error ? new UnreadableJson(error.message) : value),
    ),
  );
}

/** A route's body: refused (400) when it could not be read. */
export function readableBody(body: unknown): unknown {
  if (body instanceof UnreadableJson)
    throw new GatewayError(ErrorCode.BadRequest, `Body is not valid JSON: ${body.reason}`);
  return body;
}
