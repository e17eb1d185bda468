import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_MAP, ErrorCode, type EventOutcome, GatewayError } from '#common';
import type { RpcId } from '../jsonrpc/messages.js';

/**
 * The one error writer of the edge (SPEC §4). Every failure, on every route and delivery path,
 * becomes what a client sees here: the status and JSON-RPC code come from the one table
 * (`ERROR_MAP` in libs/common), so the same failure gets the same answer whether it is an HTTP
 * answer or a JSON-RPC error inside a stream (a backend timeout is 504 / -32054 on pass-through
 * and bridged sessions alike).
 */

/** Any thrown value as the gateway error it is answered with (unknown ones: 500, logged). */
export function asGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError
    ? error
    : new GatewayError(ErrorCode.Internal, 'Internal gateway error');
}

/**
 * The HTTP body of an error: a JSON-RPC error response with the request's id when the body held
 * a request (MCP clients surface it), `null` as id for a body that could not be read as one,
 * otherwise the plain envelope `{ error: { code, message, requestId } }`.
 */
export function errorBody(
  code: ErrorCode,
  message: string,
  requestId: string,
  rpcId?: RpcId | null,
  data?: Record<string, unknown>,
): string {
  if (rpcId !== undefined)
    return JSON.stringify(rpcErrorFor(code, rpcId, message, requestId, data));
  return JSON.stringify({ error: { code, message, requestId } });
}

/** Writes `error` as the whole HTTP answer; a response already under way is ended instead. */
export function writeError(
  res: ServerResponse,
  error: GatewayError,
  requestId: string,
  rpcId?: RpcId | null,
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const body = errorBody(error.code, error.message, requestId, rpcId, error.data);
  res.writeHead(error.status, {
    ...error.headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/**
 * The answer to a request Node's HTTP parser refused before any route saw it (a repeated
 * Content-Length, a bad Transfer-Encoding, a control character in a header, headers too large,
 * headers too slow): written on the socket, which then closes. Still JSON, still with an
 * X-Request-Id (a fresh one: the request's own could not be read), like every other answer.
 */
export function writeSocketError(socket: Duplex, error: GatewayError, status = error.status): void {
  const requestId = randomUUID();
  const body = errorBody(error.code, error.message, requestId);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** A JSON-RPC error answering request `id` for `code`: in a body, or as an event of a stream. */
export function rpcErrorFor(
  code: ErrorCode,
  id: RpcId | null,
  message: string,
  requestId: string,
  /** More for the error's `data`, beside `code` and `requestId`. */
  more?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    error: { code: ERROR_MAP[code].rpcCode, message, data: { ...more, code, requestId } },
  };
}

/** The answer to a call of a tool the filter hides: as if the backend had no such tool. */
export function toolNotFound(id: RpcId, name: unknown): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    error: { code: -32602, message: `Tool not found: ${String(name)}` },
  };
}

/** The analytics outcome of a failure (SPEC §7). */
export function outcomeOf(code: ErrorCode): EventOutcome {
  switch (code) {
    case ErrorCode.Unauthorized:
    case ErrorCode.TooManyAuthFailures:
      return 'unauthorized';
    case ErrorCode.ForbiddenNamespace:
    case ErrorCode.ForbiddenOrigin:
    case ErrorCode.Forbidden:
    case ErrorCode.ExceedsGrant:
    case ErrorCode.InsufficientScope:
      return 'forbidden';
    case ErrorCode.RateLimited:
    case ErrorCode.TooManySessions:
      return 'rate_limited';
    case ErrorCode.UpstreamTimeout:
      return 'upstream_timeout';
    case ErrorCode.UpstreamError:
    case ErrorCode.AuthUnavailable:
    case ErrorCode.Unavailable:
    case ErrorCode.Internal:
      return 'upstream_error';
    case ErrorCode.UnknownNamespace:
    case ErrorCode.UnknownSession:
    case ErrorCode.ParseError:
    case ErrorCode.InvalidRequest:
    case ErrorCode.PayloadTooLarge:
    case ErrorCode.RequestTimeout:
    case ErrorCode.NotFound:
    case ErrorCode.MethodNotAllowed:
    case ErrorCode.NotAcceptable:
    case ErrorCode.UnsupportedMediaType:
    case ErrorCode.HeaderMismatch:
    case ErrorCode.BadRequest:
    case ErrorCode.UriTooLong:
    case ErrorCode.Conflict:
    case ErrorCode.MethodNotFound:
    case ErrorCode.InvalidParams:
    case ErrorCode.MissingCapability:
    case ErrorCode.UnsupportedProtocolVersion:
      return 'bad_request';
  }
}
