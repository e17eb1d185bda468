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
    ...overrides,
  };
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
