import type { Server } from '@modelcontextprotocol/sdk/server/index.js';

export declare function createMember(options: {
  name: string;
  pageSize?: number;
  tools?: number;
  crashable?: boolean;
  onRun?: (tool: string) => void;
}): Server;
