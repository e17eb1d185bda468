import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  type Tool,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { eventually } from '../../../test/support/eventually.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { MemberBackend } from '../../../test/support/member-backend.js';
import { ROOT, tempDir } from '../../../test/support/processes.js';
import { textOf } from '../../../test/support/mcp.js';
import { type Message, postModern, sseMessages } from '../../../test/support/raw-client.js';

// Virtual servers (SPEC §3 v2 `servers`, §4 behaviour 12) with the official SDK client against
// members of the three backend kinds, each with the same tool names: alpha over Streamable HTTP,
// beta over legacy SSE, gamma a stdio child whose tools come two to a page.

const keys = { all: `all-${randomUUID()}`, some: `some-${randomUUID()}` };
const alpha = new MemberBackend('alpha');
const beta = new MemberBackend('beta');
const secret = new MemberBackend('secret');
const dir = tempDir('virtual');
const gammaLog = join(dir, 'gamma.log');
let gateway: InProcessGateway;
const url = (server: string, edge = 0) =>
  `http://127.0.0.1:${gateway.edges[edge].port}/mcp/${server}`;

beforeAll(async () => {
  await Promise.all([alpha.start(), beta.start(), secret.start()]);
  writeFileSync(gammaLog, '');
  const stdio = `command: "${process.execPath}", args: ["${join(ROOT, 'test/support/member-stdio.mjs')}"], env: { MEMBER_NAME: gamma, MEMBER_PAGE_SIZE: "2", MEMBER_CRASHABLE: "1", MEMBER_LOG: "${gammaLog}" }`;
  gateway = await startInProcessGateway(
    `
namespaces:
  alpha: { upstream: { url: "${alpha.url}/mcp" } }
  beta: { upstream: { url: "${beta.url}/sse", transport: sse } }
  gamma: { upstream: { ${stdio} }, tools: { deny: ["gamma_only"] } }
  secret: { upstream: { url: "${secret.url}/mcp" } }
  hush: { upstream: { url: "${alpha.url}/mcp" }, tools: { deny: ["echo"] } }
servers:
  bench:
    namespaces: [alpha, beta, gamma, secret]
    tools: { deny: ["beta__grow"] }
    overrides:
      alpha__echo: { name: shout, description: "Shout it back" }
  flat: { namespaces: [alpha], prefix: "" }
  pair: { namespaces: [hush, secret], prefix: "" }
keys:
  - { id: all, key: "${keys.all}", namespaces: ["*"] }
  - { id: some, key: "${keys.some}", namespaces: [bench, alpha, gamma], tools: { deny: ["gamma__sample", "progress"] } }
`,
    { edges: 2 },
  );
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await Promise.all([alpha.stop(), beta.stop(), secret.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

async function connect(
  server: string,
  key: string,
  options: { edge?: number; sampling?: boolean } = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client(
    { name: 'virtual-test', version: '1.0.0' },
    { capabilities: options.sampling ? { sampling: {} } : {} },
  );
  const transport = new StreamableHTTPClientTransport(new URL(url(server, options.edge)), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

/** Every page of the tools list, and how many pages it took. */
async function allTools(client: Client): Promise<{ tools: Tool[]; pages: number }> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    tools.push(...page.tools);
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== undefined && pages < 50);
  return { tools, pages };
}

describe('a virtual server over three members of the three backend kinds', () => {
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  beforeAll(async () => {
    ({ client, transport } = await connect('bench', keys.all, { sampling: true }));
    client.setRequestHandler(CreateMessageRequestSchema, (request) => ({
      role: 'assistant',
      model: 'test-model',
      content: {
        type: 'text',
        text: `answer to ${(request.params.messages[0].content as { text: string }).text}`,
      },
    }));
  });

  afterAll(async () => {
    await client?.close();
  });

  it('answers initialize with the members merged, their instructions labelled by member', () => {
    expect(client.getServerVersion()?.name).toBe('bench');
    const capabilities = client.getServerCapabilities();
    expect(capabilities?.tools).toEqual({ listChanged: true });
    expect(capabilities?.resources).toBeDefined();
    expect(capabilities?.prompts).toBeDefined();
    const instructions = client.getInstructions() ?? '';
    for (const member of ['alpha', 'beta', 'gamma'])
      expect(instructions).toContain(
        `## ${member} (tools and prompts named ${member}__…)\nUse ${member} for`,
      );
  });

  it('lists every member’s tools, prefixed, filtered and overridden, paging through all members', async () => {
    const { tools, pages } = await allTools(client);
    const names = tools.map((tool) => tool.name);
    // gamma pages two at a time: the cursor carries on through its pages alone.
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        'shout',
        'alpha__alpha_only',
        'beta__echo',
        'beta__beta_only',
        'gamma__echo',
        'gamma__sample',
        'secret__echo',
      ]),
    );
    // Renamed away, denied by the server, denied by the member namespace's own filter.
    for (const hidden of ['alpha__echo', 'beta__grow', 'gamma__gamma_only'])
      expect(names).not.toContain(hidden);
    expect(tools.find((tool) => tool.name === 'shout')?.description).toBe('Shout it back');
    expect(tools.find((tool) => tool.name === 'beta__echo')?.description).toBe('echo of beta');
  });

  it('routes calls to the owning member by the backend’s own name', async () => {
    expect(textOf(await client.callTool({ name: 'shout', arguments: { text: 'hi' } }))).toBe(
      'alpha ran echo: hi',
    );
    expect(textOf(await client.callTool({ name: 'beta__echo', arguments: { text: 'b' } }))).toBe(
      'beta ran echo: b',
    );
    expect(textOf(await client.callTool({ name: 'gamma__echo', arguments: { text: 'g' } }))).toBe(
      'gamma ran echo: g',
    );
  });

  it('never runs a tool that is hidden, whichever rule or name hides it', async () => {
    const before = { alpha: alpha.ran.length, beta: beta.ran.length };
    for (const name of ['alpha__echo', 'beta__grow', 'gamma__gamma_only', 'nobody__echo', 'echo']) {
      await expect(client.callTool({ name, arguments: {} })).rejects.toThrow(
        `Tool not found: ${name}`,
      );
    }
    expect(alpha.ran.length).toBe(before.alpha);
    expect(beta.ran.slice(before.beta)).not.toContain('grow');
    expect(readFileSync(gammaLog, 'utf8')).not.toContain('gamma_only');
  });

  it('passes progress through from the member to the client', async () => {
    const progress: number[] = [];
    const result = await client.callTool({ name: 'gamma__progress', arguments: {} }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(textOf(result)).toBe('gamma progressed');
    expect(progress).toEqual([1, 2, 3]);
  });

  it('routes a member’s sampling request to the client and the answer back to that member', async () => {
    const [b, a] = await Promise.all([
      client.callTool({ name: 'beta__sample', arguments: {} }),
      client.callTool({ name: 'alpha__sample', arguments: {} }),
    ]);
    expect(textOf(b)).toBe('beta sampled: answer to from beta');
    expect(textOf(a)).toBe('alpha sampled: answer to from alpha');
  });

  it('passes a member’s list_changed to the client, and lists the new tool', async () => {
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    await client.callTool({ name: 'alpha__grow', arguments: {} });
    await eventually(() => changed > 0, 5_000, 'list_changed to reach the client');
    const { tools } = await allTools(client);
    expect(tools.some((tool) => tool.name.startsWith('alpha__grown_'))).toBe(true);
  });

  it('merges resources and prompts, and routes reads and gets to their member', async () => {
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toEqual(
      expect.arrayContaining(['mem://alpha/readme', 'mem://beta/readme', 'mem://gamma/readme']),
    );
    const read = await client.readResource({ uri: 'mem://beta/readme' });
    expect(read.contents[0]).toMatchObject({ text: 'readme of beta' });
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(
      expect.arrayContaining(['alpha__greet', 'beta__greet', 'gamma__greet']),
    );
    const prompt = await client.getPrompt({ name: 'gamma__greet' });
    expect(prompt.messages[0].content).toMatchObject({ text: 'hello from gamma' });
  });

  it('records calls with the server, the member namespace, the backend name and the client’s name', async () => {
    await client.callTool({ name: 'shout', arguments: { text: 'x' } });
    await gateway.flush();
    const call = gateway.events.findLast(
      (e) =>
        e.method === 'tools/call' &&
        e.direction === 'client_to_server' &&
        e.client_tool === 'shout',
    );
    expect(call).toMatchObject({
      server: 'bench',
      namespace: 'alpha',
      tool: 'echo',
      client_tool: 'shout',
      transport: 'streamable',
      outcome: 'ok',
    });
    // A call routed to a stdio member is recorded with that member's backend kind.
    await client.callTool({ name: 'gamma__echo', arguments: { text: 'y' } });
    await gateway.flush();
    const stdioCall = gateway.events.findLast(
      (e) =>
        e.method === 'tools/call' && e.direction === 'client_to_server' && e.namespace === 'gamma',
    );
    expect(stdioCall).toMatchObject({ server: 'bench', tool: 'echo', transport: 'stdio' });
    // The first page of a list holds every member's first page: the tools as the client sees them.
    const listed = gateway.events.filter(
      (e) =>
        e.method === 'tools/list' && e.direction === 'server_to_client' && e.server === 'bench',
    );
    const shout = listed.flatMap((e) => e.tools_listed ?? []).find((t) => t.tool === 'shout');
    expect(shout?.tokens).toBeGreaterThan(0);
    expect(listed.every((e) => e.namespace === 'bench')).toBe(true);
  });

  it('serves the session from another edge (forwarded to the edge that holds it)', async () => {
    const other = new Client({ name: 'virtual-test', version: '1.0.0' });
    const second = new StreamableHTTPClientTransport(new URL(url('bench', 1)), {
      requestInit: { headers: { Authorization: `Bearer ${keys.all}` } },
      sessionId: transport.sessionId,
    });
    // The session is initialized already: the client only needs the transport's session id.
    await second.start();
    const answer = new Promise<unknown>((resolve) => {
      second.onmessage = (message) => {
        if ('id' in message && message.id === 77) resolve(message);
      };
    });
    await second.send({
      jsonrpc: '2.0',
      id: 77,
      method: 'tools/call',
      params: { name: 'beta__echo', arguments: { text: 'via edge 1' } },
    });
    expect(await answer).toMatchObject({
      result: { content: [{ type: 'text', text: 'beta ran echo: via edge 1' }] },
    });
    await second.close();
    void other;
  });
});

describe('a caller sees only the members and tools it may use', () => {
  it('leaves out members outside its namespaces and tools outside its scope, on every name', async () => {
    const { client } = await connect('bench', keys.some);
    try {
      const names = (await allTools(client)).tools.map((tool) => tool.name);
      expect(names).toEqual(expect.arrayContaining(['shout', 'gamma__echo']));
      expect(names.some((name) => name.startsWith('beta__') || name.startsWith('secret__'))).toBe(
        false,
      );
      // Its scope denies gamma__sample (the client's name) and `progress` (the backend's).
      for (const hidden of ['gamma__sample', 'gamma__progress', 'alpha__progress'])
        expect(names).not.toContain(hidden);
      for (const name of ['beta__echo', 'secret__echo', 'gamma__sample', 'alpha__progress'])
        await expect(client.callTool({ name, arguments: {} })).rejects.toThrow('Tool not found');
    } finally {
      await client.close();
    }
  });

  it('refuses a key that may not use the server itself', async () => {
    const answer = await fetch(url('flat'), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${keys.some}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(answer.status).toBe(403);
  });
});

describe('a one-member server with prefix ""', () => {
  it('lists and calls as the namespace itself does', async () => {
    const flat = await connect('flat', keys.all);
    const direct = await connect('alpha', keys.all);
    try {
      const names = async (c: Client) =>
        (await allTools(c)).tools.map((t) => ({ name: t.name, description: t.description }));
      expect(await names(flat.client)).toEqual(await names(direct.client));
      expect(textOf(await flat.client.callTool({ name: 'echo', arguments: { text: 'f' } }))).toBe(
        'alpha ran echo: f',
      );
    } finally {
      await flat.client.close();
      await direct.client.close();
    }
  });
});

describe('members that go down', () => {
  it('leaves a member that is down out of lists, answers its calls with an upstream error, and takes it back when it returns', async () => {
    const { client } = await connect('bench', keys.all);
    try {
      alpha.down();
      const names = (await allTools(client)).tools.map((tool) => tool.name);
      expect(names.some((name) => name.startsWith('alpha__') || name === 'shout')).toBe(false);
      expect(names).toContain('beta__echo');
      await expect(client.callTool({ name: 'shout', arguments: {} })).rejects.toThrow(
        /Backend unavailable/,
      );
      expect(textOf(await client.callTool({ name: 'beta__echo', arguments: { text: 'ok' } }))).toBe(
        'beta ran echo: ok',
      );
      alpha.up();
      await eventually(
        async () =>
          textOf(
            await client.callTool({ name: 'shout', arguments: { text: 'back' } }).catch(() => ({})),
          ) === 'alpha ran echo: back',
        10_000,
        'alpha to come back',
      );
      const metrics = await (
        await fetch(`http://127.0.0.1:${gateway.edges[0].port}/metrics`)
      ).text();
      expect(metrics).toMatch(
        /mcp_gateway_virtual_member_unavailable_total\{server="bench",namespace="alpha"\} [1-9]/,
      );
    } finally {
      await client.close();
    }
  });

  it('a stdio member that dies mid-session fails its call, and a new child serves the next', async () => {
    const { client } = await connect('bench', keys.all);
    try {
      await expect(client.callTool({ name: 'gamma__crash', arguments: {} })).resolves.toBeDefined();
      await eventually(
        async () =>
          textOf(
            await client
              .callTool({ name: 'gamma__echo', arguments: { text: 'again' } })
              .catch(() => ({})),
          ) === 'gamma ran echo: again',
        10_000,
        'a new gamma child',
      );
    } finally {
      await client.close();
    }
  });

  it('ends every member session with the client’s DELETE', async () => {
    const before = alpha.sessions;
    const { client, transport } = await connect('bench', keys.all);
    await client.callTool({ name: 'shout', arguments: { text: 'x' } });
    expect(alpha.sessions).toBe(before + 1);
    await transport.terminateSession();
    await client.close();
    await eventually(() => alpha.sessions === before, 5_000, 'the member session to end');
  });
});

describe('a call sent as a notification', () => {
  it('is dropped instead of told to every member (past the filter of one that hides it)', async () => {
    // pair: no prefix; `echo` is hidden on hush (alpha's backend) and allowed on secret. A call
    // without an id has no owner: forwarded to all, it would reach hush's backend.
    const { client, transport } = await connect('pair', keys.all);
    try {
      await client.listTools(); // both members connected
      const sent = alpha.received.length;
      await transport.send({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'echo' } });
      await transport.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
      const arrived = () => alpha.received.slice(sent) as Array<{ method?: string }>;
      await eventually(
        () => arrived().some((m) => m.method === 'notifications/roots/list_changed'),
        5_000,
        'the real notification to reach every member',
      );
      expect(arrived().filter((m) => m.method === 'tools/call')).toEqual([]);
    } finally {
      await client.close();
    }
  });
});

describe('a member removed from the server, or from the key, on what was open before', () => {
  // SPEC §3: namespace changes and revocations apply to new requests, whichever session or
  // pooled backend connection they come on. Each edit is made after a 2025 session and a
  // 2026-07-28 pooled connection of the key reached every member, then undone.
  const alice = `alice-${randomUUID()}`;
  const configFile = join(dir, 'edited.yaml');
  const config = (members: string, namespaces: string) => `
namespaces:
  alpha: { upstream: { url: "${alpha.url}/mcp" } }
  beta: { upstream: { url: "${beta.url}/sse", transport: sse } }
  secret: { upstream: { url: "${secret.url}/mcp" } }
servers:
  work: { namespaces: [${members}] }
keys:
  - { id: alice, key: "${alice}", namespaces: [${namespaces}] }
`;
  const everything = () => config('alpha, beta, secret', 'work, alpha, beta, secret');
  let edited: InProcessGateway;
  const work = () => `http://127.0.0.1:${edited.edges[0].port}/mcp/work`;
  let nextId = 1;

  beforeAll(async () => {
    edited = await startInProcessGateway(everything(), { configFile });
  });

  afterAll(async () => {
    await edited?.stop();
  });

  function apply(yaml: string): void {
    writeFileSync(configFile, yaml);
    expect(edited.config.reload()).toBe(true);
  }

  /** What a 2025 session reaches of secret, by every kind of request. */
  async function sessionReaches(client: Client): Promise<Record<string, boolean>> {
    const ok = (p: Promise<unknown>) =>
      p.then(
        () => true,
        () => false,
      );
    return {
      tools: (await client.listTools()).tools.some((t) => t.name === 'secret__echo'),
      call: await ok(client.callTool({ name: 'secret__echo', arguments: { text: 's' } })),
      prompts: (await client.listPrompts()).prompts.some((p) => p.name === 'secret__greet'),
      get: await ok(client.getPrompt({ name: 'secret__greet' })),
      resources: (await client.listResources()).resources.some((r) =>
        r.uri.startsWith('mem://secret/'),
      ),
      read: await ok(client.readResource({ uri: 'mem://secret/readme' })),
      complete: (
        await client.complete({
          ref: { type: 'ref/prompt', name: 'secret__greet' },
          argument: { name: 'x', value: 'y' },
        })
      ).completion.values.some((v) => v.startsWith('secret')),
    };
  }

  /** The same, by 2026-07-28 stateless requests of the key (served on its pooled connection). */
  async function statelessReaches(): Promise<Record<string, boolean>> {
    const ask = async (method: string, params: Record<string, unknown>) => {
      const id = nextId++;
      const answer = await postModern(work(), alice, id, method, params, {});
      const text = await answer.text();
      const messages = text.trimStart().startsWith('{')
        ? [JSON.parse(text) as Message]
        : sseMessages(text);
      return (messages.find((m) => m.id === id)?.result ?? {}) as Record<string, unknown>;
    };
    const names = (result: Record<string, unknown>, field: string, key: string) =>
      ((result[field] ?? []) as Array<Record<string, string>>).map((item) => item[key]);
    const discovered = await ask('server/discover', {});
    return {
      discover: JSON.stringify(discovered.instructions ?? '').includes('## secret'),
      tools: names(await ask('tools/list', {}), 'tools', 'name').includes('secret__echo'),
      call:
        (await ask('tools/call', { name: 'secret__echo', arguments: { text: 's' } })).content !==
        undefined,
      prompts: names(await ask('prompts/list', {}), 'prompts', 'name').includes('secret__greet'),
      get: (await ask('prompts/get', { name: 'secret__greet' })).messages !== undefined,
      resources: names(await ask('resources/list', {}), 'resources', 'uri').some((uri) =>
        uri.startsWith('mem://secret/'),
      ),
      read: (await ask('resources/read', { uri: 'mem://secret/readme' })).contents !== undefined,
      complete: JSON.stringify(
        await ask('completion/complete', {
          ref: { type: 'ref/prompt', name: 'secret__greet' },
          argument: { name: 'x', value: 'y' },
        }),
      ).includes('secret completes'),
    };
  }

  const all = (value: boolean) => (reach: Record<string, boolean>) =>
    Object.fromEntries(Object.keys(reach).map((kind) => [kind, value]));

  it.each([
    ['the server no longer lists it', 'alpha, beta', 'work, alpha, beta, secret'],
    ['the key may no longer use it', 'alpha, beta, secret', 'work, alpha, beta'],
  ])(
    '%s: neither era reaches it on any request kind, however opened before',
    async (_, members, namespaces) => {
      apply(everything());
      const client = new Client({ name: 'virtual-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(work()), {
          requestInit: { headers: { Authorization: `Bearer ${alice}` } },
        }),
      );
      try {
        const before = {
          session: await sessionReaches(client),
          stateless: await statelessReaches(),
        };
        expect(before).toEqual({
          session: all(true)(before.session),
          stateless: all(true)(before.stateless),
        });
        const ran = secret.ran.length;
        apply(config(members, namespaces));
        const after = {
          session: await sessionReaches(client),
          stateless: await statelessReaches(),
        };
        expect(after).toEqual({
          session: all(false)(after.session),
          stateless: all(false)(after.stateless),
        });
        expect(secret.ran.length).toBe(ran);
        // The members it still has keep working on the same session.
        expect(
          textOf(await client.callTool({ name: 'alpha__echo', arguments: { text: 'a' } })),
        ).toBe('alpha ran echo: a');
      } finally {
        await client.close();
        apply(everything());
      }
    },
  );
});
