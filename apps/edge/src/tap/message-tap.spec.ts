import { recordedExchange } from '../../../../test/support/exchange.js';
import { testCatalog } from '../../../../test/support/tool-gate.js';
import { classify } from '../jsonrpc/messages.js';
import type { ToolGate } from '../pins/tool-catalog.js';
import { MessageTap } from './message-tap.js';

let filter: ToolGate;
beforeAll(async () => {
  filter = (await testCatalog()).gate(['get-env']);
});
const tools = () => [{ name: 'echo' }, { name: 'get-env' }, { notATool: true }];

describe('MessageTap.inbound', () => {
  it.each([
    [
      'a visible tools/call request',
      { id: 1, method: 'tools/call', params: { name: 'echo' } },
      true,
    ],
    [
      'a hidden tools/call request',
      { id: 1, method: 'tools/call', params: { name: 'get-env' } },
      false,
    ],
    [
      'a hidden tools/call notification',
      { method: 'tools/call', params: { name: 'get-env' } },
      false,
    ],
    [
      'a tools/call without a string name',
      { id: 1, method: 'tools/call', params: { name: 7 } },
      false,
    ],
    ['another method', { id: 1, method: 'tools/list' }, true],
  ])('%s: delivered %s', (_name, message, delivered) => {
    const { recorder } = recordedExchange();
    const verdict = MessageTap.inbound(
      classify({ jsonrpc: '2.0', ...message }),
      10,
      filter,
      recorder,
    );
    expect(verdict.deliver).toBe(delivered);
  });

  it('answers a hidden request with -32602 and drops a hidden notification without an answer', () => {
    const { recorder } = recordedExchange();
    const request = MessageTap.inbound(
      classify({ jsonrpc: '2.0', id: 'x', method: 'tools/call', params: { name: 'get-env' } }),
      10,
      filter,
      recorder,
    );
    expect(request).toEqual({
      deliver: false,
      answer: {
        jsonrpc: '2.0',
        id: 'x',
        error: { code: -32602, message: 'Tool not found: get-env' },
      },
    });
    const notification = MessageTap.inbound(
      classify({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'get-env' } }),
      10,
      filter,
      recorder,
    );
    expect(notification).toEqual({ deliver: false });
  });

  it('records a denied notification as denied_tool', async () => {
    const { recorder, events } = recordedExchange();
    MessageTap.inbound(
      classify({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'get-env' } }),
      10,
      filter,
      recorder,
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toMatchObject([
      {
        kind: 'notification',
        outcome: 'denied_tool',
        tool: 'get-env',
        direction: 'client_to_server',
      },
    ]);
  });
});

describe('MessageTap.outbound', () => {
  it.each([
    ['an answer to tools/list', { id: 1, result: { tools: tools(), nextCursor: 'c' } }],
    ['an answer with an id nobody asked', { id: 'stray', result: { tools: tools() } }],
    ['an answer to a ping', { id: 2, result: { tools: tools() } }],
  ])('filters the tools array of %s, whatever its id', (_name, message) => {
    const { recorder } = recordedExchange();
    const value = { jsonrpc: '2.0', ...message } as Record<string, unknown>;
    expect(MessageTap.outbound(value, 10, 200, filter, recorder)).toBe(true);
    expect((value.result as { tools: unknown[] }).tools).toEqual([{ name: 'echo' }]);
  });

  it.each([
    ['an error', { id: 1, error: { code: -1, message: 'tools' } }],
    ['a result without tools', { id: 1, result: { content: [] } }],
    ['a notification', { method: 'notifications/tools/list_changed' }],
    ['a result whose tools is not an array', { id: 1, result: { tools: 'get-env' } }],
  ])('leaves %s unchanged', (_name, message) => {
    const { recorder } = recordedExchange();
    const value = { jsonrpc: '2.0', ...message } as Record<string, unknown>;
    const before = JSON.stringify(value);
    expect(MessageTap.outbound(value, 10, 200, filter, recorder)).toBe(false);
    expect(JSON.stringify(value)).toBe(before);
  });
});
