import type { IncomingHttpHeaders } from 'node:http';
import type { ParsedBody } from '../jsonrpc/messages.js';

/** The stateless revision (MCP-NOTES "2026-07-28 in detail"). */
export const MODERN_VERSION = '2026-07-28';

/** The `params._meta` keys of a 2026-07-28 request's envelope, and of a result's server info. */
export const ENVELOPE = {
  version: 'io.modelcontextprotocol/protocolVersion',
  capabilities: 'io.modelcontextprotocol/clientCapabilities',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

type Json = Record<string, unknown>;

/** The `params._meta` of a message, when it has one. */
export function metaOf(value: Json): Json | undefined {
  const params = value.params as Json | undefined;
  const meta = params?._meta;
  return meta && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Json) : undefined;
}

/**
 * Whether a request speaks 2026-07-28: its body's envelope says so (what a modern server decides
 * by), or its `MCP-Protocol-Version` header does. Both must then agree (request-policy.ts).
 */
export function isModern(parsed: ParsedBody | undefined, headers: IncomingHttpHeaders): boolean {
  if (headers['mcp-protocol-version'] === MODERN_VERSION) return true;
  const first = parsed?.messages[0];
  return first !== undefined && metaOf(first.value)?.[ENVELOPE.version] === MODERN_VERSION;
}
