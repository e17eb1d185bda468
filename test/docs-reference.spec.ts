import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AUTH_METHODS,
  ERROR_MAP,
  ErrorCode,
  EVENT_COLUMNS,
  gatewayConfigSchema,
  OUTCOMES,
  readRuntimeSettings,
} from '#common';
import * as openapi from '../apps/analytics/src/api/openapi.js';
import { traceOptionsFromEnv } from '../apps/edge/src/tracing/tracing.js';

// The reference docs (docs/reference/) checked against the code they describe, so that a config
// key, an endpoint, an error code, an event field, an environment variable or a metric cannot
// be added without a line in the docs. Each check reads what the code holds when the test runs
// (the zod schema, the OpenAPI document, the error table, the event columns), never a copy.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

const CONFIGURATION = 'docs/reference/configuration.md';
const HTTP = 'docs/reference/http.md';
const ANALYTICS = 'docs/reference/analytics-api.md';

/** Text outside fenced code blocks: a name in an example is no documentation of it. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');
}

/** Names the docs write as code: `name`. */
function codeSpans(markdown: string): Set<string> {
  return new Set([...prose(markdown).matchAll(/`([^`\n]+)`/g)].map((match) => match[1]));
}

/** Names no code span of `doc` is exactly. */
function undocumented(names: Iterable<string>, doc: string): string[] {
  const spans = codeSpans(read(doc));
  return [...new Set(names)].filter((name) => !spans.has(name)).sort();
}

/** Names no code span of `doc` holds as a word (a field in `{ requests, errors }` counts). */
function unmentioned(names: Iterable<string>, doc: string): string[] {
  const words = new Set([...codeSpans(read(doc))].flatMap((span) => span.match(/[\w$]+/g) ?? []));
  return [...new Set(names)].filter((name) => !words.has(name)).sort();
}

// ---- the config schema, walked ----

interface ZodNode {
  _zod: { def: ZodDef };
  safeParse(value: unknown): unknown;
}
interface ZodDef {
  type: string;
  shape?: Record<string, ZodNode>;
  innerType?: ZodNode;
  in?: ZodNode;
  valueType?: ZodNode;
  element?: ZodNode;
  options?: ZodNode[];
  left?: ZodNode;
  right?: ZodNode;
}

/** Schemas that wrap one other and add no key of their own. */
const WRAPPERS = new Set([
  'optional',
  'nullable',
  'default',
  'prefault',
  'nonoptional',
  'readonly',
  'catch',
]);
/** Inputs a transform reads itself: what it accepts is only seen by running it (probedPaths). */
const OPAQUE = new Set(['unknown', 'any']);

/**
 * Every key a config file may hold, as a path: `server.public_url`, `namespaces.<name>.tools.deny`
 * (`<name>` for a record's entries), `keys[].id` (`[]` for an array's elements).
 */
function configPaths(node: ZodNode, path: string): string[] {
  const def = node._zod.def;
  if (WRAPPERS.has(def.type)) return configPaths(def.innerType!, path);
  switch (def.type) {
    case 'object':
      return Object.entries(def.shape!).flatMap(([key, child]) => {
        const at = path ? `${path}.${key}` : key;
        return [at, ...configPaths(child, at)];
      });
    case 'record':
      return configPaths(def.valueType!, `${path}.<name>`);
    case 'array':
      return configPaths(def.element!, `${path}[]`);
    case 'union':
      return def.options!.flatMap((option) => configPaths(option, path));
    case 'intersection':
      return [...configPaths(def.left!, path), ...configPaths(def.right!, path)];
    case 'pipe':
      // What a file holds is the pipe's input; a transform of unknown input chooses its own shape.
      return OPAQUE.has(def.in!._zod.def.type)
        ? probedPaths(node, path)
        : configPaths(def.in!, path);
    default:
      return [];
  }
}

/**
 * The keys a schema reads from its input, found by parsing a recording stand-in whose every key
 * is absent: each key the schema reads is one it knows. A schema that picks a shape by the keys
 * present (`upstream`: `url` or `command`) is run again once per key it asks about, with that
 * key present.
 */
function probedPaths(node: ZodNode, path: string): string[] {
  const asked = new Set<string>();
  const seen = new Set<string>();
  node.safeParse(recorder(new Set(), asked, seen));
  for (const key of [...asked]) node.safeParse(recorder(new Set([key]), new Set(), seen));
  return [...seen].map((key) => `${path}.${key}`);
}

function recorder(present: ReadonlySet<string>, asked: Set<string>, seen: Set<string>): object {
  const own = (key: string | symbol): key is string =>
    typeof key === 'string' && !(key in Object.prototype);
  return new Proxy(
    {},
    {
      has: (_target, key) => {
        if (!own(key)) return false;
        asked.add(key);
        return present.has(key);
      },
      get: (_target, key) => {
        if (own(key)) seen.add(key);
        return undefined;
      },
    },
  );
}

/**
 * The environment variables a reader asks for. Some are read only when others are set (a
 * protocol once an endpoint is): each variable found is set in turn, alone, until no new one
 * turns up. A value a reader refuses (a URL as a port) ends that run, not the search.
 */
function variablesRead(reader: (env: Record<string, string | undefined>) => unknown): string[] {
  const names = new Set<string>();
  const run = (set?: string) => {
    const env = new Proxy(
      {},
      {
        get: (_target, key) => {
          if (typeof key !== 'string') return undefined;
          names.add(key);
          return key === set ? 'http://collector.example:4318' : undefined;
        },
      },
    );
    try {
      reader(env);
    } catch {
      // the value did not suit this variable: what it read before is recorded all the same
    }
  };
  run();
  const tried = new Set<string>();
  let next: string | undefined;
  while ((next = [...names].find((name) => !tried.has(name))) !== undefined) {
    tried.add(next);
    run(next);
  }
  return [...names];
}

// ---- the OpenAPI document ----

interface OpenApiOperation {
  parameters?: Array<{ name: string }>;
  requestBody?: unknown;
  responses?: Record<string, unknown>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, unknown> };
}

/** The document the analytics service serves, whether the module exports it or a builder of it. */
function openApiDocument(): OpenApiDocument {
  const isDocument = (value: unknown): value is OpenApiDocument =>
    typeof value === 'object' && value !== null && 'paths' in value && 'openapi' in value;
  for (const value of Object.values(openapi) as unknown[]) {
    if (isDocument(value)) return value;
    if (typeof value === 'function' && value.length === 0) {
      const built: unknown = (value as () => unknown)();
      if (isDocument(built)) return built;
    }
  }
  throw new Error('apps/analytics/src/api/openapi.ts exports no OpenAPI document');
}

const HTTP_METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Property names of every object schema in `schema`, at any depth (`$ref`s resolved once). */
function propertyNames(
  schema: unknown,
  components: Record<string, unknown>,
  into = new Set<string>(),
  visited = new Set<unknown>(),
): Set<string> {
  if (typeof schema !== 'object' || schema === null || visited.has(schema)) return into;
  visited.add(schema);
  const node = schema as Record<string, unknown>;
  if (typeof node.$ref === 'string') {
    const name = node.$ref.split('/').pop()!;
    return propertyNames(components[name], components, into, visited);
  }
  if (typeof node.properties === 'object' && node.properties !== null) {
    for (const key of Object.keys(node.properties)) into.add(key);
  }
  for (const value of Object.values(node)) propertyNames(value, components, into, visited);
  return into;
}

// ---- markdown files and their links ----

function markdownFiles(): string[] {
  const files = ['README.md'];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(ROOT, dir)).sort()) {
      const path = `${dir}/${name}`;
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else if (name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  return files;
}

/** Relative link targets of a markdown file (inline and reference links, outside code). */
function relativeLinks(markdown: string): string[] {
  const text = prose(markdown).replace(/`[^`\n]*`/g, '');
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)];
  const reference = [...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)];
  return [...inline, ...reference]
    .map((match) => match[1])
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** The anchors GitHub makes of a markdown file's headings, plus explicit `id`/`name` anchors. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .trim()
      .replace(/\s/g, '-');
    const seen = counts.get(base) ?? 0;
    counts.set(base, seen + 1);
    anchors.add(seen === 0 ? base : `${base}-${seen}`);
  }
  for (const [, id] of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id);
  return anchors;
}

// ---- the checks ----

describe('the reference docs', () => {
  it('document every key of the config schema, by its path', () => {
    const paths = configPaths(gatewayConfigSchema, '');
    // The walk itself must see the nested and probed parts, or the check below proves nothing.
    expect(paths).toEqual(
      expect.arrayContaining([
        'auth.oauth.issuers[].claims.roles',
        'namespaces.<name>.upstream.url',
        'namespaces.<name>.upstream.command',
        'keys[].rate_limit.per',
      ]),
    );
    expect(undocumented(paths, CONFIGURATION)).toEqual([]);
  });

  it('document every environment variable the services read', () => {
    const variables = [
      ...variablesRead((env) => readRuntimeSettings(env)),
      ...variablesRead((env) => traceOptionsFromEnv(env)),
    ];
    expect(variables).toEqual(expect.arrayContaining(['EDGE_PORT', 'OTEL_EXPORTER_OTLP_ENDPOINT']));
    expect(undocumented(variables, CONFIGURATION)).toEqual([]);
  });

  it('document every route of the analytics API with its method, parameters and fields', () => {
    const document = openApiDocument();
    const text = prose(read(ANALYTICS));
    const missing: string[] = [];
    const parameters = new Set<string>();
    const fields = new Set<string>();
    const components = document.components?.schemas ?? {};
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of HTTP_METHODS) {
        const operation = item[method];
        if (!operation) continue;
        const route = `${method.toUpperCase()} ${path}`;
        const escaped = route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        if (!new RegExp(`${escaped}(?![\\w/{}-])`).test(text)) missing.push(route);
        for (const parameter of operation.parameters ?? []) parameters.add(parameter.name);
        propertyNames(operation.requestBody, components, fields);
        propertyNames(operation.responses, components, fields);
      }
    }
    expect(missing).toEqual([]);
    expect(undocumented(parameters, ANALYTICS)).toEqual([]);
    expect(unmentioned(fields, ANALYTICS)).toEqual([]);
  });

  it('document every error code with its HTTP status and JSON-RPC code', () => {
    const lines = prose(read(HTTP)).split('\n');
    const wrong = Object.values(ErrorCode).filter((code) => {
      const { status, rpcCode } = ERROR_MAP[code];
      return !lines.some(
        (line) =>
          line.includes(`\`${code}\``) &&
          new RegExp(`(^|[^\\d-])${status}(?!\\d)`).test(line) &&
          line.includes(String(rpcCode)),
      );
    });
    expect(wrong).toEqual([]);
  });

  it('document every event field, outcome and auth method', () => {
    expect(undocumented(EVENT_COLUMNS, ANALYTICS)).toEqual([]);
    expect(undocumented(OUTCOMES, ANALYTICS)).toEqual([]);
    expect(undocumented(AUTH_METHODS, ANALYTICS)).toEqual([]);
  });

  it('document every Prometheus series of the edge', () => {
    const source = read('apps/edge/src/metrics/edge-metrics.ts');
    const series = [...source.matchAll(/name: '(mcp_gateway_[a-z0-9_]+)'/g)].map((m) => m[1]);
    expect(series.length).toBeGreaterThan(5);
    expect(undocumented(series, HTTP)).toEqual([]);
  });

  it('are linked from the README', () => {
    const links = relativeLinks(read('README.md')).map((link) => link.split('#')[0]);
    expect(links).toEqual(expect.arrayContaining([CONFIGURATION, HTTP, ANALYTICS]));
  });

  it('never send a reader to a SPEC the repository does not hold', () => {
    const mentions = markdownFiles().flatMap((file) =>
      read(file)
        .split('\n')
        .map((line, i) => ({ at: `${file}:${i + 1}`, line }))
        .filter(({ line }) => /\bSPEC\b/.test(line))
        .map(({ at }) => at),
    );
    expect(mentions).toEqual([]);
  });

  it('link only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      for (const link of relativeLinks(read(file))) {
        const [target, anchor] = link.split('#');
        const path = target
          ? relative(ROOT, resolve(ROOT, dirname(file), decodeURI(target)))
          : file;
        if (!existsSync(join(ROOT, path))) {
          broken.push(`${file}: ${link} (no such file)`);
        } else if (anchor && path.endsWith('.md') && !anchorsOf(read(path)).has(anchor)) {
          broken.push(`${file}: ${link} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });
});
