// The hostile MCP server over stdio (newline-delimited JSON-RPC). Every message it receives is
// appended to the file named by HOSTILE_LOG, so a test can prove what reached it.
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { hostileAnswers } from './hostile-mcp.mjs';

const log = process.env.HOSTILE_LOG;
createInterface({ input: process.stdin }).on('line', (line) => {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    return;
  }
  if (log) appendFileSync(log, `${JSON.stringify(message)}\n`);
  for (const answer of hostileAnswers(message) ?? [])
    process.stdout.write(`${JSON.stringify(answer)}\n`);
});
