import { AUTH_METHODS, EVENT_COLUMNS, OUTCOMES } from '#common';
import { COLUMN_TYPES } from '../storage/schema.js';
import { BUCKETS } from './query-params.js';

type Schema = Record<string, unknown>;

const integer: Schema = { type: 'integer', minimum: 0 };
const ms: Schema = {
  type: 'number',
  minimum: 0,
  description: 'milliseconds; 0 when there is no data',
};
const rate: Schema = {
  type: 'number',
  minimum: 0,
  maximum: 1,
  description: 'errors / requests; 0 without requests',
};

function object(properties: Record<string, Schema>): Schema {
  return {
    type: 'object',
    required: Object.keys(properties),
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
  query('namespace', 'Only this namespace.'),
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
    'No key, or an unknown, revoked or expired one.',
  ),
  '403': json(
    { $ref: '#/components/schemas/Error' },
    'Not an admin key, or another tenant than the key’s.',
  ),
  '503': json(
    { $ref: '#/components/schemas/Error' },
    'The auth service is unreachable (Retry-After), or the query timed out.',
  ),
};

function operation(summary: string, parameters: Schema[], response: Schema): Schema {
  return { get: { summary, parameters, responses: { '200': json(response), ...ERRORS } } };
}

/** The OpenAPI 3.1 description of the analytics REST API (SPEC §7). */
export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'MCP Gateway analytics',
    version: '1',
    description:
      'Usage of the gateway, computed from one event per JSON-RPC message. `requests` counts client-to-server ' +
      'JSON-RPC requests plus rejected HTTP requests; `errors` the requests whose outcome is not `ok`. ' +
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
    schemas: { Error: errorSchema, Event: eventSchema },
  },
  paths: {
    '/api/v1/summary': operation(
      'Totals over the filtered events',
      FILTERS,
      object({
        requests: integer,
        errors: integer,
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
        errors: integer,
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
          errors: integer,
          p95_ms: ms,
        }),
      },
    ),
    '/api/v1/keys': operation('Per key, most requests first', FILTERS, {
      type: 'array',
      items: object({
        key_id: { type: 'string' },
        user: { type: ['string', 'null'] },
        tenant: { type: ['string', 'null'] },
        requests: integer,
        errors: integer,
        last_seen: { type: 'string', format: 'date-time' },
      }),
    }),
    '/api/v1/namespaces': operation('Per namespace, most requests first', FILTERS, {
      type: 'array',
      items: object({
        namespace: { type: 'string' },
        requests: integer,
        errors: integer,
        p95_ms: ms,
      }),
    }),
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
  },
} as const;
