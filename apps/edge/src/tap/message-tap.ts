import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { Gate } from '../pins/tool-catalog.js';
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
 * delivered, request or notification (nor, in `block` pinning mode, one of a drifted tool); any
 * result that carries a `tools` array is filtered,
 * whatever its id, so duplicate ids, replayed events and stray answers cannot carry a hidden tool
 * past it. `exchange` is the one HTTP exchange (or bridged request) the message belongs to, so
 * each is timed and identified on its own.
 */
export const MessageTap = {
  /** Client to server. */
  inbound(message: RpcMessage, bytes: number, gate: Gate, exchange: ExchangeRecorder): Inbound {
    if (message.method === 'tools/call' && !gate.allowsCall(message.tool)) {
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

  /**
   * Server to client: filters `value` in place; true when it changed (the caller re-serialises).
   * A tools list is also pinned and its tokens counted (SPEC §7 v2) as the client receives it.
   */
  outbound(
    value: Record<string, unknown>,
    bytes: number,
    httpStatus: number,
    gate: Gate,
    exchange: ExchangeRecorder,
  ): boolean {
    const review = 'result' in value ? gate.reviewList(value.result, exchange) : undefined;
    exchange.serverMessage(value, bytes, httpStatus, review?.listed);
    return review?.changed ?? false;
  },
};
