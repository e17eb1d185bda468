// A stateless MCP server over stdio (newline-delimited JSON-RPC), for warm and shared children.
// Each line appended to STDIO_LOG is JSON: `{ pid, boot: true, mark }` once it reads its input
// (after BOOT_DELAY_MS, a slow start; `mark` is MARK from its environment; with GREETING set it
// then sends that as a log message, unprompted), then `{ pid, message }` for every message it receives — so a
// test can tell which process got what, and that a warm child got nothing before its session.
//
// Tools: `echo` answers `text` after `delay_ms` (answers of concurrent calls cross); `get-env`
// is the one a test config hides; `progress` sends two progress notifications on the caller's
// token first; `ask` puts a sampling request to the client and answers with what it said;
// `announce` sends tools/list_changed and a log message (to every session) first.
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const log = process.env.STDIO_LOG;
const record = (entry) => {
  if (log) appendFileSync(log, `${JSON.stringify({ pid: process.pid, ...entry })}\n`);
};
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const TOOLS = ['echo', 'get-env', 'progress', 'ask', 'announce'].map((name) => ({
  name,
  inputSchema: { type: 'object' },
}));

/** Questions put to the client, by id: what to do with its answer. */
const asked = new Map();
let nextQuestion = 0;

function answer(message) {
  const { id, method, params } = message;
  const result = (value) => send({ jsonrpc: '2.0', id, result: value });
  const text = (value) => result({ content: [{ type: 'text', text: value }] });
  switch (method) {
    case 'initialize':
      return result({
        protocolVersion: params?.protocolVersion ?? '2025-06-18',
        capabilities: { tools: { listChanged: true }, logging: {} },
        serverInfo: { name: 'stateless', version: '1.0.0' },
      });
    case 'ping':
      return result({});
    case 'tools/list':
      return result({ tools: TOOLS });
    case 'tools/call':
      break;
    default:
      return send({ jsonrpc: '2.0', id, error: { code: -32601, message: 'Method not found' } });
  }
  const args = params?.arguments ?? {};
  switch (params?.name) {
    case 'echo':
      return void setTimeout(() => text(String(args.text)), Number(args.delay_ms ?? 0));
    case 'progress': {
      const progressToken = params?._meta?.progressToken;
      for (const progress of [1, 2])
        send({
          jsonrpc: '2.0',
          method: 'notifications/progress',
          params: { progressToken, progress },
        });
      return text(`progressed ${String(args.text)}`);
    }
    case 'ask': {
      const question = `q-${++nextQuestion}`;
      asked.set(question, (reply) => text(`told ${JSON.stringify(reply.result ?? reply.error)}`));
      return send({
        jsonrpc: '2.0',
        id: question,
        method: 'sampling/createMessage',
        params: {
          messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }],
          maxTokens: 9,
        },
      });
    }
    case 'announce':
      send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
      send({
        jsonrpc: '2.0',
        method: 'notifications/message',
        params: { level: 'info', data: 'announced' },
      });
      return text('announced');
    default:
      return text(`ran ${String(params?.name)}`);
  }
}

function start() {
  record({ boot: true, mark: process.env.MARK });
  // Said unprompted at start, before anything was received (a server that logs as it boots).
  if (process.env.GREETING) {
    const params = { level: 'info', data: process.env.GREETING };
    send({ jsonrpc: '2.0', method: 'notifications/message', params });
  }
  createInterface({ input: process.stdin }).on('line', (line) => {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    record({ message });
    if (message.method === undefined && asked.has(message.id)) {
      asked.get(message.id)(message);
      asked.delete(message.id);
    } else if (message.method !== undefined && message.id !== undefined) {
      answer(message);
    }
  });
}

const delay = Number(process.env.BOOT_DELAY_MS ?? 0);
if (delay > 0) setTimeout(start, delay);
else start();
