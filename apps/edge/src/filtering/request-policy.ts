import type { IncomingHttpHeaders } from 'node:http';
import { ErrorCode, GatewayError } from '#common';
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
  if (parsed.batch) {
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
  if (version === STATELESS_VERSION) {
    const request = parsed.messages[0];
    const method = single(headers['mcp-method']);
    if (request.method !== undefined && method !== request.method) {
      throw new GatewayError(
        ErrorCode.HeaderMismatch,
        `Mcp-Method header does not match the body's method`,
      );
    }
    const expected = nameOf(request);
    const name = single(headers['mcp-name']);
    if ((expected !== undefined || name !== undefined) && name !== expected) {
      throw new GatewayError(ErrorCode.HeaderMismatch, `Mcp-Name header does not match the body`);
    }
  }
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
