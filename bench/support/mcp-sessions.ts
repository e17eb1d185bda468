import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/**
 * The peer scenario's client: the official SDK client over Streamable HTTP, the same code for
 * every front, as an MCP host would use it. Timings are wall clock around whole SDK calls, so
 * they include the client's own work, the same for every front.
 */
export interface Target {
  url: string;
  headers: Record<string, string>;
}

export interface Session {
  client: Client;
  transport: StreamableHTTPClientTransport;
}

// ~1 KiB on the wire, as the HTTP-path scenarios send.
const ECHO = { name: 'echo', arguments: { message: 'a'.repeat(900) } };

/** connect(): initialize, then the initialized notification (the SDK then opens its GET stream). */
export async function openSession(target: Target): Promise<Session> {
  const client = new Client({ name: 'mcp-gateway-bench', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(target.url), {
    requestInit: { headers: target.headers },
  });
  await client.connect(transport);
  return { client, transport };
}

/** DELETE of the session (the front ends it and its child), then the client's close. */
export async function closeSession(session: Session): Promise<void> {
  try {
    await session.transport.terminateSession();
  } finally {
    await session.client.close();
  }
}

export async function closeAll(sessions: readonly Session[]): Promise<void> {
  await Promise.all(sessions.map((s) => closeSession(s).catch(() => undefined)));
}

export async function callEcho(session: Session): Promise<void> {
  const result = await session.client.callTool(ECHO);
  if (result.isError) throw new Error(`echo answered an error: ${JSON.stringify(result.content)}`);
}

/** `count` sessions, `concurrency` being opened at a time, each having answered one call. */
export async function openMany(
  target: Target,
  count: number,
  concurrency: number,
): Promise<Session[]> {
  const sessions: Session[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const session = await openSession(target);
      sessions.push(session);
      await callEcho(session);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } catch (error) {
    await closeAll(sessions);
    throw error;
  }
  return sessions;
}

export interface LoopResult {
  calls: number;
  errors: number;
  seconds: number;
  firstError?: string;
}

/** Every session calls echo back to back until `durationMs` has passed. */
export async function callLoop(
  sessions: readonly Session[],
  durationMs: number,
): Promise<LoopResult> {
  const start = performance.now();
  const end = start + durationMs;
  let calls = 0;
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(
    sessions.map(async (session) => {
      // A front that fails every call would spin: give the session up after 100 failures.
      let failures = 0;
      while (performance.now() < end && failures < 100) {
        try {
          await callEcho(session);
          calls++;
        } catch (error) {
          errors++;
          failures++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }),
  );
  return { calls, errors, seconds: (performance.now() - start) / 1000, firstError };
}

/** `count` sequential calls on one session, each timed (ms). */
export async function timedCalls(session: Session, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await callEcho(session);
    times.push(performance.now() - start);
  }
  return times;
}

/** What a host does to use a server once: connect (initialize), list tools, call, close (ms). */
export async function timedNewSession(target: Target): Promise<number> {
  const start = performance.now();
  const session = await openSession(target);
  try {
    await session.client.listTools();
    await callEcho(session);
  } finally {
    await closeSession(session);
  }
  return performance.now() - start;
}
