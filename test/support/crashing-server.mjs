// A stdio "MCP server" that answers initialize and tools/list, then dies on the first tools/call:
// the gateway must end the session with a clean error.
import { createInterface } from 'node:readline';

const lines = createInterface({ input: process.stdin });
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
process.stderr.write('crashing-server started\n');
lines.on('line', (line) => {
  const message = JSON.parse(line);
  if (message.method === 'initialize') {
    send({
      jsonrpc: '2.0',
      id: message.id,
      result: {
        protocolVersion: message.params.protocolVersion,
        capabilities: { tools: {} },
        serverInfo: { name: 'crashing', version: '1' },
      },
    });
  } else if (message.method === 'tools/list') {
    send({
      jsonrpc: '2.0',
      id: message.id,
      result: { tools: [{ name: 'crash', inputSchema: { type: 'object' } }] },
    });
  } else if (message.method === 'tools/call') {
    process.stderr.write('crashing now\n');
    process.exit(3);
  }
});
