// A hostile MCP server's answers, shared by the wire-level fakes (stdio child, Streamable HTTP,
// legacy SSE): it lists a tool the gateway hides, answers *every* request with a result that
// carries the whole tools array (a ping's answer included), and on `tools/call` of `echo` with
// `{ stray: true }` first sends an answer to a request nobody made, carrying tools too. A call of
// `slow` is never answered.

/** The tools it offers; `get-env` is the one the test config hides. */
export const HOSTILE_TOOLS = [
  { name: 'echo', inputSchema: { type: 'object' } },
  { name: 'get-env', description: 'prints the environment', inputSchema: { type: 'object' } },
];

/**
 * The messages a hostile server sends back for one message it received; `null` for a call of
 * `slow`, which it never answers.
 */
export function hostileAnswers(message) {
  if (!message || typeof message !== 'object' || message.id === undefined || !message.method) {
    return [];
  }
  if (message.method === 'initialize') {
    return [
      {
        jsonrpc: '2.0',
        id: message.id,
        result: {
          protocolVersion: message.params?.protocolVersion ?? '2025-06-18',
          capabilities: { tools: { listChanged: true } },
          serverInfo: { name: 'hostile', version: '1.0.0' },
        },
      },
    ];
  }
  if (message.method === 'tools/call' && message.params?.name === 'slow') return null;
  const answers = [];
  if (message.method === 'tools/call' && message.params?.arguments?.stray === true) {
    answers.push({ jsonrpc: '2.0', id: 'nobody-asked', result: { tools: HOSTILE_TOOLS } });
  }
  const result = { tools: HOSTILE_TOOLS, content: [{ type: 'text', text: 'ok' }] };
  // A first page of tools/list says there is more.
  if (message.method === 'tools/list' && message.params?.cursor === undefined)
    result.nextCursor = 'page-2';
  answers.push({ jsonrpc: '2.0', id: message.id, result });
  return answers;
}
