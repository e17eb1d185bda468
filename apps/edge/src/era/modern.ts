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

/** The revision the envelope of a body's first message names, if it names one. */
export function namedRevision(parsed: ParsedBody | undefined): unknown {
  const first = parsed?.messages[0];
  return first === undefined ? undefined : metaOf(first.value)?.[ENVELOPE.version];
}

/**
 * Whether a request speaks 2026-07-28: its body's envelope says so (what a modern server decides
 * by), or its `MCP-Protocol-Version` header does. Both must then agree (request-policy.ts).
 */
export function isModern(parsed: ParsedBody | undefined, headers: IncomingHttpHeaders): boolean {
  return (
    headers['mcp-protocol-version'] === MODERN_VERSION || namedRevision(parsed) === MODERN_VERSION
  );
}

/**
 * A stateless request (no `initialize`) whose envelope names a revision other than 2026-07-28:
 * a client of a revision after it, or a broken one. It gets the era bridge's answer (-32022,
 * with what is supported) or, on a backend of that era, the backend's own.
 */
export function namesOtherRevision(parsed: ParsedBody | undefined): boolean {
  const first = parsed?.messages[0];
  if (!first || first.kind !== 'request' || first.method === 'initialize') return false;
  const named = namedRevision(parsed);
  return typeof named === 'string' && named !== MODERN_VERSION;
}
