import { EVENT_COLUMNS, isMcpEvent, type McpEvent } from './mcp-event.js';

const EVENT: McpEvent = {
  id: '01J0000000000000000000000',
  ts: '2026-05-01T12:00:00.000Z',
  edge_id: 'edge-1',
  request_id: 'req-1',
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
  tool: 'search',
  outcome: 'ok',
  http_status: 200,
  error_code: null,
  duration_ms: 12,
  upstream_ms: 10,
  bytes_in: 100,
  bytes_out: 200,
  client_name: 'claude',
  client_version: '1.0',
  server: null,
  auth_method: 'key',
  client_tool: null,
  upstream_protocol_version: null,
  count: 1,
  client_network: null,
  tools_listed: null,
  detail: null,
};

describe('isMcpEvent', () => {
  it.each<[string, unknown]>([
    ['a complete event', EVENT],
    [
      'a rejected HTTP request with nulls for the JSON-RPC fields',
      { ...EVENT, kind: null, method: null, tool: null, outcome: 'unauthorized', http_status: 401 },
    ],
    [
      'a server-to-client response over stdio',
      { ...EVENT, transport: 'stdio', direction: 'server_to_client', kind: 'response' },
    ],
    ['an event with a tool_error outcome', { ...EVENT, outcome: 'tool_error' }],
    ['an event with an offset timestamp', { ...EVENT, ts: '2026-05-01T14:00:00+02:00' }],
    [
      'a per-minute count of rejected requests without a credential',
      {
        ...EVENT,
        ts: '2026-05-01T12:00:00.000Z',
        key_id: null,
        auth_method: 'none',
        kind: null,
        method: null,
        tool: null,
        outcome: 'unauthorized',
        http_status: 401,
        count: 250,
        client_network: '203.0.113.7',
      },
    ],
  ])('accepts %s', (_name, value) => {
    expect(isMcpEvent(value)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a string', 'event'],
    ['an array', [EVENT]],
    ['an empty object', {}],
    ['an event without id', { ...EVENT, id: undefined }],
    ['an event with a numeric id', { ...EVENT, id: 42 }],
    ['an event without ts', { ...EVENT, ts: undefined }],
    ['an event whose ts is not a date', { ...EVENT, ts: 'yesterday' }],
    ['an event without namespace', { ...EVENT, namespace: undefined }],
    ['an unknown outcome', { ...EVENT, outcome: 'success' }],
    ['an unknown direction', { ...EVENT, direction: 'both' }],
    ['an unknown transport', { ...EVENT, transport: 'websocket' }],
  ])('rejects %s', (_name, value) => {
    expect(isMcpEvent(value)).toBe(false);
  });
});

describe('event columns', () => {
  it('lists every field of SPEC §7 as a column, in order', () => {
    const spec =
      'id, ts, edge_id, request_id, tenant, key_id, user, namespace, transport, protocol_version, session_id, ' +
      'direction, kind, jsonrpc_id, method, tool, outcome, http_status, error_code, duration_ms, upstream_ms, ' +
      'bytes_in, bytes_out, client_name, client_version, server, auth_method, client_tool, upstream_protocol_version, count, client_network, ' +
      'tools_listed, detail';
    expect([...EVENT_COLUMNS]).toEqual(spec.split(', '));
    expect(Object.keys(EVENT).sort()).toEqual([...EVENT_COLUMNS].sort());
  });
});
