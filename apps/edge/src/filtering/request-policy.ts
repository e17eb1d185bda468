import type { IncomingHttpHeaders } from 'node:http';
import { ErrorCode, GatewayError } from '#common';
import { ENVELOPE, metaOf } from '../era/modern.js';
import type { ParsedBody, RpcMessage } from '../jsonrpc/messages.js';

/** Protocol versions in which a POST body may be a JSON-RPC batch (removed in 2025-06-18). */
const BATCH_VERSIONS = new Set(['2024-11-05', '2025-03-26']);
const STATELESS_VERSION = '2026-07-28';

/**
 * Protocol rules the gateway enforces before anything is forwarded: batches only where the
 * protocol version allows them (and never with initialize), and for 2026-07-28 requests the
 * `Mcp-Method` / `Mcp-Name` headers must say what the body says — an intermediary routing on
 * headers and a backend reading the body must never see two different requests.
 */
export function enforceRequestPolicy(
  parsed: ParsedBody,
  headers: IncomingHttpHeaders,
  version: string,
): void {
  if (parsed.batch) checkBatch(parsed, version);
  const first = parsed.messages[0];
  const meta = first ? metaOf(first.value) : undefined;
  // A modern server decides by the body's envelope: the header must say the same, or an
  // intermediary routing on headers and the backend would see two different requests.
  if (meta?.[ENVELOPE.version] === STATELESS_VERSION && version !== STATELESS_VERSION) {
    throw new GatewayError(
      ErrorCode.HeaderMismatch,
      'MCP-Protocol-Version header does not match the body: the envelope names 2026-07-28',
    );
  }
  if (version === STATELESS_VERSION) checkStateless(first, meta, headers);
}

function checkBatch(parsed: ParsedBody, version: string): void {
  if (!BATCH_VERSIONS.has(version)) {
    throw new GatewayError(
      ErrorCode.InvalidRequest,
      `Invalid Request: batches are not allowed in protocol version ${version}`,
    );
  }
  if (parsed.messages.some((message) => message.method === 'initialize')) {
    throw new GatewayError(
      ErrorCode.InvalidRequest,
      'Invalid Request: initialize cannot be part of a batch',
    );
  }
}

/** A 2026-07-28 message (never a batch): its envelope complete, its headers naming what it does. */
function checkStateless(
  request: RpcMessage,
  meta: Record<string, unknown> | undefined,
  headers: IncomingHttpHeaders,
): void {
  const isRequest = request.kind === 'request';
  const named = meta?.[ENVELOPE.version];
  // A body that names another revision than the header: the two disagree (-32020), as a
  // modern server answers it; a body that names none is malformed (-32602).
  if (isRequest && typeof named === 'string' && named !== STATELESS_VERSION) {
    throw new GatewayError(
      ErrorCode.HeaderMismatch,
      `MCP-Protocol-Version header does not match the body: the header names 2026-07-28, the envelope ${JSON.stringify(named).slice(0, 80)}`,
    );
  }
  if (isRequest && (named !== STATELESS_VERSION || !isObject(meta?.[ENVELOPE.capabilities]))) {
    throw new GatewayError(
      ErrorCode.InvalidParams,
      `Invalid params: a 2026-07-28 request carries params._meta with ${ENVELOPE.version} and ${ENVELOPE.capabilities}`,
    );
  }
  const method = decoded(single(headers['mcp-method']));
  // Notifications need no Mcp-Method (clients send none), but one that is sent must agree.
  if (
    request.method !== undefined &&
    (isRequest || method !== undefined) &&
    method !== request.method
  ) {
    throw new GatewayError(
      ErrorCode.HeaderMismatch,
      `Mcp-Method header does not match the body's method`,
    );
  }
  const expected = nameOf(request);
  const name = decoded(single(headers['mcp-name']));
  if ((expected !== undefined || name !== undefined) && name !== expected) {
    throw new GatewayError(ErrorCode.HeaderMismatch, `Mcp-Name header does not match the body`);
  }
}

/** A header value as sent: plain, or `=?base64?…?=` (UTF-8) for what a header cannot carry. */
function decoded(value: string | undefined): string | undefined {
  const match = value === undefined ? null : /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(value);
  return match ? Buffer.from(match[1], 'base64').toString('utf8') : value;
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value `Mcp-Name` must carry for a request: tool or prompt name, resource URI. */
function nameOf(message: RpcMessage): string | undefined {
  const params = message.value.params as Record<string, unknown> | undefined;
  switch (message.method) {
    case 'tools/call':
    case 'prompts/get':
      return typeof params?.name === 'string' ? params.name : undefined;
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return typeof params?.uri === 'string' ? params.uri : undefined;
    default:
      return undefined;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}
