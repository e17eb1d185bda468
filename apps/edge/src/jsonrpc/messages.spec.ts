import { ErrorCode, GatewayError } from '#common';
import { parseJsonRpcBody, responseOutcome, salvageId } from './messages.js';

const body = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('parseJsonRpcBody', () => {
  it.each([
    ['a request', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, ['request']],
    ['a notification', { jsonrpc: '2.0', method: 'notifications/initialized' }, ['notification']],
    ['a result response', { jsonrpc: '2.0', id: 's1', result: {} }, ['response']],
    [
      'an error response',
      { jsonrpc: '2.0', id: 2, error: { code: 1, message: 'x' } },
      ['response'],
    ],
    [
      'a batch',
      [
        { jsonrpc: '2.0', id: 1, method: 'a' },
        { jsonrpc: '2.0', method: 'b' },
      ],
      ['request', 'notification'],
    ],
  ])('classifies %s', (_name, value, kinds) => {
    expect(parseJsonRpcBody(body(value)).messages.map((m) => m.kind)).toEqual(kinds);
  });

  it('names the tool of a tools/call', () => {
    const parsed = parseJsonRpcBody(
      body({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } }),
    );
    expect(parsed.messages[0].tool).toBe('echo');
  });

  it('sees the tool name the backend will see, even behind unicode escapes and duplicate keys', () => {
    const raw =
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","n\\u0061me":"get-env"}}';
    expect(parseJsonRpcBody(Buffer.from(raw)).messages[0].tool).toBe('get-env');
  });

  it.each([
    ['not JSON', '{"jsonrpc":', ErrorCode.ParseError],
    ['an empty body', '', ErrorCode.ParseError],
    ['a JSON string', '"hello"', ErrorCode.InvalidRequest],
    ['jsonrpc 1.0', { jsonrpc: '1.0', id: 1, method: 'x' }, ErrorCode.InvalidRequest],
    ['a null id', { jsonrpc: '2.0', id: null, method: 'x' }, ErrorCode.InvalidRequest],
    ['a fractional id', { jsonrpc: '2.0', id: 1.5, method: 'x' }, ErrorCode.InvalidRequest],
    ['a numeric method', { jsonrpc: '2.0', id: 1, method: 5 }, ErrorCode.InvalidRequest],
    ['scalar params', { jsonrpc: '2.0', id: 1, method: 'x', params: 3 }, ErrorCode.InvalidRequest],
    ['an empty batch', [], ErrorCode.InvalidRequest],
    [
      'a batch with a bad element',
      [{ jsonrpc: '2.0', id: 1, method: 'x' }, 5],
      ErrorCode.InvalidRequest,
    ],
    ['an id without result or method', { jsonrpc: '2.0', id: 1 }, ErrorCode.InvalidRequest],
    [
      'two requests with one id in a batch',
      [
        { jsonrpc: '2.0', id: 7, method: 'tools/list' },
        { jsonrpc: '2.0', id: 7, method: 'ping' },
      ],
      ErrorCode.InvalidRequest,
    ],
  ])('refuses %s', (_name, value, code) => {
    expect(() => parseJsonRpcBody(body(value))).toThrow(GatewayError);
    try {
      parseJsonRpcBody(body(value));
    } catch (error) {
      expect((error as GatewayError).code).toBe(code);
    }
  });
});

describe('nesting', () => {
  const nested = (depth: number, open = '[', close = ']') =>
    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":${open.repeat(depth)}${close.repeat(depth)}}}}`;

  it.each([
    ['200,000 arrays deep', nested(200_000)],
    ['objects 100 deep', nested(100, '{"a":', '}').replace(/\{"a":\}/, '{}')],
    ['just past the limit', nested(62)],
  ])('refuses %s (400, -32600) before parsing', (_name, text) => {
    let refused: unknown;
    try {
      parseJsonRpcBody(Buffer.from(text));
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(GatewayError);
    expect((refused as GatewayError).code).toBe(ErrorCode.InvalidRequest);
  });

  it.each([
    ['at the limit', nested(61)],
    [
      'brackets inside strings',
      `{"jsonrpc":"2.0","id":1,"method":"x","params":{"s":"${'['.repeat(500)}\\"${'{'.repeat(500)}"}}`,
    ],
  ])('accepts %s', (_name, text) => {
    expect(parseJsonRpcBody(Buffer.from(text)).messages).toHaveLength(1);
  });
});

describe('ids in a batch', () => {
  it.each([
    ['a number and a string that look alike', [7, '7']],
    ['a request and a response to a server request with the same id', [1, 'response']],
  ])('accepts %s', (_name, [first, second]) => {
    const messages: unknown[] = [{ jsonrpc: '2.0', id: first, method: 'ping' }];
    messages.push(
      second === 'response'
        ? { jsonrpc: '2.0', id: first, result: {} }
        : { jsonrpc: '2.0', id: second, method: 'ping' },
    );
    expect(parseJsonRpcBody(Buffer.from(JSON.stringify(messages))).messages).toHaveLength(2);
  });
});

describe('salvageId and responseOutcome', () => {
  it('recovers the id of an invalid message so the error can carry it', () => {
    expect(salvageId(body({ id: 9, method: 'x' }))).toBe(9);
    expect(salvageId(body('nope'))).toBeUndefined();
  });

  it.each([
    ['ok', { jsonrpc: '2.0', id: 1, result: { content: [] } }],
    ['tool_error', { jsonrpc: '2.0', id: 1, result: { isError: true, content: [] } }],
    ['rpc_error', { jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'bad' } }],
  ])('reports %s', (outcome, message) => {
    expect(responseOutcome(message)).toBe(outcome);
  });
});
