import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

export declare const TOOLBOX_TOOLS: string[];
export declare function createToolbox(onRun: (name: string) => void): McpServer;
