import { TOOL_DRIFT_METHOD } from '#common';
import {
  makeEvent,
  makeListing,
  makeRejectionCount,
  preListingEvent,
  preV2Event,
} from '../../test/fixtures.js';
import { decodeEventMessage, parseTimestamp } from './event-decoder.js';

const valid = makeEvent({ id: 'evt-1', ts: '2025-01-01T00:00:00.000Z' });

describe('decodeEventMessage', () => {
  it('accepts a valid event and keeps its id and time', () => {
    const result = decodeEventMessage(JSON.stringify(valid));
    expect(result).toEqual({
      ok: true,
      event: {
        id: 'evt-1',
        tsMs: Date.parse('2025-01-01T00:00:00.000Z'),
        doc: expect.any(String) as string,
        count: 1,
      },
    });
  });

  it('stores a plain event body as received', () => {
    const text = JSON.stringify(valid);
    const result = decodeEventMessage(text);
    expect(result.ok && result.event.doc).toBe(text);
  });

  it.each([
    [
      'a duplicate key',
      JSON.stringify(valid).replace('{"id":"evt-1"', '{"ts":"bogus","id":"evt-1"'),
    ],
    [
      'a duplicate key after whitespace',
      JSON.stringify(valid).replace('{"id":"evt-1"', '{"ts" : "bogus","id":"evt-1"'),
    ],
    ['a nested object', JSON.stringify({ ...valid, meta: { ts: 'x' } })],
  ])('re-serialises a body with %s to exactly the validated columns', (_name, text) => {
    const result = decodeEventMessage(text);
    if (!result.ok) throw new Error(result.reason);
    expect(result.event.doc).not.toBe(text);
    expect(JSON.parse(result.event.doc)).toEqual(valid);
  });

  it.each([
    ['a per-minute count of rejected requests', makeRejectionCount(250)],
    [
      'an event authenticated by OAuth on a virtual server',
      makeEvent({ auth_method: 'oauth', server: 'all-tools', client_tool: 'search__web' }),
    ],
    ['the most requests one event may stand for', makeRejectionCount(1_000_000_000)],
    // 256 characters as DuckDB counts them (code points), 512 UTF-16 units in JavaScript.
    ['a client_network of 256 astral characters', makeEvent({ client_network: '😀'.repeat(256) })],
    ['a tools/list response with the tools listed', makeListing({ web: 120, news: null })],
    ['an empty listing', makeListing({})],
    [
      'the most tools one listing may hold',
      makeListing(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`t${i}`, i]))),
    ],
    [
      'a tool_drift event with its detail',
      makeEvent({
        kind: 'notification',
        direction: 'server_to_client',
        method: TOOL_DRIFT_METHOD,
        detail: JSON.stringify({ previous_hash: 'sha256:a', hash: 'sha256:b', diff: '~ x: 1 → 2' }),
      }),
    ],
    ['a detail of 16,384 characters', makeEvent({ detail: 'd'.repeat(16_384) })],
  ])('accepts %s as received', (_name, event) => {
    const text = JSON.stringify(event);
    const result = decodeEventMessage(text);
    expect(result.ok && result.event.doc).toBe(text);
  });

  it('accepts an event of an edge from before v2, without the v2 fields, as received', () => {
    const text = JSON.stringify(preV2Event({ id: 'old-1' }));
    const result = decodeEventMessage(text);
    expect(result).toEqual({
      ok: true,
      // Before v2 every event stood for one request.
      event: { id: 'old-1', tsMs: expect.any(Number) as number, doc: text, count: 1 },
    });
  });

  it('accepts an event of an edge of v2 from before tools_listed and detail, as received', () => {
    const text = JSON.stringify(preListingEvent({ id: 'v2-1' }));
    expect(decodeEventMessage(text)).toEqual({
      ok: true,
      event: { id: 'v2-1', tsMs: expect.any(Number) as number, doc: text, count: 1 },
    });
  });

  it('re-serialises a listing whose entry repeats a key (DuckDB would keep the first)', () => {
    const listing = makeListing({ web: 10 });
    const text = JSON.stringify(listing).replace('"tokens":10', '"tokens":99999,"tokens":10');
    const result = decodeEventMessage(text);
    if (!result.ok) throw new Error(result.reason);
    expect(result.event.doc).not.toBe(text);
    expect(JSON.parse(result.event.doc)).toEqual(listing);
  });

  it('keeps the raw body when a string value holds escaped quotes and colons', () => {
    const text = JSON.stringify({ ...valid, tool: 'a":"b\\":' });
    const result = decodeEventMessage(text);
    expect(result.ok && result.event.doc).toBe(text);
  });

  it.each([
    ['not JSON', '{"id":', 'not JSON'],
    ['a JSON array', '[]', 'not an MCP event'],
    ['an unknown outcome', JSON.stringify({ ...valid, outcome: 'great' }), 'not an MCP event'],
    ['an unknown kind', JSON.stringify({ ...valid, kind: 'batch' }), 'kind'],
    ['a numeric tenant', JSON.stringify({ ...valid, tenant: 7 }), 'tenant'],
    ['a string duration', JSON.stringify({ ...valid, duration_ms: '12' }), 'duration_ms'],
    ['a fractional http_status', JSON.stringify({ ...valid, http_status: 200.5 }), 'http_status'],
    ['fractional bytes', JSON.stringify({ ...valid, bytes_out: 1.5 }), 'bytes_out'],
    ['an empty id', JSON.stringify({ ...valid, id: '' }), 'id'],
    [
      'an unknown auth_method',
      JSON.stringify({ ...valid, auth_method: 'password' }),
      'auth_method',
    ],
    ['a null auth_method', JSON.stringify({ ...valid, auth_method: null }), 'auth_method'],
    ['a count of 0', JSON.stringify({ ...valid, count: 0 }), 'count'],
    ['a negative count', JSON.stringify({ ...valid, count: -3 }), 'count'],
    ['a fractional count', JSON.stringify({ ...valid, count: 2.5 }), 'count'],
    ['a count past the bound', JSON.stringify({ ...valid, count: 1_000_000_001 }), 'count'],
    ['a null count', JSON.stringify({ ...valid, count: null }), 'count'],
    ['a count as text', JSON.stringify({ ...valid, count: '3' }), 'count'],
    ['a numeric server', JSON.stringify({ ...valid, server: 1 }), 'server'],
    [
      'a client_tool of 257 characters',
      JSON.stringify({ ...valid, client_tool: 'x'.repeat(257) }),
      'client_tool',
    ],
    [
      'a client_network of 257 astral characters',
      JSON.stringify({ ...valid, client_network: '😀'.repeat(257) }),
      'client_network',
    ],
    ['tools_listed as an object', JSON.stringify({ ...valid, tools_listed: {} }), 'tools_listed'],
    [
      'a null tools_listed entry',
      JSON.stringify({ ...valid, tools_listed: [null] }),
      'tools_listed',
    ],
    [
      'a tools_listed entry without a tool',
      JSON.stringify({ ...valid, tools_listed: [{ tokens: 3 }] }),
      'tools_listed',
    ],
    [
      'a numeric tool name in tools_listed',
      JSON.stringify({ ...valid, tools_listed: [{ tool: 7, tokens: 3 }] }),
      'tools_listed',
    ],
    [
      'a tool name of 257 characters in tools_listed',
      JSON.stringify(makeListing({ ['x'.repeat(257)]: 3 })),
      'tools_listed',
    ],
    ['negative tokens', JSON.stringify(makeListing({ web: -1 })), 'tokens'],
    ['fractional tokens', JSON.stringify(makeListing({ web: 1.5 })), 'tokens'],
    ['tokens past INTEGER', JSON.stringify(makeListing({ web: 2 ** 31 })), 'tokens'],
    [
      'tokens as text',
      JSON.stringify({ ...valid, tools_listed: [{ tool: 'web', tokens: '3' }] }),
      'tokens',
    ],
    [
      'a listing of 10,001 tools',
      JSON.stringify(
        makeListing(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`t${i}`, 1]))),
      ),
      'more than 10000 tools',
    ],
    ['a numeric detail', JSON.stringify({ ...valid, detail: 5 }), 'detail'],
    [
      'a detail of 16,385 characters',
      JSON.stringify({ ...valid, detail: 'd'.repeat(16_385) }),
      'detail',
    ],
    ['a ts without offset', JSON.stringify({ ...valid, ts: '2025-01-01T00:00:00' }), 'ts'],
    [
      'a ts on a day that does not exist',
      JSON.stringify({ ...valid, ts: '2025-02-30T00:00:00Z' }),
      'ts',
    ],
  ])('refuses %s', (_name, text, reason) => {
    const result = decodeEventMessage(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });
});

describe('parseTimestamp', () => {
  it.each([
    ['2025-01-01T00:00:00Z', Date.UTC(2025, 0, 1)],
    ['2025-01-01T00:00:00.123456Z', Date.UTC(2025, 0, 1, 0, 0, 0, 123)],
    ['2025-01-01T02:00:00+02:00', Date.UTC(2025, 0, 1)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    // The fast path (toISOString's shape) agrees with Date.parse, leap years included.
    ['2024-02-29T23:59:59.999Z', Date.parse('2024-02-29T23:59:59.999Z')],
    ['2000-02-29T00:00:00.000Z', Date.parse('2000-02-29T00:00:00.000Z')],
    ['2025-12-31T12:34:56.789Z', Date.parse('2025-12-31T12:34:56.789Z')],
    ['0050-06-01T00:00:00.000Z', Date.parse('0050-06-01T00:00:00.000Z')],
  ])('parses %s', (text, expected) => {
    expect(parseTimestamp(text)).toBe(expected);
  });

  it.each([
    '2025-02-29T00:00:00Z',
    '2025-13-01T00:00:00Z',
    '2025-01-01T24:00:00Z',
    '2025-01-01T00:00:00+25:00',
    '2025-02-29T00:00:00.000Z',
    '2100-02-29T00:00:00.000Z',
    '2025-04-31T00:00:00.000Z',
    '2025-01-01T00:60:00.000Z',
    '2025-01-01T00:00:00.0a0Z',
    '2025-01-01 00:00:00.000Z'.replace(' ', '_'),
    'yesterday',
  ])('refuses %s', (text) => {
    expect(parseTimestamp(text)).toBeUndefined();
  });
});
