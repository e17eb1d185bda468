import type { Row } from '../storage/event-store.js';
import type { ContextBudget, ContextTool } from './answers.js';
import type { EventFilters } from './query-params.js';
import { count, requiredText } from './row-mapping.js';
import { filterConditions, REQUEST_WEIGHT, type SqlParams } from './sql-filters.js';

// SPEC §7 (v2) `GET /api/v1/context`: what the tool definitions clients are given cost them, and
// what they use. A listing is the `response` event of a `tools/list`: its `tools_listed` holds
// each tool the client received with the tokens of its definition as received. Calls come from
// the `requests` table, as in every other answer about requests.
//
// A row is a tool as its listing names it. On a namespace route that is (namespace, tool) for
// listing and call alike. A virtual server lists its members' tools merged, under the server's
// name and the names its clients see (a prefix or override may rename them), while each call is
// recorded under its member namespace and the backend's name (`client_tool` keeping the client's
// when it differs): CALL_KEYS names such a call as its listing did, so a listed tool that was
// called never reads as unused. The `namespace` and `tool` filters select these names.

/**
 * Every tool call under the name its listing gave it: on a virtual server (`server` set) the
 * server's name and the client's tool name, elsewhere its own namespace and tool.
 */
const CALL_KEYS = `SELECT ts, tenant, key_id, server, ${REQUEST_WEIGHT},
    coalesce(server, namespace) AS namespace,
    CASE WHEN server IS NULL THEN tool ELSE coalesce(client_tool, tool) END AS tool
  FROM requests WHERE is_tool_call`;

/**
 * The listings under the filters. `tool` does not filter listing events (their `tool` column is
 * null): it filters the tools inside them (listedTools, listingTokens).
 */
function listingsSql(filters: EventFilters, params: SqlParams): string {
  return `SELECT id, ts, namespace, key_id, session_id, tools_listed FROM events
    WHERE ${filterConditions({ ...filters, tool: undefined }, params)} AND tools_listed IS NOT NULL`;
}

/** The entries of a listing that the `tool` filter keeps (all of them without one). */
function entriesSql(filters: EventFilters, params: SqlParams): string {
  return filters.tool === undefined
    ? 'tools_listed'
    : `list_filter(tools_listed, lambda e: e.tool = ${params.add(filters.tool)})`;
}

/**
 * One row per listed tool: its tokens in its latest listing of the range that counted them
 * (arg_max skips nulls: a listing the edge could not count does not erase the known figure), the
 * listings and keys that received it, the tokens delivered with it over all its listings, and
 * its calls and calling keys (the filters select calls by the names of CALL_KEYS).
 */
export function contextToolsSql(filters: EventFilters, params: SqlParams): string {
  return `WITH listings AS (${listingsSql(filters, params)}),
  listed AS (
    SELECT id, ts, namespace, key_id, entry.tool AS tool, entry.tokens AS tokens
    FROM (SELECT *, unnest(${entriesSql(filters, params)}) AS entry FROM listings)
  ),
  tools AS (
    SELECT namespace, tool, arg_max(tokens, ts) AS tokens, count(DISTINCT id) AS listings,
           count(DISTINCT key_id) AS keys_listing, sum(tokens) AS delivered
    FROM listed GROUP BY namespace, tool
  ),
  calls AS (
    SELECT namespace, tool, sum(${REQUEST_WEIGHT}) AS calls, count(DISTINCT key_id) AS keys_calling
    FROM (${CALL_KEYS}) WHERE ${filterConditions(filters, params)}
    GROUP BY namespace, tool
  )
  SELECT t.namespace, t.tool, coalesce(t.tokens, 0) AS tokens, coalesce(c.calls, 0) AS calls,
         t.keys_listing, coalesce(c.keys_calling, 0) AS keys_calling, t.listings,
         coalesce(t.delivered, 0) AS delivered
  FROM tools t LEFT JOIN calls c ON c.namespace = t.namespace AND c.tool = t.tool
  ORDER BY coalesce(c.calls, 0) = 0 DESC, coalesce(t.tokens, 0) DESC, t.namespace, t.tool`;
}

/**
 * The sessions that received a listing, and the average of the tokens of each one's latest
 * listing: what a session's context holds of tool definitions. A listing without a session (a
 * stateless server) is a session of its own; with the tool filter, only listings carrying it.
 */
export function contextSessionsSql(filters: EventFilters, params: SqlParams): string {
  const entries = entriesSql(filters, params);
  return `WITH listings AS (${listingsSql(filters, params)}),
  per_listing AS (
    SELECT id, ts, session_id,
           coalesce(list_sum(list_transform(${entries}, lambda e: coalesce(e.tokens, 0))), 0) AS tokens
    FROM listings ${filters.tool === undefined ? '' : `WHERE len(${entries}) > 0`}
  ),
  per_session AS (
    SELECT arg_max(tokens, ts) AS tokens FROM per_listing
    GROUP BY session_id IS NULL, coalesce(session_id, id)
  )
  SELECT count(*) AS sessions, coalesce(avg(tokens), 0) AS tokens_per_session FROM per_session`;
}

/**
 * The answer from both queries' rows. The totals over the tools are sums of the rows, which are
 * the whole answer (one per listed tool), so summing them here scans no events.
 */
export function toContextBudget(tools: Row[], sessions: Row): ContextBudget {
  const rows = tools.map((row) => ({
    tool: {
      namespace: requiredText(row.namespace),
      tool: requiredText(row.tool),
      tokens: count(row.tokens),
      calls: count(row.calls),
      keys_listing: count(row.keys_listing),
      keys_calling: count(row.keys_calling),
      listings: count(row.listings),
    } satisfies ContextTool,
    delivered: count(row.delivered),
  }));
  const unused = rows.filter((row) => row.tool.calls === 0);
  const sum = (list: typeof rows, of: (row: (typeof rows)[number]) => number) =>
    list.reduce((total, row) => total + of(row), 0);
  return {
    tools: rows.map((row) => row.tool),
    totals: {
      tools: rows.length,
      definition_tokens: sum(rows, (row) => row.tool.tokens),
      sessions: count(sessions.sessions),
      tokens_per_session: count(sessions.tokens_per_session),
      unused_tools: unused.length,
      unused_tokens: sum(unused, (row) => row.tool.tokens),
      unused_tokens_delivered: sum(unused, (row) => row.delivered),
    },
  };
}
