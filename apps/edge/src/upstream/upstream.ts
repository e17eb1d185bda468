import type { Admitted } from '../pipeline/admission.js';

/**
 * Delivery of an admitted request: one implementation per kind of path to a backend.
 *
 * - `HttpPassthrough`: a Streamable HTTP client on a Streamable HTTP backend, relayed by any edge;
 * - `BridgedUpstream`: a session held in this edge (stdio child, legacy SSE backend, legacy SSE
 *   client), between a client side and an SDK client transport;
 * - `ForwardedUpstream`: a bridged session held by another edge, whose requests go there.
 *
 * Every implementation passes each JSON-RPC message through the one `MessageTap` (a forwarded
 * request crosses it on the edge that holds the session) and throws failures as GatewayErrors
 * for the one error writer. `McpPipeline.upstreamFor` picks the implementation.
 */
export interface Upstream {
  deliver(admitted: Admitted): Promise<void>;
}
