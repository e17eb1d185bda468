import { SseFramingError, SseParser } from './sse-parser.js';

describe('SseParser', () => {
  it('returns each event as soon as it is complete, raw bytes intact', () => {
    const parser = new SseParser();
    expect(parser.push('id: 1\ndata: {"a"')).toEqual([]);
    const [event] = parser.push(':1}\n\nid: 2\n');
    expect(event).toEqual({ raw: 'id: 1\ndata: {"a":1}\n\n', id: '1', data: '{"a":1}' });
  });

  it.each([
    ['a priming event (id, empty data)', 'id: p1\ndata:\n\n', { id: 'p1', data: '' }],
    ['a retry line', 'retry: 5000\n\n', {}],
    ['a comment (heartbeat)', ': keep-alive\n\n', {}],
    ['CRLF line ends', 'event: message\r\ndata: x\r\n\r\n', { event: 'message', data: 'x' }],
    ['multi-line data', 'data: a\ndata: b\n\n', { data: 'a\nb' }],
  ])('parses %s and relays it unchanged', (_name, text, fields) => {
    const [event] = new SseParser().push(text);
    expect(event.raw).toBe(text);
    expect(event).toMatchObject(fields);
  });

  it('decodes multi-byte characters split across chunks', () => {
    const parser = new SseParser();
    const bytes = Buffer.from('data: é\n\n');
    expect(parser.push(bytes.subarray(0, 7))).toEqual([]);
    expect(parser.push(bytes.subarray(7))[0].data).toBe('é');
  });

  it('refuses an event larger than its bound instead of buffering without limit', () => {
    const parser = new SseParser(1024);
    expect(() => parser.push(`data: ${'x'.repeat(2048)}`)).toThrow(SseFramingError);
  });

  it('drops a byte-order mark at the start of the stream, as SDK clients do', () => {
    const [event] = new SseParser().push('\uFEFFdata: {"a":1}\n\n');
    expect(event).toEqual({ raw: 'data: {"a":1}\n\n', data: '{"a":1}' });
  });

  it('drops a byte-order mark that arrives as bytes split over chunks', () => {
    const parser = new SseParser();
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('data: x\n\n')]);
    expect(parser.push(bytes.subarray(0, 2))).toEqual([]);
    expect(parser.push(bytes.subarray(2))).toEqual([{ raw: 'data: x\n\n', data: 'x' }]);
  });

  it.each([
    ['LF then CRLF', 'data: x\n\r\n'],
    ['CR then LF (one CRLF) then CR', 'data: x\r\n\r'],
    ['lone CRs', 'data: x\r\r'],
    ['LF then CR', 'data: x\n\r'],
  ])('ends an event at a blank line whatever the line ends mix: %s', (_name, text) => {
    const events = new SseParser().push(text);
    expect(events[0]).toMatchObject({ data: 'x' });
    expect(events.map((e) => e.raw).join('')).toBe(text);
  });

  it('reads a CRLF split between two chunks as one line end', () => {
    const parser = new SseParser();
    const first = parser.push('data: a\r');
    const second = parser.push('\ndata: b\r\n\r\n');
    expect([...first, ...second].filter((e) => e.data !== undefined)).toEqual([
      { raw: 'data: a\r\ndata: b\r\n\r\n', data: 'a\nb' },
    ]);
  });
});
