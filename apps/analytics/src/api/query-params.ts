import { ErrorCode, GatewayError } from '#common';

/** A 400 naming the query parameter at fault (SPEC §7). */
export class BadParameterError extends GatewayError {
  constructor(
    readonly parameter: string,
    problem: string,
  ) {
    super(ErrorCode.BadRequest, `query parameter "${parameter}" ${problem}`);
  }
}

/** Filters every endpoint accepts (SPEC §7). `from` is inclusive, `to` exclusive. */
export interface EventFilters {
  from?: Date;
  to?: Date;
  namespace?: string;
  /** A virtual server: its traffic only (events whose `server` is this). */
  server?: string;
  tenant?: string;
  keyId?: string;
  tool?: string;
}

export const FILTER_PARAMETERS = [
  'from',
  'to',
  'namespace',
  'server',
  'tenant',
  'key_id',
  'tool',
] as const;

export type Bucket = '1m' | '1h' | '1d';
export const BUCKETS: readonly Bucket[] = ['1m', '1h', '1d'];

/** Page position in the events list: strictly older than this `ts` (µs), ties broken by id. */
export interface EventCursor {
  tsMicros: bigint;
  id?: string;
}

const MAX_TEXT = 256;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Reads one endpoint's query string: unknown parameters are refused (a misspelt `tenat=` must
 * not silently widen the answer), and so are repeated ones.
 */
export class QueryParams {
  private readonly values = new Map<string, string>();

  constructor(query: unknown, allowed: readonly string[]) {
    const entries =
      query && typeof query === 'object' ? Object.entries(query as Record<string, unknown>) : [];
    for (const [name, value] of entries) {
      if (!allowed.includes(name))
        throw new BadParameterError(name, 'is not supported by this endpoint');
      if (typeof value !== 'string') throw new BadParameterError(name, 'must be given once');
      this.values.set(name, value);
    }
  }

  text(name: string): string | undefined {
    const value = this.values.get(name);
    if (value === undefined) return undefined;
    if (value === '' || value.length > MAX_TEXT)
      throw new BadParameterError(name, `must be 1-${MAX_TEXT} characters`);
    return value;
  }

  timestamp(name: string): Date | undefined {
    const value = this.values.get(name);
    if (value === undefined) return undefined;
    const ms = ISO_DATE.test(value) || ISO_DATE_TIME.test(value) ? Date.parse(value) : NaN;
    if (Number.isNaN(ms) || !calendarDayExists(value)) {
      throw new BadParameterError(
        name,
        'must be an ISO 8601 date or date-time with offset, e.g. 2025-01-31T00:00:00Z',
      );
    }
    return new Date(ms);
  }

  integer(name: string, options: { min: number; max: number; default: number }): number {
    const value = this.values.get(name);
    if (value === undefined) return options.default;
    const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < options.min || parsed > options.max) {
      throw new BadParameterError(name, `must be an integer from ${options.min} to ${options.max}`);
    }
    return parsed;
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const value = this.values.get(name);
    if (value === undefined) return fallback;
    if (!(choices as readonly string[]).includes(value))
      throw new BadParameterError(name, `must be one of ${choices.join(', ')}`);
    return value as T;
  }

  filters(): EventFilters {
    const filters: EventFilters = {
      from: this.timestamp('from'),
      to: this.timestamp('to'),
      namespace: this.text('namespace'),
      server: this.text('server'),
      tenant: this.text('tenant'),
      keyId: this.text('key_id'),
      tool: this.text('tool'),
    };
    if (filters.from && filters.to && filters.from.getTime() >= filters.to.getTime()) {
      throw new BadParameterError('from', 'must be earlier than "to"');
    }
    return filters;
  }

  /** `before` of the events list: an ISO 8601 time, or the `next_before` cursor of the previous page. */
  cursor(name: string): EventCursor | undefined {
    const value = this.values.get(name);
    if (value === undefined) return undefined;
    if (ISO_DATE.test(value) || ISO_DATE_TIME.test(value)) {
      const date = this.timestamp(name)!;
      return { tsMicros: BigInt(date.getTime()) * 1000n };
    }
    const cursor = decodeCursor(value);
    if (!cursor)
      throw new BadParameterError(name, 'must be an ISO 8601 date-time or a next_before value');
    return cursor;
  }
}

export function encodeCursor(cursor: Required<EventCursor>): string {
  return Buffer.from(`${cursor.tsMicros}|${cursor.id}`, 'utf8').toString('base64url');
}

/** The latest time a cursor may name: 9999-12-31T23:59:59.999999Z (and none before 1970). */
const MAX_CURSOR_MICROS = 253_402_300_799_999_999n;

function decodeCursor(value: string): EventCursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(value)) return undefined;
  const match = /^(\d{1,18})\|(.{1,200})$/s.exec(Buffer.from(value, 'base64url').toString('utf8'));
  if (!match) return undefined;
  const tsMicros = BigInt(match[1]);
  return tsMicros <= MAX_CURSOR_MICROS ? { tsMicros, id: match[2] } : undefined;
}

// Date.parse rolls 2025-02-30 over to March; a day the calendar does not have is refused.
function calendarDayExists(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number);
  return (
    month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate()
  );
}
