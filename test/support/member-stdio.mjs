// A virtual-server member (member-mcp.mjs) over stdio: MEMBER_NAME names it, MEMBER_PAGE_SIZE
// pages its tools, MEMBER_TOOLS adds tools, MEMBER_CRASHABLE=1 a `crash` tool; each tool it runs is appended to MEMBER_LOG.
import { appendFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMember } from './member-mcp.mjs';

const log = process.env.MEMBER_LOG;
await createMember({
  name: process.env.MEMBER_NAME ?? 'stdio',
  pageSize: Number(process.env.MEMBER_PAGE_SIZE ?? 100),
  tools: Number(process.env.MEMBER_TOOLS ?? 0),
  crashable: process.env.MEMBER_CRASHABLE === '1',
  onRun: (tool) => {
    if (log) appendFileSync(log, `${tool}\n`);
  },
}).connect(new StdioServerTransport());
