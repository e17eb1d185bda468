import { ForwardingMarks, MARK_VALID_MS, type MarkedRequest } from './forwarding-mark.js';

const request: MarkedRequest = {
  method: 'POST',
  target: '/mcp/stdio?x=1',
  body: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping"}'),
  principal: 'alice',
  requestId: 'req-1',
};

describe('ForwardingMarks', () => {
  it('accepts a fresh mark of the request it was made for, once', () => {
    const marks = new ForwardingMarks('secret');
    const mark = marks.make(request);
    expect(marks.accept(mark, request)).toBe(true);
    expect(marks.accept(mark, request)).toBe(false);
  });

  it.each<[string, Partial<MarkedRequest>]>([
    ['another method', { method: 'DELETE' }],
    ['another path', { target: '/mcp/other' }],
    ['another query', { target: '/mcp/stdio?x=2' }],
    ['another body', { body: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/list"}') }],
    ['no body', { body: undefined }],
    ['another key', { principal: 'mallory' }],
    ['another request id', { requestId: 'req-2' }],
  ])('refuses a mark presented with %s', (_name, change) => {
    const marks = new ForwardingMarks('secret');
    expect(marks.accept(marks.make(request), { ...request, ...change })).toBe(false);
  });

  it.each([
    ['too old', -MARK_VALID_MS - 1],
    ['from too far in the future', MARK_VALID_MS + 1],
  ])('refuses a mark %s', (_name, offset) => {
    const marks = new ForwardingMarks('secret');
    const now = Date.now();
    expect(marks.accept(marks.make(request, now + offset), request, now)).toBe(false);
  });

  it.each(['', 'x', '.', '123.', `${Date.now()}.abc`, 'NaN.abc'])('refuses garbage %#', (mark) => {
    expect(new ForwardingMarks('secret').accept(mark, request)).toBe(false);
  });

  it('refuses a mark of another gateway (another secret)', () => {
    expect(
      new ForwardingMarks('other').accept(new ForwardingMarks('secret').make(request), request),
    ).toBe(false);
  });
});
