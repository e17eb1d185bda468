import { EXIT_OK, EXIT_USAGE, runCli, USAGE } from './cli.js';

// Usage errors are answered before any request: no gateway is needed (the int test of keys at
// run time drives the CLI against a running one).

async function run(argv: string[], env: Record<string, string> = { MCP_GATEWAY_ADMIN_KEY: 'k' }) {
  let out = '';
  let err = '';
  const code = await runCli(argv, env, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('mcp-gateway CLI usage', () => {
  it('prints the help on --help, exit 0, and says the admin key is never a flag', async () => {
    const help = await run(['--help']);
    expect(help).toEqual({ code: EXIT_OK, out: USAGE, err: '' });
    expect(USAGE).toContain('MCP_GATEWAY_ADMIN_KEY');
    expect(USAGE).toMatch(/Never a flag: it stays out of shell\s+history/);
  });

  it.each<[string, string[], Record<string, string> | undefined, string]>([
    ['no command', [], undefined, ''],
    ['an unknown command', ['users', 'list'], undefined, 'unknown command "users"'],
    ['keys without a command', ['keys'], undefined, 'keys needs a command'],
    ['an unknown keys command', ['keys', 'rotate'], undefined, 'unknown command "keys rotate"'],
    ['create without --user', ['keys', 'create'], undefined, 'keys create needs --user'],
    ['an unknown option', ['keys', 'list', '--all'], undefined, "Unknown option '--all'"],
    [
      'the admin key as a flag',
      ['keys', 'list', '--key', 'k'],
      undefined,
      "Unknown option '--key'",
    ],
    [
      'an option of create on list',
      ['keys', 'list', '--user', 'u'],
      undefined,
      '--user is an option of "keys create"',
    ],
    [
      'a malformed --rate',
      ['keys', 'create', '--user', 'u', '--rate', '100'],
      undefined,
      '--rate must be N/DURATION',
    ],
    ['revoke without an id', ['keys', 'revoke'], undefined, 'exactly one key id'],
    ['revoke with two ids', ['keys', 'revoke', 'a', 'b'], undefined, 'exactly one key id'],
    [
      'revoke with a secret where the id belongs (not sent, not echoed)',
      ['keys', 'revoke', 'mcpgw_Q2hlY2tTZWNyZXRTaGFwZWRMaWtlQUtleTAxMjM0NTY3OA'],
      undefined,
      'that is a key’s secret (not sent)',
    ],
    ['no admin key', ['keys', 'list'], {}, 'set MCP_GATEWAY_ADMIN_KEY'],
    [
      'a URL that is not http',
      ['keys', 'list', '--url', 'ftp://x'],
      undefined,
      'invalid operator URL',
    ],
  ])('exits 2 on %s, with the usage', async (_name, argv, env, message) => {
    const result = await run(argv, env);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.out).toBe('');
    expect(result.err).toContain(message);
    expect(result.err).toContain('Usage: mcp-gateway keys');
    expect(result.err).not.toContain('mcpgw_Q2hlY2tTZWNyZXRTaGFwZWRMaWtlQUtleTAxMjM0NTY3OA');
  });
});
