// A member for virtual-server tests: a plain MCP server (the official SDK's low-level Server)
// whose tools page by `pageSize`, overlap by name with other members (`echo`), and exercise what
// a virtual server routes: progress, sampling (a request to the client), a tool that adds a tool
// (list_changed), a resource, a prompt and completions. Served over Streamable HTTP (member-backend.ts), legacy
// SSE (member-backend.ts) and stdio (member-stdio.mjs).
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

/**
 * @param {{ name: string, pageSize?: number, tools?: number, crashable?: boolean, onRun?: (tool: string) => void }} options
 *   crashable: a `crash` tool ends the process (a stdio member only)
 */
export function createMember({
  name,
  pageSize = 100,
  tools: extra = 0,
  crashable = false,
  onRun = () => {},
}) {
  const server = new Server(
    { name, version: '1.0.0' },
    {
      capabilities: { tools: { listChanged: true }, resources: {}, prompts: {}, completions: {} },
      instructions: `Use ${name} for ${name} things.`,
    },
  );
  const tools = ['echo', `${name}_only`, 'progress', 'sample', 'grow', 'slow'];
  if (crashable) tools.push('crash');
  for (let i = 0; i < extra; i++) tools.push(`extra_${i}`);
  const definition = (tool) => ({
    name: tool,
    description: `${tool} of ${name}`,
    inputSchema: {
      type: 'object',
      properties: { text: { type: 'string' }, times: { type: 'number' } },
    },
  });
  const page = (items, cursor) => {
    const start = cursor === undefined ? 0 : Number(cursor);
    const next = start + pageSize;
    return {
      items: items.slice(start, next),
      ...(next < items.length && { nextCursor: String(next) }),
    };
  };
  server.setRequestHandler(ListToolsRequestSchema, (request) => {
    const { items, nextCursor } = page(tools, request.params?.cursor);
    return { tools: items.map(definition), ...(nextCursor && { nextCursor }) };
  });
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const tool = request.params.name;
    if (!tools.includes(tool))
      return { isError: true, content: [{ type: 'text', text: `no tool ${tool}` }] };
    onRun(tool);
    const text = (value) => ({ content: [{ type: 'text', text: value }] });
    switch (tool) {
      case 'progress': {
        const token = request.params._meta?.progressToken;
        for (let i = 1; i <= 3; i++) {
          if (token !== undefined)
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress: i, total: 3 },
            });
        }
        return text(`${name} progressed`);
      }
      case 'sample': {
        // `times`: that many sampling requests at once (a server that asks several things together).
        const times = Number(request.params.arguments?.times ?? 1);
        const answers = await Promise.all(
          Array.from({ length: times }, (_, i) =>
            extra.sendRequest(
              {
                method: 'sampling/createMessage',
                params: {
                  messages: [
                    {
                      role: 'user',
                      content: { type: 'text', text: `from ${name}${i ? ` ${i}` : ''}` },
                    },
                  ],
                  maxTokens: 10,
                },
              },
              CreateMessageResultSchema,
            ),
          ),
        );
        return text(`${name} sampled: ${answers.map((a) => a.content.text).join(', ')}`);
      }
      case 'slow': {
        // `ms`: how long the call takes (a call still waiting while something else happens).
        await new Promise((resolve) =>
          setTimeout(resolve, Number(request.params.arguments?.ms ?? 200)),
        );
        return text(`${name} slept`);
      }
      case 'crash':
        setTimeout(() => process.exit(1), 5);
        return text(`${name} crashes`);
      case 'grow':
        tools.push(`grown_${tools.length}`);
        await server.sendToolListChanged();
        return text(`${name} grew`);
      default:
        return text(`${name} ran ${tool}: ${request.params.arguments?.text ?? ''}`);
    }
  });
  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: [{ uri: `mem://${name}/readme`, name: `${name} readme` }],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, (request) => ({
    contents: [{ uri: request.params.uri, text: `readme of ${name}` }],
  }));
  server.setRequestHandler(ListPromptsRequestSchema, () => ({
    prompts: [{ name: 'greet', description: `greeting of ${name}` }],
  }));
  // `ask`: the prompt first asks the client (sampling), as a prompt that needs the user's input.
  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    let text = `hello from ${name}`;
    if (request.params.arguments?.ask) {
      const answer = await extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: {
            messages: [{ role: 'user', content: { type: 'text', text: 'prompt asks' } }],
            maxTokens: 10,
          },
        },
        CreateMessageResultSchema,
      );
      text += ` (${answer.content.text})`;
    }
    return { messages: [{ role: 'user', content: { type: 'text', text } }] };
  });
  server.setRequestHandler(CompleteRequestSchema, (request) => ({
    completion: { values: [`${name} completes ${request.params.argument.value}`], hasMore: false },
  }));
  return server;
}
