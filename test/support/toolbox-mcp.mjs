// A plain MCP server (the official SDK) whose tools have the names permission rules are written
// against: reading, writing, deleting and a prefixed search. Every tool it runs is reported to
// `onRun`, so a test can prove that a tool the gateway hides never ran. Used in process over
// Streamable HTTP (toolbox-backend.ts) and as a stdio child (toolbox-stdio.mjs).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

export const TOOLBOX_TOOLS = ['read_note', 'write_note', 'delete_note', 'search__query', 'echo'];

export function createToolbox(onRun) {
  const server = new McpServer({ name: 'toolbox', version: '1.0.0' });
  for (const name of TOOLBOX_TOOLS) {
    server.registerTool(name, { description: `the ${name} tool`, inputSchema: {} }, () => {
      onRun(name);
      return { content: [{ type: 'text', text: `ran ${name}` }] };
    });
  }
  return server;
}
