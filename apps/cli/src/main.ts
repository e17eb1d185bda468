#!/usr/bin/env node
// The `mcp-gateway` command (package.json `bin`): `npx mcp-gateway keys …`. See cli.ts.
import { runCli } from './cli.js';

process.exitCode = await runCli(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
