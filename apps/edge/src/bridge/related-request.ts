import type { RpcId } from '../jsonrpc/messages.js';

/**
 * Which request of ours a backend's message to the client came with, where its transport can
 * tell: a message on a POST's answer stream (Streamable HTTP), or in a 2026-07-28 backend's
 * `input_required` answer, belongs to that request; one on a stream of the session's own (a GET
 * or `subscriptions/listen` stream) belongs to none (null). Unmarked (undefined) where the
 * transport cannot tell: a stdio child or a legacy SSE stream carries every message alike.
 */
const related = new WeakMap<object, RpcId | null>();

export function markRelated(message: object, request: RpcId | null): void {
  related.set(message, request);
}

export function relatedRequest(message: object): RpcId | null | undefined {
  return related.get(message);
}
