import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { eventually } from '../../../test/support/eventually.js';
import { ChildLines } from '../src/bridge/child-lines.js';

// The stdio line transport (bridge/child-lines.ts) against real child processes: one parse per
// line however the pipe splits it, lines that are not JSON-RPC messages reported and dropped
// (never handed to the tap), and a child that ignores a closed stdin stopped by signal.

function child(script: string): ChildLines {
  return new ChildLines({
    command: process.execPath,
    args: ['-e', script],
    env: { ...process.env } as Record<string, string>,
  });
}

describe('ChildLines', () => {
  it('reads messages however the pipe splits them, and writes one line per message', async () => {
    // Echoes each line it reads, then writes a message in three pieces and two in one write.
    const lines = child(`
      const rl = require('readline').createInterface({ input: process.stdin });
      rl.on('line', (l) => process.stdout.write(l + '\\n'));
      process.stdout.write('{"jsonrpc":"2.0",');
      setTimeout(() => process.stdout.write('"method":"notifications/a"'), 20);
      setTimeout(() => process.stdout.write('}\\n{"jsonrpc":"2.0","id":1,"result":{}}\\n{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"m"}}\\n'), 40);
    `);
    const got: JSONRPCMessage[] = [];
    lines.onmessage = (message) => got.push(message);
    await lines.start();
    await eventually(() => got.length === 3, 5_000);
    await lines.send({ jsonrpc: '2.0', id: 7, method: 'ping' });
    await eventually(() => got.length === 4, 5_000);
    expect(got).toEqual([
      { jsonrpc: '2.0', method: 'notifications/a' },
      { jsonrpc: '2.0', id: 1, result: {} },
      { jsonrpc: '2.0', id: 'x', error: { code: -1, message: 'm' } },
      { jsonrpc: '2.0', id: 7, method: 'ping' },
    ]);
    await lines.close();
  });

  it('drops and reports what is not a JSON-RPC message', async () => {
    const lines = child(`
      for (const l of ['not json', '[1,2]', '{"jsonrpc":"1.0","method":"x"}', '{"jsonrpc":"2.0","id":{},"result":{}}',
        '{"jsonrpc":"2.0","id":1}', '{"jsonrpc":"2.0","id":1,"result":5}', '{"jsonrpc":"2.0","id":2,"result":{"ok":true}}'])
        process.stdout.write(l + '\\n');
      setInterval(() => {}, 1000);
    `);
    const got: JSONRPCMessage[] = [];
    const errors: string[] = [];
    lines.onmessage = (message) => got.push(message);
    lines.onerror = (error) => errors.push(error.message);
    await lines.start();
    await eventually(() => got.length === 1 && errors.length === 6, 5_000);
    expect(got).toEqual([{ jsonrpc: '2.0', id: 2, result: { ok: true } }]);
    expect(errors[0]).toContain('not JSON');
    await lines.close();
  });

  it('stops a child that ignores its closed stdin (SIGTERM), and reports its exit', async () => {
    const lines = child(
      `process.stdin.resume(); process.stdin.on('end', () => {}); setInterval(() => {}, 1000);`,
    );
    let closed = false;
    lines.onclose = () => (closed = true);
    await lines.start();
    const started = Date.now();
    await lines.close();
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses to start a command that does not exist', async () => {
    const lines = new ChildLines({ command: '/nonexistent/mcp-server', args: [], env: {} });
    await expect(lines.start()).rejects.toThrow(/ENOENT/);
  });
});
