import { ERROR_MAP, type ErrorCode } from '#common';
import type { RpcId } from '../jsonrpc/messages.js';

/**
 * The single place where an error code becomes an HTTP answer (SPEC §4): a JSON-RPC error
 * response carrying the request's id when the body held a request, so MCP clients surface it;
 * otherwise the plain error envelope.
 */
export function errorBody(
  code: ErrorCode,
  message: string,
  requestId: string,
  rpcId?: RpcId | null,
): string {
  // null: a JSON-RPC error without an id to echo (parse error, invalid request).
  if (rpcId !== undefined) {
    return JSON.stringify({
      jsonrpc: '2.0',
      id: rpcId,
      error: { code: ERROR_MAP[code].rpcCode, message, data: { code, requestId } },
    });
  }
  return JSON.stringify({ error: { code, message, requestId } });
}

export function rpcError(id: RpcId, code: number, message: string): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code, message } };
}
