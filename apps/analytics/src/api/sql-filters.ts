import type { DuckDBValue } from '@duckdb/node-api';
import type { EventFilters } from './query-params.js';

/** Collects bound parameters; callers write `$n` placeholders, never values, into SQL. */
export class SqlParams {
  readonly values: DuckDBValue[] = [];

  add(value: DuckDBValue): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  timestamp(value: Date): string {
    return `${this.add(value.toISOString())}::TIMESTAMPTZ`;
  }
}

/**
 * SPEC §7: a request is a client-to-server JSON-RPC request, or a rejected HTTP request that
 * held no JSON-RPC message (kind null). Notifications and responses are recorded, not counted.
 */
export const IS_REQUEST = `((direction = 'client_to_server' AND kind = 'request') OR kind IS NULL)`;
export const IS_ERROR = `outcome <> 'ok'`;
export const IS_TOOL_CALL = `"method" = 'tools/call'`;

/** The WHERE conditions of the common filters, ANDed; `TRUE` when there are none. */
export function filterConditions(filters: EventFilters, params: SqlParams): string {
  const conditions: string[] = [];
  if (filters.from) conditions.push(`ts >= ${params.timestamp(filters.from)}`);
  if (filters.to) conditions.push(`ts < ${params.timestamp(filters.to)}`);
  if (filters.namespace !== undefined)
    conditions.push(`namespace = ${params.add(filters.namespace)}`);
  if (filters.tenant !== undefined) conditions.push(`tenant = ${params.add(filters.tenant)}`);
  if (filters.keyId !== undefined) conditions.push(`key_id = ${params.add(filters.keyId)}`);
  if (filters.tool !== undefined) conditions.push(`tool = ${params.add(filters.tool)}`);
  return conditions.length > 0 ? conditions.join(' AND ') : 'TRUE';
}
