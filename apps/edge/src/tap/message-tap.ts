import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import { toolNotFound } from '../errors/error-writer.js';
import type { RpcMessage } from '../jsonrpc/messages.js';

/** What the tap decided about a client message. */
export type Inbound =
  /** Deliver it to the backend. */
  | { deliver: true }
  /** Never delivered: a request gets `answer` from the gateway, a notification is dropped. */
  | { deliver: false; answer?: Record<string, unknown> };

const DELIVER: Inbound = { deliver: true };

/**
 * The one place every JSON-RPC message crosses, in either direction, on every delivery path
 * (HTTP pass-through JSON and SSE, GET and resumed streams, bridged sessions whatever their
 * transports; a request forwarded from another edge crosses it on the edge that serves it). It
 * filters and records, and it judges a message by what it *is*, never by what the gateway
 * remembers asking (SPEC §4 behaviours 8 and 11): a `tools/call` of a hidden tool is never
 * delivered, request or notification; any result that carries a `tools` array is filtered,
 * whatever its id, so duplicate ids, replayed events and stray answers cannot carry a hidden tool
 * past it. `exchange` is the one HTTP exchange (or bridged request) the message belongs to, so
 * each is timed and identified on its own.
 */
export const MessageTap = {
  /** Client to server. */
  inbound(
    message: RpcMessage,
    bytes: number,
    filter: ToolFilter,
    exchange: ExchangeRecorder,
  ): Inbound {
    if (message.method === 'tools/call' && !filter.allows(message.tool)) {
      if (message.kind !== 'request') {
        exchange.answeredLocally(message, 'denied_tool', bytes, null);
        return { deliver: false };
      }
      const answer = toolNotFound(message.id!, message.tool);
      exchange.answeredLocally(message, 'denied_tool', bytes, answer);
      return { deliver: false, answer };
    }
    exchange.clientMessage(message, bytes);
    return DELIVER;
  },

  /** Server to client: filters `value` in place; true when it changed (the caller re-serialises). */
  outbound(
    value: Record<string, unknown>,
    bytes: number,
    httpStatus: number,
    filter: ToolFilter,
    exchange: ExchangeRecorder,
  ): boolean {
    const changed = 'result' in value && filter.filterListResult(value.result);
    exchange.serverMessage(value, bytes, httpStatus);
    return changed;
  },
};
