import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** An official SDK client connected through the gateway with an API key. */
export async function connectClient(
  url: string,
  key: string,
  name = 'e2e-client',
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name, version: '9.9.9' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

export async function summary(
  analyticsUrl: string,
  key: string,
  query = '',
): Promise<Record<string, number>> {
  const response = await fetch(`${analyticsUrl}/api/v1/summary${query}`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  if (!response.ok)
    throw new Error(`summary answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Record<string, number>;
}

/** The text of a tool result's content, its parts joined. */
export function textOf(result: unknown): string {
  return ((result as { content?: Array<{ text?: string }> }).content ?? [])
    .map((c) => c.text ?? '')
    .join('');
}
