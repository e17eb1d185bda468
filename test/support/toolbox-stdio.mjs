// The toolbox MCP server (toolbox-mcp.mjs) over stdio. Each tool it runs is appended to the file
// named by TOOLBOX_LOG, one name a line, so a test can prove what ran.
import { appendFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createToolbox } from './toolbox-mcp.mjs';

const log = process.env.TOOLBOX_LOG;
await createToolbox((name) => {
  if (log) appendFileSync(log, `${name}\n`);
}).connect(new StdioServerTransport());
