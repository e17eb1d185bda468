import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * `mcp-gateway keys create|list|revoke`: the admin API of keys at run time (SPEC §5 v2) from a
 * shell. A thin client of the operator port's HTTP API, with no dependency but Node: the
 * gateway validates and decides, this prints. The admin key comes from the environment only,
 * never a flag, so it stays out of shell history and process lists.
 */

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Exit codes: 0 done, 1 the gateway refused or could not be reached, 2 a usage error. */
export const EXIT_OK = 0;
export const EXIT_API_ERROR = 1;
export const EXIT_USAGE = 2;

const DEFAULT_URL = 'http://localhost:8081';
/** How key secrets begin (libs/common SECRET_PREFIX; the CLI depends on nothing but Node). */
const SECRET_PREFIX = 'mcpgw_';
const TIMEOUT_MS = 15_000;

export const USAGE = `Usage: mcp-gateway keys <command> [options]

Manage API keys at run time through the gateway's admin API (operator port).

Commands:
  keys create --user USER [options]   create a key and print its secret (shown once)
  keys list                           list keys: from the config file (read-only) and created ones
  keys revoke ID                      revoke a created key (every edge refuses it within 2 s)

Options of create:
  --id ID              key id (default: generated)
  --tenant TENANT      tenant of the key (a tenant admin's keys are always in its tenant)
  --role ROLE          a role of the config file (repeatable)
  --namespace NS       a namespace, or '*' for all (repeatable)
  --allow GLOB         tools the key may use (repeatable; default: all)
  --deny GLOB          tools the key may not use (repeatable)
  --rate N/DURATION    rate limit, e.g. 100/1m
  --expires ISO        expiry, an ISO 8601 date-time in the future

Common options:
  --url URL            operator URL (default: $MCP_GATEWAY_URL, else ${DEFAULT_URL})
  --json               print the API's JSON answer
  -h, --help           this help

Environment:
  MCP_GATEWAY_ADMIN_KEY  the admin key (required). Never a flag: it stays out of shell
                         history and process lists.
  MCP_GATEWAY_URL        the operator URL, as --url.

Exit codes: 0 done, 1 the gateway refused (its message is printed) or is unreachable, 2 usage.
`;

const OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  user: { type: 'string' },
  id: { type: 'string' },
  tenant: { type: 'string' },
  role: { type: 'string', multiple: true },
  namespace: { type: 'string', multiple: true },
  allow: { type: 'string', multiple: true },
  deny: { type: 'string', multiple: true },
  rate: { type: 'string' },
  expires: { type: 'string' },
} satisfies ParseArgsConfig['options'];

const CREATE_ONLY = [
  'user',
  'id',
  'tenant',
  'role',
  'namespace',
  'allow',
  'deny',
  'rate',
  'expires',
] as const;

class UsageError extends Error {}
class ApiError extends Error {}

interface KeyListing {
  id: string;
  source: string;
  user: string | null;
  tenant: string | null;
  roles: string[];
  namespaces: string[];
  expires_at: string | null;
  admin: boolean;
  created_by: string | null;
}

/** Runs one command; resolves to the exit code. Never throws, never exits the process. */
export async function runCli(
  argv: string[],
  env: Record<string, string | undefined>,
  io: CliIo,
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    if (values.help || positionals.length === 0) {
      if (values.help) io.out(USAGE);
      else io.err(USAGE);
      return values.help ? EXIT_OK : EXIT_USAGE;
    }
    const [group, command, ...rest] = positionals;
    if (group !== 'keys') throw new UsageError(`unknown command "${group}"`);
    if (command !== 'create') {
      const misplaced = CREATE_ONLY.find((name) => values[name] !== undefined);
      if (misplaced) throw new UsageError(`--${misplaced} is an option of "keys create"`);
    }
    const api = new AdminApi(values.url ?? env.MCP_GATEWAY_URL ?? DEFAULT_URL, env);
    switch (command) {
      case 'create': {
        if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
        if (values.user === undefined) throw new UsageError('keys create needs --user');
        const body = createBody(values);
        const created = (await api.call('POST', '', body)) as { id: string; key: string };
        if (values.json) io.out(`${JSON.stringify(created, null, 2)}\n`);
        else
          io.out(
            `Created key ${created.id}.\n\n  ${created.key}\n\n` +
              'This is the only time the secret is shown: the gateway keeps only its hash.\n' +
              'Store it now (a secret manager, not a shell history).\n',
          );
        return EXIT_OK;
      }
      case 'list': {
        if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
        const keys = (await api.call('GET', '')) as KeyListing[];
        io.out(values.json ? `${JSON.stringify(keys, null, 2)}\n` : table(keys));
        return EXIT_OK;
      }
      case 'revoke': {
        if (rest.length !== 1) throw new UsageError('keys revoke needs exactly one key id');
        const id = rest[0];
        if (id.toLowerCase().includes(SECRET_PREFIX)) {
          throw new UsageError(
            'keys revoke needs a key id, and that is a key’s secret (not sent): see keys list',
          );
        }
        await api.call('DELETE', `/${encodeURIComponent(id)}`);
        io.out(values.json ? `${JSON.stringify({ id, revoked: true })}\n` : `Revoked key ${id}.\n`);
        return EXIT_OK;
      }
      case undefined:
        throw new UsageError('keys needs a command: create, list or revoke');
      default:
        throw new UsageError(`unknown command "keys ${command}"`);
    }
  } catch (error) {
    if (error instanceof ApiError) {
      io.err(`error: ${printable(error.message)}\n`);
      return EXIT_API_ERROR;
    }
    // parseArgs reports unknown options and missing values as TypeErrors with a code.
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.err(`error: ${(error as Error).message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    io.err(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_API_ERROR;
  }
}

function createBody(values: {
  user?: string;
  id?: string;
  tenant?: string;
  role?: string[];
  namespace?: string[];
  allow?: string[];
  deny?: string[];
  rate?: string;
  expires?: string;
}): Record<string, unknown> {
  const body: Record<string, unknown> = { user: values.user };
  if (values.id !== undefined) body.id = values.id;
  if (values.tenant !== undefined) body.tenant = values.tenant;
  if (values.role) body.roles = values.role;
  if (values.namespace) body.namespaces = values.namespace;
  if (values.allow || values.deny) {
    body.tools = {
      ...(values.allow && { allow: values.allow }),
      ...(values.deny && { deny: values.deny }),
    };
  }
  if (values.rate !== undefined) {
    const match = /^(\d+)\/(\S+)$/.exec(values.rate);
    if (!match)
      throw new UsageError(`--rate must be N/DURATION, e.g. 100/1m (got "${values.rate}")`);
    body.rate_limit = { requests: Number(match[1]), per: match[2] };
  }
  if (values.expires !== undefined) body.expires_at = values.expires;
  return body;
}

class AdminApi {
  private readonly base: string;
  private readonly key: string;

  constructor(url: string, env: Record<string, string | undefined>) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      throw new UsageError(`invalid operator URL "${url}"`);
    }
    const key = env.MCP_GATEWAY_ADMIN_KEY?.trim();
    if (!key) throw new UsageError('set MCP_GATEWAY_ADMIN_KEY to an admin key');
    this.base = `${url.replace(/\/+$/, '')}/api/v1/admin/keys`;
    this.key = key;
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = `${this.base}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          Authorization: `Bearer ${this.key}`,
          'User-Agent': 'mcp-gateway-cli',
          ...(body !== undefined && { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      const reason = error instanceof Error ? (error.cause ?? error) : error;
      throw new ApiError(
        `cannot reach the gateway at ${new URL(url).origin}: ${reason instanceof Error ? reason.message : String(reason)}`,
      );
    }
    const text = await response.text();
    let answer: unknown;
    try {
      answer = text === '' ? undefined : JSON.parse(text);
    } catch {
      answer = undefined;
    }
    if (!response.ok) {
      const error = (answer as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(
        error?.message
          ? `${error.message} (${error.code ?? 'error'}, HTTP ${response.status})`
          : `the gateway answered HTTP ${response.status}`,
      );
    }
    return answer;
  }
}

function table(keys: KeyListing[]): string {
  if (keys.length === 0) return 'No keys.\n';
  const rows = [
    ['ID', 'SOURCE', 'USER', 'TENANT', 'ADMIN', 'ROLES', 'NAMESPACES', 'EXPIRES', 'CREATED BY'],
    ...keys.map((key) =>
      [
        key.id,
        key.source,
        key.user ?? '-',
        key.tenant ?? '-',
        key.admin ? 'yes' : 'no',
        key.roles.join(',') || '-',
        key.namespaces.join(',') || '-',
        key.expires_at ?? '-',
        key.created_by ?? '-',
      ].map(printable),
    ),
  ];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

/** Text from the gateway (key users, ids in messages) with control characters made visible: no terminal escapes. */
function printable(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex -- exactly what is removed
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}
