import { AUTH_METHODS, EVENT_COLUMNS, OUTCOMES, TOOL_DRIFT_METHOD } from '#common';
import {
  COLUMN_TYPES,
  MAX_DETAIL_LENGTH,
  MAX_LISTED_TOOLS,
  OUTCOME_CLASSES,
} from '../storage/schema.js';
import { LATENCY_BUCKET_BOUNDS } from './latency-histogram.js';
import { BUCKETS } from './query-params.js';

type Schema = Record<string, unknown>;

const integer: Schema = { type: 'integer', minimum: 0 };
const ms: Schema = {
  type: 'number',
  minimum: 0,
  description: 'milliseconds; 0 when there is no data',
};
const outcomesOf = (kind: string) =>
  Object.entries(OUTCOME_CLASSES)
    .filter(([, c]) => c === kind)
    .map(([outcome]) => `\`${outcome}\``)
    .join(', ');
const rejected: Schema = {
  ...integer,
  description: `Requests the gateway refused before a backend saw them (${outcomesOf('rejected')}).`,
};
const errors: Schema = {
  ...integer,
  description: `Requests let through whose outcome is not \`ok\` (${outcomesOf('error')}); never the rejected ones.`,
};
const rate: Schema = {
  type: 'number',
  minimum: 0,
  maximum: 1,
  description: 'errors / (requests − rejected); 0 when no request was let through',
};

/** An object of exactly these properties, each required but the `optional` ones. */
function object(properties: Record<string, Schema>, optional: string[] = []): Schema {
  return {
    type: 'object',
    required: Object.keys(properties).filter((name) => !optional.includes(name)),
    properties,
    additionalProperties: false,
  };
}

function query(name: string, description: string, schema: Schema = { type: 'string' }): Schema {
  return { name, in: 'query', required: false, description, schema };
}

const FILTERS = [
  query('from', 'Start of the range, inclusive (ISO 8601 date or date-time with offset).', {
    type: 'string',
    format: 'date-time',
  }),
  query('to', 'End of the range, exclusive (ISO 8601 date or date-time with offset).', {
    type: 'string',
    format: 'date-time',
  }),
  query(
    'namespace',
    'Only this namespace. On a virtual server, a tools/call is of its member namespace, its other events of the server’s name.',
  ),
  query(
    'server',
    'Only the traffic of this virtual server (events whose `server` is this); namespace routes have none.',
  ),
  query('tenant', 'Only this tenant. A tenant admin may only name its own tenant.'),
  query('key_id', 'Only this key id.'),
  query('tool', 'Only events of this tool.'),
];

const limit = (fallback: number) =>
  query('limit', `How many rows at most (default ${fallback}).`, {
    type: 'integer',
    minimum: 1,
    maximum: 1000,
    default: fallback,
  });

/** The event fields whose schema says more than their column type. */
const EVENT_FIELDS: Record<string, Schema> = {
  ts: { type: 'string', format: 'date-time' },
  outcome: { type: 'string', enum: [...OUTCOMES] },
  server: {
    type: ['string', 'null'],
    description: 'The virtual server the client addressed; null for a namespace route.',
  },
  auth_method: {
    type: 'string',
    enum: [...AUTH_METHODS],
    description: 'How the client proved who it is; `none` without a valid credential.',
  },
  client_tool: {
    type: ['string', 'null'],
    description:
      'For a tools/call: the tool name the client used, when a prefix or override changed it (`tool` is the backend’s name).',
  },
  count: {
    type: 'integer',
    minimum: 1,
    description:
      'How many requests the event stands for: 1, except for the per-minute row of rejected requests without a valid credential (one row per minute, namespace, outcome and client network).',
  },
  client_network: {
    type: ['string', 'null'],
    description:
      'The client network (IPv4 address or IPv6 /64) of a per-minute row of rejected requests.',
  },
  tools_listed: {
    type: ['array', 'null'],
    maxItems: MAX_LISTED_TOOLS,
    items: object({
      tool: { type: 'string' },
      tokens: {
        type: ['integer', 'null'],
        minimum: 0,
        description: 'null when the edge could not count them',
      },
    }),
    description:
      'On the response to a tools/list: each tool the client received, with the tokens of its definition as received (o200k_base encoding of its compact JSON). Null on every other event.',
  },
  detail: {
    type: ['string', 'null'],
    maxLength: MAX_DETAIL_LENGTH,
    description: `On a \`${TOOL_DRIFT_METHOD}\` event (a pinned tool's definition changed): JSON of { previous_hash, hash, diff, mode }. Null on every other event.`,
  },
};

const eventSchema = object(
  Object.fromEntries(
    EVENT_COLUMNS.map((column): [string, Schema] => {
      const type = COLUMN_TYPES[column];
      if (column in EVENT_FIELDS) return [column, EVENT_FIELDS[column]];
      if (type === 'VARCHAR') return [column, { type: ['string', 'null'] }];
      return [column, { type: [type === 'DOUBLE' ? 'number' : 'integer', 'null'] }];
    }),
  ),
);

const errorSchema = object({
  error: object({
    code: {
      type: 'string',
      examples: ['bad_request', 'unauthorized', 'forbidden', 'auth_unavailable'],
    },
    message: { type: 'string' },
    requestId: { type: 'string' },
  }),
});

function json(schema: Schema, description = 'OK'): Schema {
  return { description, content: { 'application/json': { schema } } };
}

const ERRORS = {
  '400': json(
    { $ref: '#/components/schemas/Error' },
    'A query parameter is invalid; the message names it.',
  ),
  '401': json(
    { $ref: '#/components/schemas/Error' },
    'No key, or an unknown, revoked or expired one, or one that is not an admin’s (the same answer for each).',
  ),
  '403': json(
    { $ref: '#/components/schemas/Error' },
    'A tenant admin asking for another tenant than the key’s.',
  ),
  '503': json(
    { $ref: '#/components/schemas/Error' },
    'The auth service is unreachable (Retry-After), or the query timed out.',
  ),
};

function operation(summary: string, parameters: Schema[], response: Schema): Schema {
  return { get: { summary, parameters, responses: { '200': json(response), ...ERRORS } } };
}

const error = (description: string) => json({ $ref: '#/components/schemas/Error' }, description);

const ADMIN_ERRORS = {
  '401': ERRORS['401'],
  '403': error('A tenant admin acting on another tenant than the key’s.'),
  '503': error(
    'The auth service or its key store (NATS key-value bucket) is unreachable; retry (Retry-After).',
  ),
};

const nullableString = { type: ['string', 'null'] };
const nullableTokens = { type: ['integer', 'null'], minimum: 0 };

const pin = object(
  {
    namespace: { type: 'string' },
    tool: { type: 'string' },
    hash: {
      type: 'string',
      description: '`sha256:` and the hex SHA-256 of the definition’s canonical JSON.',
    },
    tokens: { ...nullableTokens, description: 'Tokens of the pinned definition.' },
    first_seen: { type: 'string', format: 'date-time' },
    status: {
      type: 'string',
      enum: ['pinned', 'drifted', 'approved'],
      description:
        '`pinned`: as first seen; `drifted`: an edge saw another definition since; `approved`: an admin accepted a drifted one.',
    },
    drift: {
      ...object({
        seen_at: { type: 'string', format: 'date-time' },
        hash: { type: 'string' },
        tokens: nullableTokens,
        diff: {
          type: 'string',
          description:
            'One line per changed field: `~ path: before → after`, `+ path: value`, `- path: value`.',
        },
      }),
      description: 'Only on a drifted pin: the definition seen since, not accepted yet.',
    },
    approved_at: { type: ['string', 'null'], format: 'date-time' },
    approved_by: { ...nullableString, description: 'The key id of the admin who approved.' },
  },
  ['drift'],
);

const contextTool = object({
  namespace: {
    type: 'string',
    description: 'The namespace that listed it, or the virtual server (its name).',
  },
  tool: { type: 'string', description: 'Its name as the listing gave it to clients.' },
  tokens: {
    ...integer,
    description:
      'Tokens of its definition in its latest listing of the range that counted them (0 if none did).',
  },
  calls: { ...integer, description: 'tools/call requests of it, rejected ones included.' },
  keys_listing: { ...integer, description: 'Distinct keys that received it in a listing.' },
  keys_calling: { ...integer, description: 'Distinct keys that called it.' },
  listings: { ...integer, description: 'tools/list responses that carried it.' },
});
const names = { type: 'array', items: { type: 'string' } };
const toolRules = object({ allow: names, deny: names });
const rateLimit = object({
  requests: { type: 'integer', minimum: 1 },
  per: { type: 'string', description: 'A duration: 500ms, 30s, 5m, 1h, 7d.', examples: ['1m'] },
});

const keyListing = object({
  id: { type: 'string' },
  source: {
    type: 'string',
    enum: ['file', 'api'],
    description: '`file`: from the config file (read-only here); `api`: created through this API.',
  },
  user: nullableString,
  tenant: nullableString,
  roles: names,
  namespaces: names,
  tools: { oneOf: [toolRules, { type: 'null' }] },
  rate_limit: { oneOf: [rateLimit, { type: 'null' }] },
  expires_at: { type: ['string', 'null'], format: 'date-time' },
  admin: { type: 'boolean', description: 'May use the analytics and admin API.' },
  created_at: { type: ['string', 'null'], format: 'date-time', description: 'null for file keys.' },
  created_by: { ...nullableString, description: 'The key id of the admin who created it.' },
});

const newKey: Schema = {
  type: 'object',
  required: ['user'],
  additionalProperties: false,
  properties: {
    id: {
      type: 'string',
      pattern: '^[A-Za-z0-9._@-]{1,128}$',
      description: 'Default: generated. Taken by a file key or another key: 409.',
    },
    user: { type: 'string', minLength: 1 },
    tenant: {
      type: 'string',
      description: 'A tenant admin’s keys are always in its tenant (another tenant: 403).',
    },
    roles: { ...names, description: 'Roles of the config file.' },
    namespaces: { ...names, description: 'Namespaces of the config file, or `*`.' },
    tools: {
      type: 'object',
      additionalProperties: false,
      properties: { allow: names, deny: names },
      description: 'The key’s own tool scope, intersected with its roles’ and each namespace’s.',
    },
    rate_limit: rateLimit,
    expires_at: { type: 'string', format: 'date-time', description: 'In the future.' },
  },
};

/** The OpenAPI 3.1 description of the analytics REST API (SPEC §7). */
export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'MCP Gateway analytics',
    version: '1',
    description:
      'Usage of the gateway, computed from one event per JSON-RPC message. `requests` counts client-to-server ' +
      'JSON-RPC requests plus rejected HTTP requests; `rejected` the requests the gateway refused before a ' +
      'backend saw them (unauthorized, forbidden, rate_limited, bad_request, denied_tool); `errors` the ' +
      'others whose outcome is not `ok`; `error_rate` = errors ÷ (requests − rejected). ' +
      'Rejected requests without a valid credential are stored as one event per minute, namespace, outcome ' +
      'and client network whose `count` says how many requests it stands for; every figure counts it that ' +
      'many times. Percentiles are exact (linear interpolation) over the requests’ duration_ms (such a ' +
      'per-minute event has none).',
  },
  security: [{ bearer: [] }, { apiKey: [] }],
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'An admin API key.' },
      apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
    },
    schemas: {
      Error: errorSchema,
      Event: eventSchema,
      Key: keyListing,
      NewKey: newKey,
      Pin: pin,
      ContextTool: contextTool,
    },
  },
  paths: {
    '/api/v1/summary': operation(
      'Totals over the filtered events',
      FILTERS,
      object({
        requests: integer,
        rejected,
        errors,
        error_rate: rate,
        tool_calls: integer,
        unique_keys: integer,
        p50_ms: ms,
        p95_ms: ms,
        p99_ms: ms,
      }),
    ),
    '/api/v1/tools': operation('Per tool, most called first', [...FILTERS, limit(50)], {
      type: 'array',
      items: object({
        namespace: { type: 'string' },
        tool: { type: ['string', 'null'] },
        calls: integer,
        rejected,
        errors,
        error_rate: rate,
        p50_ms: ms,
        p95_ms: ms,
      }),
    }),
    '/api/v1/timeseries': operation(
      'Requests per time bucket; buckets without requests are zeros. Without from/to: the last hour (1m), day (1h) or 30 days (1d).',
      [
        ...FILTERS,
        query('bucket', 'Bucket size (default 1h).', {
          type: 'string',
          enum: [...BUCKETS],
          default: '1h',
        }),
      ],
      {
        type: 'array',
        items: object({
          ts: { type: 'string', format: 'date-time' },
          requests: integer,
          rejected,
          errors,
          p95_ms: ms,
        }),
      },
    ),
    '/api/v1/keys': operation(
      'Per key, most requests first; last, the requests without a valid credential (key_id null), so the rows add up to the summary’s requests',
      FILTERS,
      {
        type: 'array',
        items: object({
          key_id: {
            type: ['string', 'null'],
            description:
              'null: requests without a valid credential (refused before any key was known; a per-minute row counts as many as it stands for).',
          },
          user: { type: ['string', 'null'] },
          tenant: { type: ['string', 'null'] },
          requests: integer,
          rejected,
          errors,
          error_rate: rate,
          last_seen: { type: 'string', format: 'date-time' },
        }),
      },
    ),
    '/api/v1/namespaces': operation('Per namespace, most requests first', FILTERS, {
      type: 'array',
      items: object({
        namespace: { type: 'string' },
        requests: integer,
        rejected,
        errors,
        error_rate: rate,
        p95_ms: ms,
      }),
    }),
    '/api/v1/servers': operation(
      'Per virtual server, most requests first: the requests of its sessions, whichever member answered them. Namespace routes are in no row.',
      FILTERS,
      {
        type: 'array',
        items: object({
          server: { type: 'string' },
          requests: integer,
          rejected,
          errors,
          error_rate: rate,
          p95_ms: ms,
        }),
      },
    ),
    '/api/v1/histogram': operation(
      `Latency histogram of the filtered requests (the dashboard's per-tool histogram: filter by namespace and tool): their duration_ms counted in fixed log-scale buckets with upper bounds ${LATENCY_BUCKET_BOUNDS.join(', ')} ms and an open-ended last one. Exact counts; requests without a duration (per-minute rows of rejected requests) are in no bucket.`,
      FILTERS,
      object({
        buckets: {
          type: 'array',
          description: 'Every bucket, in order; empty ones as zeros.',
          items: object({
            lower_ms: { type: 'number', minimum: 0, description: 'inclusive' },
            upper_ms: {
              type: ['number', 'null'],
              description: 'exclusive; null for the last bucket',
            },
            requests: integer,
            rejected,
            errors,
          }),
        },
      }),
    ),
    '/api/v1/events': operation(
      'Raw events, newest first',
      [
        ...FILTERS,
        limit(100),
        query(
          'before',
          'Only older events: an ISO 8601 date-time, or the next_before of the previous page.',
        ),
      ],
      object({
        events: { type: 'array', items: { $ref: '#/components/schemas/Event' } },
        next_before: { type: ['string', 'null'] },
      }),
    ),
    '/api/v1/context': operation(
      'Context budget: the tools listed to clients in the range (each `tools/list` response records the tools the client received and the tokens of their definitions), against their calls. Unused tools (listed, never called) first, then by tokens, most first: the tools whose denial saves the most. A virtual server lists its members’ tools under its own name and the names its clients see, while each call is recorded under the member namespace and the backend’s name: its rows are under the server’s name and the client’s tool name, its calls counted there. Filters apply to listings and calls alike, `namespace` and `tool` to these names; `tool` keeps that tool of each listing.',
      FILTERS,
      object({
        tools: { type: 'array', items: { $ref: '#/components/schemas/ContextTool' } },
        totals: object({
          tools: { ...integer, description: 'Tools listed.' },
          definition_tokens: { ...integer, description: 'Sum of the tools’ tokens.' },
          sessions: {
            ...integer,
            description:
              'Distinct sessions with a listing (a listing without a session counts as its own).',
          },
          tokens_per_session: {
            type: 'number',
            minimum: 0,
            description:
              'Average over those sessions of the tokens of the session’s latest listing.',
          },
          unused_tools: { ...integer, description: 'Tools listed and never called.' },
          unused_tokens: {
            ...integer,
            description:
              'Sum of the unused tools’ tokens: what every listing pays for tools nobody called.',
          },
          unused_tokens_delivered: {
            ...integer,
            description: 'Tokens of unused tools summed over every listing that carried them.',
          },
        }),
      }),
    ),
    '/api/v1/pins': {
      get: {
        summary:
          'Pinned tool definitions (SPEC §7 v2 Pinning), drifted ones first. Any admin, of any tenant, may read them (a pin holds for every tenant). Answers what the pin store holds whatever `tool_pinning.mode` is.',
        parameters: [query('namespace', 'Only this namespace.'), query('tool', 'Only this tool.')],
        responses: {
          '200': json({ type: 'array', items: { $ref: '#/components/schemas/Pin' } }),
          '400': ERRORS['400'],
          '401': ERRORS['401'],
          '403': error('Not an admin key.'),
          '503': error('This service has no pin store, or the auth service is unreachable.'),
        },
      },
    },
    '/api/v1/pins/{namespace}/{tool}/approve': {
      post: {
        summary:
          'Accepts the drifted definition of a tool as its pin: every edge holds it within 2 s (in block mode the tool is listed again). Recorded in the audit events (namespace `_admin`, method `admin/pins/approve`), done or refused.',
        parameters: [
          ['namespace', 'The namespace of the pin.'],
          ['tool', 'The tool’s name as the pin names it (percent-encoded).'],
        ].map(([name, description]) => ({
          name,
          in: 'path',
          required: true,
          description,
          schema: { type: 'string' },
        })),
        requestBody: {
          required: false,
          description:
            'Optional: the hash of the drift the admin reviewed. When the definition drifted again since, the approval is refused (409) rather than accepting a diff nobody saw.',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: { hash: { type: 'string' } },
              },
            },
          },
        },
        responses: {
          '200': json({ $ref: '#/components/schemas/Pin' }, 'Approved: the pin as it is now'),
          '400': error('The body is neither empty nor `{"hash": …}`.'),
          '401': ERRORS['401'],
          '403': error('A tenant admin (a pin holds for every tenant).'),
          '404': error('No pin of this tool.'),
          '409': error(
            'The pin has not drifted, the drift’s hash is not the one given, or another writer changed the pin meanwhile.',
          ),
          '503': error('The pin store is unavailable (Retry-After), or this service has none.'),
        },
      },
    },
    '/api/v1/admin/keys': {
      get: {
        summary:
          'Keys in force, from the config file and created through this API; never a secret. A tenant admin sees its tenant’s keys only.',
        parameters: [],
        responses: {
          '200': json({ type: 'array', items: { $ref: '#/components/schemas/Key' } }),
          ...ADMIN_ERRORS,
        },
      },
      post: {
        summary:
          'Creates a key (recorded in the audit events, namespace `_admin`). The answer holds its secret: the only time it is shown.',
        parameters: [],
        requestBody: {
          required: true,
          description:
            'The key: user (required), and optionally id, tenant, roles, namespaces, tools, rate_limit, expires_at, as for a key of the config file.',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/NewKey' } } },
        },
        responses: {
          '201': json(
            object({
              id: { type: 'string' },
              key: { type: 'string', description: 'The secret. Shown once, stored nowhere.' },
            }),
            'Created',
          ),
          '400': error('The body is invalid; the message names the field.'),
          ...ADMIN_ERRORS,
          '409': error('The id is taken, by a file key or a key created earlier.'),
        },
      },
    },
    '/api/v1/admin/keys/{id}': {
      delete: {
        summary:
          'Revokes a created key: every edge refuses it within 2 s (recorded in the audit events).',
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            description: 'The key id.',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '204': { description: 'Revoked' },
          ...ADMIN_ERRORS,
          '404': error('No such key (or, for a tenant admin, none in its tenant).'),
          '409': error('A key of the config file: edit the file to revoke it.'),
        },
      },
    },
  },
} as const;
