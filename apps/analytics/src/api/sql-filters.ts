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

// The request predicates are part of the storage schema: the requests table is derived by them.
export {
  IS_ERROR,
  IS_REJECTED,
  IS_REQUEST,
  IS_TOOL_CALL,
  REQUEST_WEIGHT,
} from '../storage/schema.js';

/** The WHERE conditions of the common filters, ANDed; `TRUE` when there are none. */
export function filterConditions(filters: EventFilters, params: SqlParams): string {
  const conditions: string[] = [];
  if (filters.from) conditions.push(`ts >= ${params.timestamp(filters.from)}`);
  if (filters.to) conditions.push(`ts < ${params.timestamp(filters.to)}`);
  if (filters.namespace !== undefined)
    conditions.push(`namespace = ${params.add(filters.namespace)}`);
  if (filters.server !== undefined) conditions.push(`server = ${params.add(filters.server)}`);
  if (filters.tenant !== undefined) conditions.push(`tenant = ${params.add(filters.tenant)}`);
  if (filters.keyId !== undefined) conditions.push(`key_id = ${params.add(filters.keyId)}`);
  if (filters.tool !== undefined) conditions.push(`tool = ${params.add(filters.tool)}`);
  return conditions.length > 0 ? conditions.join(' AND ') : 'TRUE';
}
