import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigStore, type McpEvent, parseConfig } from '#common';
import { pino, type Logger } from 'pino';

/** A complete event: a successful tools/call request unless overridden. */
export function makeEvent(overrides: Partial<McpEvent> = {}): McpEvent {
  return {
    id: randomUUID(),
    ts: new Date().toISOString(),
    edge_id: 'edge-test',
    request_id: randomUUID(),
    tenant: 'acme',
    key_id: 'alice',
    user: 'alice@acme.example',
    namespace: 'search',
    transport: 'streamable',
    protocol_version: '2025-06-18',
    session_id: null,
    direction: 'client_to_server',
    kind: 'request',
    jsonrpc_id: '1',
    method: 'tools/call',
    tool: 'web',
    outcome: 'ok',
    http_status: 200,
    error_code: null,
    duration_ms: 10,
    upstream_ms: 8,
    bytes_in: 100,
    bytes_out: 200,
    client_name: 'test-client',
    client_version: '1.0.0',
    server: null,
    auth_method: overrides.key_id === null ? 'none' : 'key',
    client_tool: null,
    upstream_protocol_version: null,
    count: 1,
    client_network: null,
    tools_listed: null,
    detail: null,
    ...overrides,
  };
}

/**
 * What the edge publishes for rejected requests without a valid credential (SPEC §7 v2): one
 * event per minute, namespace, outcome and client network, standing for `count` requests.
 */
export function makeRejectionCount(count: number, overrides: Partial<McpEvent> = {}): McpEvent {
  const minute = Math.floor(Date.parse(overrides.ts ?? new Date().toISOString()) / 60_000);
  return makeEvent({
    id: randomUUID(),
    tenant: null,
    key_id: null,
    user: null,
    session_id: null,
    kind: null,
    jsonrpc_id: null,
    method: null,
    tool: null,
    outcome: 'unauthorized',
    http_status: 401,
    error_code: 'unauthorized',
    duration_ms: null,
    upstream_ms: null,
    bytes_out: null,
    client_name: null,
    client_version: null,
    auth_method: 'none',
    count,
    client_network: '203.0.113.7',
    ...overrides,
    // Stamped with the start of its minute.
    ts: new Date(minute * 60_000).toISOString(),
  });
}

/** An event as an edge from before v2 published it: without the v2 fields. */
export function preV2Event(overrides: Partial<McpEvent> = {}): Record<string, unknown> {
  const {
    server: _server,
    auth_method: _authMethod,
    client_tool: _clientTool,
    count: _count,
    client_network: _clientNetwork,
    ...event
  } = preListingEvent(overrides);
  return event;
}

/** An event as an edge of v2 from before the context budget and pinning published it. */
export function preListingEvent(
  overrides: Partial<McpEvent> = {},
): Omit<McpEvent, 'tools_listed' | 'detail'> {
  const { tools_listed: _listed, detail: _detail, ...event } = makeEvent(overrides);
  return event;
}

/**
 * The response to a `tools/list` as the edge records it (SPEC §7 v2): the tools the client
 * received, each with the tokens of its definition.
 */
export function makeListing(
  tools: Record<string, number | null>,
  overrides: Partial<McpEvent> = {},
): McpEvent {
  return makeEvent({
    direction: 'server_to_client',
    kind: 'response',
    method: 'tools/list',
    tool: null,
    duration_ms: null,
    bytes_in: null,
    tools_listed: Object.entries(tools).map(([tool, tokens]) => ({ tool, tokens })),
    ...overrides,
  });
}

export interface TempDir {
  path: string;
  file(name: string): string;
  remove(): void;
}

export function tempDir(prefix = 'analytics-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    file: (name) => join(path, name),
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

/** A pino logger at debug level writing every line to `lines` (unredacted, to prove what is logged). */
export function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export function testConfig(retentionDays = 30): ConfigStore {
  return new ConfigStore(parseConfig(`analytics: { retention_days: ${retentionDays} }\n`, {}));
}
