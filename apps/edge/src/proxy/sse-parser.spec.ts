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
});
