import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT, tempDir } from '../../../test/support/processes.js';
import { type Message, StreamableRawClient } from '../../../test/support/raw-client.js';
import { TOOLBOX_TOOLS, ToolboxBackend } from '../../../test/support/toolbox-backend.js';

// SPEC §4 "(v2) Permissions": the tools a principal sees are the intersection of the namespace's
// filter, the key's own `tools` and each of its roles' `tools`, enforced by the one policy tap on
// a pass-through HTTP backend and on a bridged stdio backend alike. A tool hidden by a role or by
// the key is hidden exactly as one the namespace hides: never listed, a call gets -32602 and the
// backend never runs it.

const keys = {
  analyst: `analyst-${randomUUID()}`,
  scoped: `scoped-${randomUUID()}`,
  full: `full-${randomUUID()}`,
};
const dir = tempDir('permissions');
const stdioLog = join(dir, 'toolbox.log');
writeFileSync(stdioLog, '');
const http = new ToolboxBackend();
let gateway: InProcessGateway;

beforeAll(async () => {
  await http.start();
  const stdio = `command: "${process.execPath}", args: ["${join(ROOT, 'test/support/toolbox-stdio.mjs')}"], env: { TOOLBOX_LOG: "${stdioLog}" }`;
  // Every namespace hides delete_note itself; the analyst role hides write_*, the scoped key
  // search__*. The analyst key names no namespace of its own: its role grants them.
  gateway = await startInProcessGateway(`
namespaces:
  notes_http: { upstream: { url: "${http.url}" }, tools: { deny: [delete_note] } }
  notes_stdio: { upstream: { ${stdio} }, tools: { deny: [delete_note] } }
  elsewhere: { upstream: { url: "${http.url}" } }
roles:
  analyst:
    namespaces: [notes_http, notes_stdio]
    tools: { deny: ["write_*"] }
keys:
  - { id: analyst, key: "${keys.analyst}", roles: [analyst] }
  - { id: scoped, key: "${keys.scoped}", namespaces: ["*"], tools: { deny: ["search__*"] } }
  - { id: full, key: "${keys.full}", namespaces: ["*"] }
`);
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await http.stop();
  rmSync(dir, { recursive: true, force: true });
});

const call = (id: number, name: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
});

describe.each([
  ['a pass-through HTTP backend', 'notes_http'],
  ['a bridged stdio backend', 'notes_stdio'],
])('per-principal tool scopes on %s', (_kind, ns) => {
  /** Tools the backend ran, whichever kind it is. */
  const ran = (): string[] =>
    ns === 'notes_http'
      ? [...http.ran]
      : readFileSync(stdioLog, 'utf8').split('\n').filter(Boolean);

  const clients: Partial<Record<keyof typeof keys, StreamableRawClient>> = {};
  async function client(who: keyof typeof keys): Promise<StreamableRawClient> {
    let existing = clients[who];
    if (!existing) {
      existing = new StreamableRawClient([gateway.edges[0].url], ns, keys[who]);
      const init = await existing.initialize('2025-03-26');
      expect(init.status).toBe(200);
      clients[who] = existing;
    }
    return existing;
  }
  const post = async (who: keyof typeof keys, body: unknown) =>
    (await client(who)).post(body, { 'mcp-protocol-version': '2025-03-26' });

  async function listed(who: keyof typeof keys): Promise<string[]> {
    const answer = await post(who, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(answer.status).toBe(200);
    const result = answer.messages.find((m) => m.id === 1)?.result as { tools: Message[] };
    return result.tools.map((tool) => String(tool.name));
  }

  it.each<[string, keyof typeof keys, string[]]>([
    [
      'a key without a scope: all but what the namespace hides',
      'full',
      ['read_note', 'write_note', 'search__query', 'echo'],
    ],
    ["a role's deny hides write_*", 'analyst', ['read_note', 'search__query', 'echo']],
    ["the key's own deny hides search__*", 'scoped', ['read_note', 'write_note', 'echo']],
  ])('lists %s', async (_name, who, tools) => {
    expect(TOOLBOX_TOOLS).toEqual(expect.arrayContaining(tools));
    expect(await listed(who)).toEqual(tools);
  });

  it.each<[string, keyof typeof keys, string]>([
    ["a tool the key's role hides", 'analyst', 'write_note'],
    ['a tool the key itself hides', 'scoped', 'search__query'],
    ['a tool the namespace hides', 'full', 'delete_note'],
  ])(
    'answers a call of %s with -32602, the same as any hidden tool, and the backend never runs it',
    async (_name, who, tool) => {
      const before = ran().length;
      const answer = await post(who, call(7, tool));
      expect(answer.status).toBe(200);
      expect(answer.messages.find((m) => m.id === 7)).toEqual({
        jsonrpc: '2.0',
        id: 7,
        error: { code: -32602, message: `Tool not found: ${tool}` },
      });
      // A later call's answer: had the hidden one reached the backend, it would have run first.
      await post(who, call(8, 'echo'));
      expect(ran().slice(before)).toEqual(['echo']);
    },
  );

  it('runs what the scope allows and refuses what it hides, element by element in a batch', async () => {
    const before = ran().length;
    const answer = await post('analyst', [call(21, 'read_note'), call(22, 'write_note')]);
    expect(answer.status).toBe(200);
    const byId = new Map(answer.messages.map((m) => [m.id, m]));
    expect(byId.get(21)?.result).toMatchObject({ content: [{ text: 'ran read_note' }] });
    expect(byId.get(22)?.error).toEqual({ code: -32602, message: 'Tool not found: write_note' });
    await post('analyst', call(23, 'echo'));
    expect(ran().slice(before)).toEqual(['read_note', 'echo']);
  });

  it('lets the key without a scope run what the others may not (the backend has it)', async () => {
    const answer = await post('full', call(31, 'write_note'));
    expect(answer.messages.find((m) => m.id === 31)?.result).toMatchObject({
      content: [{ text: 'ran write_note' }],
    });
  });
});

it("refuses a namespace outside the key's roles with 403 forbidden_namespace", async () => {
  const response = await fetch(`${gateway.edges[0].url}/mcp/elsewhere`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${keys.analyst}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  expect(response.status).toBe(403);
  const body = (await response.json()) as { error: { data?: { code: string } } };
  expect(body.error.data?.code).toBe('forbidden_namespace');
});
