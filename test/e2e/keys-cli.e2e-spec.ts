import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectClient } from '../support/mcp.js';
import {
  freePort,
  type Proc,
  ROOT,
  startService,
  tempDir,
  waitForHttp,
} from '../support/processes.js';
import { ToolboxBackend } from '../support/toolbox-backend.js';

const run = promisify(execFile);

// SPEC §5 (v2) keys at run time, as an operator meets them: the package's `mcp-gateway` bin (what
// `npx mcp-gateway` runs) against `npm start`, the keys in a file beside the DuckDB file.

/** The built CLI, found through package.json's `bin`, as npm links it. */
const BIN = join(
  ROOT,
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> })
    .bin['mcp-gateway'],
);

describe('mcp-gateway keys (the CLI) against standalone mode', () => {
  const dir = tempDir('keys-cli');
  const adminKey = `ops-${randomUUID()}`;
  const dbPath = join(dir, 'data', 'analytics.duckdb');
  let backend: ToolboxBackend;
  let proc: Proc;
  let edgeUrl: string;
  let analyticsUrl: string;

  const start = async () => {
    const [edgePort, analyticsPort] = await Promise.all([freePort(), freePort()]);
    proc = startService('standalone', {
      GATEWAY_CONFIG: join(dir, 'gateway.yaml'),
      ANALYTICS_DB: dbPath,
      EDGE_PORT: String(edgePort),
      ANALYTICS_PORT: String(analyticsPort),
      HOST: '127.0.0.1',
      NATS_URL: '',
      REDIS_URL: '',
    });
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    analyticsUrl = `http://127.0.0.1:${analyticsPort}`;
    await Promise.all([
      waitForHttp(`${edgeUrl}/readyz`, proc),
      waitForHttp(`${analyticsUrl}/healthz`, proc),
    ]);
  };

  const cli = async (args: string[], key = adminKey) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, 'keys', ...args], {
        cwd: ROOT,
        env: { ...process.env, MCP_GATEWAY_URL: analyticsUrl, MCP_GATEWAY_ADMIN_KEY: key },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };

  const tools = async (key: string) => {
    const { client } = await connectClient(`${edgeUrl}/mcp/tools`, key);
    const listed = await client.listTools();
    await client.close();
    return listed.tools.map((tool) => tool.name);
  };

  beforeAll(async () => {
    backend = await new ToolboxBackend().start();
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `namespaces:\n  tools: { upstream: { url: "${backend.url}" } }\n` +
        `keys:\n  - { id: ops, key: "${adminKey}", role: admin, namespaces: ["*"] }\n`,
    );
    await start();
  }, 60_000);

  afterAll(async () => {
    await proc?.stop();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a key whose secret works, keeps it across a restart, and revokes it', async () => {
    const created = await cli([
      'create',
      '--user',
      'me@example.com',
      '--namespace',
      'tools',
      '--json',
    ]);
    expect([created.code, created.stderr]).toEqual([0, '']);
    const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
    expect((await tools(key)).length).toBeGreaterThan(0);

    const keysFile = join(dir, 'data', 'keys.json');
    expect(existsSync(keysFile)).toBe(true);
    expect(statSync(keysFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keysFile, 'utf8')).not.toContain(key);

    const listed = await cli(['list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+api\\s+me@example\\.com`, 'm'));
    expect(listed.stdout).toMatch(/^ops\s+file\s/m);

    await proc.stop();
    await start();
    expect((await tools(key)).length).toBeGreaterThan(0);

    expect(await cli(['revoke', id])).toEqual({
      code: 0,
      stdout: `Revoked key ${id}.\n`,
      stderr: '',
    });
    await expect(tools(key)).rejects.toThrow();
  }, 60_000);

  it('exits 1 with the gateway’s message for a wrong admin key, 2 on a usage error', async () => {
    const wrong = await cli(['list'], 'not-an-admin-key-0123456789');
    expect(wrong).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: a valid admin API key is required (unauthorized, HTTP 401)\n',
    });
    const usage = await cli(['create']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('keys create needs --user');
  });
});
