import { Agent, type Dispatcher } from 'undici';
import { SseParser } from '../proxy/sse-parser.js';

/**
 * One agent for every backend connection the gateway makes for sessions it holds (bridged
 * sessions, virtual-server members, both era bridges): keep-alive connections are shared by all
 * sessions on a backend, as the pass-through's are.
 */
export const backendAgent = new Agent({
  connections: null,
  pipelining: 1,
  keepAliveTimeout: 30_000,
  connectTimeout: 5_000,
});

/** Where undici dispatches a request for a backend URL: its origin, and path with query. */
export function dispatchTarget(url: string): { origin: string; path: string } {
  const parsed = new URL(url);
  return { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
}

/** Largest JSON answer read from a backend (an SSE event is bounded by the parser). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;

type Body = Dispatcher.ResponseData['body'];

/** A JSON answer's text, read whole within MAX_JSON_BYTES (larger: the body is dropped, an error). */
export async function readBounded(body: Body): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES) {
      body.destroy();
      throw new Error('backend answer too large');
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The `data` of each event of an SSE answer that has any, the moment the event is whole. */
export async function eachEventData(body: Body, onData: (data: string) => void): Promise<void> {
  const parser = new SseParser();
  for await (const chunk of body) {
    for (const event of parser.push(chunk as Buffer)) {
      if (event.data !== undefined && event.data !== '') onData(event.data);
    }
  }
}
