import { eventually } from './processes.js';

/**
 * Raw MCP clients for tests that must send what SDK clients never would (batches with duplicate
 * ids, notifications of hidden tools, resumed streams) and see every byte the gateway answers.
 */

export type Message = Record<string, unknown>;

export interface Answer {
  status: number;
  /** The answer's content-type ('' when none). */
  type?: string;
  /** Every byte of the answer body, as text. */
  text: string;
  /** The JSON-RPC messages in it (a JSON body, or each SSE event's data). */
  messages: Message[];
}

/** The JSON-RPC messages of an SSE body (each event's data lines). */
export function sseMessages(text: string): Message[] {
  const messages: Message[] = [];
  for (const event of text.replace(/^\uFEFF/, '').split(/\r\n\r\n|\n\n|\r\r/)) {
    const data = event
      .split(/\r\n|\n|\r/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data.trim() === '') continue;
    try {
      messages.push(JSON.parse(data) as Message);
    } catch {
      // an endpoint event's URL, not JSON-RPC
    }
  }
  return messages;
}

async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let messages: Message[] = [];
  if (type.startsWith('text/event-stream')) messages = sseMessages(text);
  else if (text !== '' && type.startsWith('application/json')) {
    const value = JSON.parse(text) as Message | Message[];
    messages = Array.isArray(value) ? value : [value];
  }
  return { status: response.status, type, text, messages };
}

/** A Streamable HTTP client; `edges` in turn when more than one (a session across replicas). */
export class StreamableRawClient {
  sessionId?: string;
  private next = 0;

  constructor(
    private readonly edges: string[],
    private readonly namespace: string,
    private readonly key: string,
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      authorization: `Bearer ${this.key}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
      ...extra,
    };
  }

  /** initialize (on the first edge) and notifications/initialized. */
  async initialize(protocolVersion = '2025-03-26'): Promise<Answer> {
    const response = await fetch(this.url(0), {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    });
    this.sessionId = response.headers.get('mcp-session-id') ?? undefined;
    const answer = await answerOf(response);
    await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return answer;
  }

  async post(body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await fetch(this.url(), {
      method: 'POST',
      headers: this.headers(headers),
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return answerOf(response);
  }

  /** A GET stream, read until it ends or for at most `ms`. */
  async get(headers: Record<string, string> = {}, ms = 1_000): Promise<Answer> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    const response = await fetch(this.url(), {
      headers: this.headers({ accept: 'text/event-stream', ...headers }),
      signal: abort.signal,
    });
    let text = '';
    try {
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
        text += decoder.decode(chunk, { stream: true });
    } catch {
      // read for `ms`: the stream stays open
    } finally {
      clearTimeout(timer);
    }
    return { status: response.status, text, messages: sseMessages(text) };
  }

  private url(edge?: number): string {
    const index = edge ?? this.next++ % this.edges.length;
    return `${this.edges[index]}/mcp/${this.namespace}`;
  }
}

/** A legacy HTTP+SSE client: one stream for every answer, POSTs to its endpoint. */
export class LegacyRawClient {
  /** Every byte received on the stream so far. */
  text = '';
  /** The stream ended (the gateway closed it, or `close()`). */
  ended = false;
  private endpoint?: string;
  private readonly abort = new AbortController();

  constructor(
    private readonly edge: string,
    private readonly namespace: string,
    private readonly key: string,
  ) {}

  get messages(): Message[] {
    return sseMessages(this.text);
  }

  async open(): Promise<void> {
    const response = await fetch(`${this.edge}/mcp/${this.namespace}/sse`, {
      headers: { authorization: `Bearer ${this.key}`, accept: 'text/event-stream' },
      signal: this.abort.signal,
    });
    if (response.status !== 200) throw new Error(`legacy stream: HTTP ${response.status}`);
    void this.read(response);
    await eventually(
      () => /event: endpoint\ndata: (\S+)/.exec(this.text),
      5_000,
      'the endpoint event',
      10,
    );
    this.endpoint = /event: endpoint\ndata: (\S+)/.exec(this.text)![1];
  }

  private async read(response: Response): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
        this.text += decoder.decode(chunk, { stream: true });
    } catch {
      // closed
    }
    this.ended = true;
  }

  async post(
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string }> {
    const response = await fetch(new URL(this.endpoint!, this.edge), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.key}`,
        'content-type': 'application/json',
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  }

  /** Waits until the stream carried an answer for every id. */
  async answersTo(ids: Array<string | number>, ms = 5_000): Promise<Message[]> {
    return eventually(
      () => {
        const answers = this.messages.filter((m) => ids.includes(m.id as string | number));
        return answers.length >= ids.length ? answers : undefined;
      },
      ms,
      `answers to ${ids.join(', ')}`,
      10,
    );
  }

  async initialize(): Promise<void> {
    await this.open();
    await this.post({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2024-11-05',
        capabilities: {},
        clientInfo: { name: 'raw', version: '1' },
      },
    });
    await this.answersTo([0]);
    await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  close(): void {
    this.abort.abort();
  }
}

/**
 * A raw 2026-07-28 request to an MCP route: the mirrored headers (`Mcp-Method`, and `Mcp-Name`
 * for a named request) and the `_meta` envelope declaring `capabilities`.
 */
export function postModern(
  url: string,
  key: string,
  id: number,
  method: string,
  params: Record<string, unknown>,
  capabilities: Record<string, unknown> = {},
): Promise<Response> {
  const name = (params.name ?? params.uri) as string | undefined;
  return fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...(name !== undefined && { 'mcp-name': name }),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': capabilities,
        },
      },
    }),
  });
}
