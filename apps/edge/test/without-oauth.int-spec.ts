import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ToolboxBackend } from '../../../test/support/toolbox-backend.js';

// mcp-remote, the stdio bridge Claude Desktop and other stdio-only clients use, starts an OAuth
// flow on any 401. Against a gateway without OAuth it must show the gateway's own message (how to
// send a key), not a failed registration; and its starts with a wrong key must not lock out the
// user's good key (its discovery probes carry no key and never count as failed attempts).

const ROOT = join(import.meta.dirname, '../../..');
const key = `key-${randomUUID()}`;
const toolbox = new ToolboxBackend();
let gateway: InProcessGateway;
let home: string;

beforeAll(async () => {
  await toolbox.start();
  home = mkdtempSync(join(tmpdir(), 'mcp-remote-'));
  gateway = await startInProcessGateway(`
namespaces:
  tools: { upstream: { url: "${toolbox.url}" } }
keys:
  - { id: main, key: "${key}", namespaces: ["*"] }
auth: { max_failures: { count: 8, per: 1m } }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await toolbox.stop();
  rmSync(home, { recursive: true, force: true });
});

/** mcp-remote as a stdio MCP server, driven by the SDK's stdio client; its stderr collected. */
async function throughMcpRemote(
  bearer: string,
): Promise<{ client?: Client; stderr: string; error?: unknown }> {
  let stderr = '';
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      join(ROOT, 'node_modules/mcp-remote/dist/proxy.js'),
      `${gateway.edges[0].url}/mcp/tools`,
      '--header',
      `Authorization:Bearer ${bearer}`,
    ],
    env: { ...process.env, HOME: home, MCP_REMOTE_CONFIG_DIR: home, BROWSER: 'true' },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const client = new Client({ name: 'via-mcp-remote', version: '1.0.0' });
  try {
    await client.connect(transport);
    return { client, stderr };
  } catch (error) {
    await transport.close().catch(() => undefined);
    return { stderr, error };
  }
}

it("shows the gateway's message for a wrong key, and its restarts do not lock the good key out", async () => {
  for (let start = 0; start < 6; start++) {
    const refused = await throughMcpRemote(`wrong-key-${start}-0123456789abcdef`);
    expect(refused.client).toBeUndefined();
    expect(refused.stderr).toContain(
      'Missing or invalid API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"',
    );
    expect(refused.stderr).not.toMatch(/registration|HTTP 404/i);
  }
  const good = await throughMcpRemote(key);
  try {
    // Defined, or the stderr says why not.
    expect(good.client ? 'connected' : good.stderr).toBe('connected');
    expect((await good.client!.listTools()).tools.map((tool) => tool.name)).toContain('echo');
  } finally {
    await good.client?.close();
  }
}, 60_000);

describe('OAuth probes on a gateway without OAuth', () => {
  it.each([
    '/.well-known/oauth-protected-resource/mcp/tools',
    '/.well-known/oauth-protected-resource',
    '/.well-known/oauth-authorization-server',
    '/.well-known/openid-configuration',
    '/register',
    '/token',
  ])('%s: 404 with an RFC 6749 error body saying how to send a key', async (path) => {
    const res = await fetch(`${gateway.edges[0].url}${path}`, {
      method: path === '/register' || path === '/token' ? 'POST' : 'GET',
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      error: 'invalid_request',
      error_description: expect.stringContaining('X-API-Key') as string,
    });
  });

  it('the 401 itself says how to send a key, and names no metadata to fetch', async () => {
    const res = await fetch(`${gateway.edges[0].url}/mcp/tools`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer realm="mcp-gateway", error_description=".*X-API-Key/);
    expect(challenge).not.toContain('resource_metadata');
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toContain('X-API-Key');
  });
});
