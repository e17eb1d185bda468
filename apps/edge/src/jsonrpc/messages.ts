import { ErrorCode, GatewayError } from '#common';

export type RpcId = string | number;

/** One JSON-RPC message of a client body, classified once; the raw body is forwarded as is. */
export interface RpcMessage {
  kind: 'request' | 'notification' | 'response';
  id?: RpcId;
  method?: string;
  /** `params.name` of a tools/call (request or notification) when it is a string. */
  tool?: string;
  /** The parsed message, for the few places that need more than the fields above. */
  value: Record<string, unknown>;
}

export interface ParsedBody {
  messages: RpcMessage[];
  batch: boolean;
}

/** Deepest nesting of a body (SPEC §4): deeper would cost the stack when re-serialised. */
export const MAX_DEPTH = 64;

/**
 * Whether the JSON text nests objects and arrays deeper than `limit`, read from the bytes before
 * anything parses them (brackets inside strings do not count). Malformed text is the parser's
 * to refuse.
 */
export function nestedDeeperThan(body: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i];
    if (inString) {
      if (byte === 0x5c /* \ */) i++;
      else if (byte === 0x22 /* " */) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x7b /* { */ || byte === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (byte === 0x7d /* } */ || byte === 0x5d /* ] */) depth--;
  }
  return false;
}

/**
 * Parses a POST body as JSON-RPC 2.0 (a message or, for 2025-03-26, a batch). JSON.parse keeps
 * the last of duplicate keys and decodes unicode escapes in keys, and the gateway decides on the
 * very object it forwards the bytes of, so no encoding trick makes the gateway and the backend
 * see different messages.
 */
export function parseJsonRpcBody(body: Buffer): ParsedBody {
  if (nestedDeeperThan(body, MAX_DEPTH)) {
    throw new GatewayError(
      ErrorCode.InvalidRequest,
      `Invalid Request: JSON nested deeper than ${MAX_DEPTH} levels`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GatewayError(ErrorCode.ParseError, 'Parse error: body is not valid JSON');
  }
  if (Array.isArray(value)) {
    if (value.length === 0)
      throw new GatewayError(ErrorCode.InvalidRequest, 'Invalid Request: empty batch');
    const messages = value.map(classify);
    refuseDuplicateIds(messages);
    return { messages, batch: true };
  }
  return { messages: [classify(value)], batch: false };
}

/**
 * Two requests with one id in one body (SPEC §4): their answers could not be told apart, by the
 * client or by anything that pairs answers with questions, so the body is refused whole.
 */
function refuseDuplicateIds(messages: RpcMessage[]): void {
  if (messages.length < 2) return;
  const seen = new Set<string>();
  for (const message of messages) {
    if (message.kind !== 'request') continue;
    const key = idKey(message.id!);
    if (seen.has(key)) {
      throw new GatewayError(
        ErrorCode.InvalidRequest,
        `Invalid Request: two requests with id ${JSON.stringify(message.id)} in one body`,
      );
    }
    seen.add(key);
  }
}

/** Classifies one message; throws invalid_request for anything that is not JSON-RPC 2.0. */
export function classify(value: unknown): RpcMessage {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError(ErrorCode.InvalidRequest, 'Invalid Request: not a JSON-RPC 2.0 message');
  }
  const message = value as Record<string, unknown>;
  if (message.jsonrpc !== '2.0') {
    throw new GatewayError(ErrorCode.InvalidRequest, 'Invalid Request: jsonrpc must be "2.0"');
  }
  const hasId = 'id' in message;
  if (hasId && !isValidId(message.id)) {
    throw new GatewayError(
      ErrorCode.InvalidRequest,
      'Invalid Request: id must be a string or an integer',
    );
  }
  if (typeof message.method === 'string') {
    if ('params' in message && (typeof message.params !== 'object' || message.params === null)) {
      throw new GatewayError(
        ErrorCode.InvalidRequest,
        'Invalid Request: params must be an object or array',
      );
    }
    const params = message.params as Record<string, unknown> | undefined;
    const tool =
      message.method === 'tools/call' && params && typeof params.name === 'string'
        ? params.name
        : undefined;
    return hasId
      ? { kind: 'request', id: message.id as RpcId, method: message.method, tool, value: message }
      : { kind: 'notification', method: message.method, tool, value: message };
  }
  if ('method' in message)
    throw new GatewayError(ErrorCode.InvalidRequest, 'Invalid Request: method must be a string');
  if (hasId && ('result' in message || 'error' in message)) {
    return { kind: 'response', id: message.id as RpcId, value: message };
  }
  throw new GatewayError(
    ErrorCode.InvalidRequest,
    'Invalid Request: neither a request, a notification nor a response',
  );
}

function isValidId(id: unknown): boolean {
  return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id));
}

/** The id of the first request of a body, to answer errors in a way MCP clients surface. */
export function firstRequestId(parsed: ParsedBody | undefined): RpcId | undefined {
  return parsed?.messages.find((m) => m.kind === 'request')?.id;
}

/** Best-effort id of a body that failed validation (e.g. `{"id":1}` without jsonrpc). */
export function salvageId(body: Buffer | undefined): RpcId | undefined {
  if (!body || body.length === 0) return undefined;
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    const candidate = Array.isArray(value) ? (value[0] as unknown) : value;
    const id = (candidate as { id?: unknown } | null)?.id;
    return isValidId(id) ? (id as RpcId) : undefined;
  } catch {
    return undefined;
  }
}

/** A JSON-RPC 2.0 message object (not a batch). */
export function isJsonRpc(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    (value as { jsonrpc?: unknown }).jsonrpc === '2.0'
  );
}

/** A response (result or error) rather than a request or notification. */
export function isResponse(value: Record<string, unknown>): boolean {
  return 'id' in value && ('result' in value || 'error' in value) && !('method' in value);
}

export function idKey(id: RpcId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

/** Outcome of a response message: rpc_error, tool_error (`isError: true`) or ok. */
export function responseOutcome(
  message: Record<string, unknown>,
): 'ok' | 'rpc_error' | 'tool_error' {
  if ('error' in message) return 'rpc_error';
  const result = message.result as { isError?: unknown } | undefined;
  return result && result.isError === true ? 'tool_error' : 'ok';
}
