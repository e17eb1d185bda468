import {
  AUTH_METHODS,
  DIRECTIONS,
  EVENT_COLUMNS,
  KINDS,
  type McpEvent,
  OUTCOMES,
  TRANSPORTS,
} from '#common';
import type { StorableEvent } from '../storage/event-store.js';
import {
  MAX_DETAIL_LENGTH,
  MAX_EVENT_COUNT,
  MAX_LISTED_TOOLS,
  MAX_TEXT_LENGTH,
  MAX_TOOL_TOKENS,
} from '../storage/schema.js';

/** An event that passed validation: its canonical document for DuckDB, its id and time. */
export type DecodedEvent = StorableEvent;

export type DecodeResult = { ok: true; event: DecodedEvent } | { ok: false; reason: string };

const NULLABLE_STRINGS = [
  'edge_id',
  'request_id',
  'tenant',
  'key_id',
  'user',
  'protocol_version',
  'session_id',
  'jsonrpc_id',
  'method',
  'tool',
  'error_code',
  'client_name',
  'client_version',
  'server',
  'client_tool',
  'client_network',
  'upstream_protocol_version',
] as const satisfies ReadonlyArray<keyof McpEvent>;

/** (v2) Names of the edge's own making or configuration, so bounded (the store stays small). */
const BOUNDED_STRINGS: ReadonlySet<string> = new Set<keyof McpEvent>([
  'upstream_protocol_version',
  'server',
  'client_tool',
  'client_network',
]);

const NULLABLE_NUMBERS = ['duration_ms', 'upstream_ms'] as const satisfies ReadonlyArray<
  keyof McpEvent
>;
const NULLABLE_INTEGERS = ['http_status', 'bytes_in', 'bytes_out'] as const satisfies ReadonlyArray<
  keyof McpEvent
>;

const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const utf8 = new TextDecoder();
const OUTCOME_SET: ReadonlySet<unknown> = new Set(OUTCOMES);
const DIRECTION_SET: ReadonlySet<unknown> = new Set(DIRECTIONS);
const TRANSPORT_SET: ReadonlySet<unknown> = new Set(TRANSPORTS);
const AUTH_METHOD_SET: ReadonlySet<unknown> = new Set(AUTH_METHODS);

/** Longer than `max` characters, counted as DuckDB's length() does (code points). */
function tooLong(text: string, max = MAX_TEXT_LENGTH): boolean {
  // A code point is one or two UTF-16 units: only text longer in units needs counting.
  if (text.length <= max) return false;
  let codePoints = 0;
  for (const _ of text) if (++codePoints > max) return true;
  return false;
}

/**
 * (v2) What is wrong with a `tools_listed` that is not null, or undefined: an array of at most
 * MAX_LISTED_TOOLS objects, each a tool name (bounded like the edge's other names) and its tokens
 * (a non-negative INTEGER, or null when the edge could not count them).
 */
function toolsListedProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'tools_listed must be an array or null';
  if (value.length > MAX_LISTED_TOOLS)
    return `tools_listed holds more than ${MAX_LISTED_TOOLS} tools`;
  for (const entry of value as unknown[]) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      return 'tools_listed entries must be objects { tool, tokens }';
    const { tool, tokens } = entry as Record<string, unknown>;
    if (typeof tool !== 'string' || tooLong(tool))
      return `tools_listed entries need a tool name of at most ${MAX_TEXT_LENGTH} characters`;
    if (
      tokens !== null &&
      tokens !== undefined &&
      !(
        Number.isSafeInteger(tokens) &&
        (tokens as number) >= 0 &&
        (tokens as number) <= MAX_TOOL_TOKENS
      )
    )
      return `tools_listed tokens must be an integer from 0 to ${MAX_TOOL_TOKENS} or null`;
  }
  return undefined;
}

/**
 * isMcpEvent without its Date.parse of `ts`: validateEvent checks `ts` more strictly (and more
 * cheaply) with parseTimestamp right after, so parsing it twice was pure cost.
 */
function looksLikeEvent(value: unknown): value is McpEvent {
  if (value === null || typeof value !== 'object') return false;
  const event = value as Record<string, unknown>;
  return (
    typeof event.id === 'string' &&
    typeof event.ts === 'string' &&
    typeof event.namespace === 'string' &&
    OUTCOME_SET.has(event.outcome) &&
    DIRECTION_SET.has(event.direction) &&
    TRANSPORT_SET.has(event.transport)
  );
}
const WHITESPACE_BEFORE_COLON = /"[ \t\r\n]+:/;

/**
 * Validates one event from the wire. Stricter than isMcpEvent: every column must hold a value
 * DuckDB stores as is, so one malformed event can never make a whole batch fail.
 *
 * An event of an older edge (during a rolling upgrade) lacks the v2 fields (or, of an edge of v2,
 * `tools_listed` and `detail`): absent, they are accepted and stored with their pre-v2 values or
 * null (see STAGE_FRESH_SQL), so the returned event may lack them too. Present, they must be
 * valid: `null` is no `count` or `auth_method`.
 */
export function validateEvent(
  value: unknown,
): { ok: true; event: McpEvent; tsMs: number } | { ok: false; reason: string } {
  if (!looksLikeEvent(value)) {
    return {
      ok: false,
      reason:
        'not an MCP event (id, ts, namespace, transport, direction or outcome missing or invalid)',
    };
  }
  const event = value as unknown as Record<string, unknown>;
  const id = event.id as string;
  if (id === '' || tooLong(id)) return { ok: false, reason: 'id is empty or too long' };
  const tsMs = parseTimestamp(event.ts as string);
  if (tsMs === undefined)
    return { ok: false, reason: 'ts is not a valid ISO 8601 date-time with offset' };
  if (
    event.kind !== null &&
    event.kind !== undefined &&
    !(KINDS as readonly unknown[]).includes(event.kind)
  ) {
    return { ok: false, reason: 'kind must be request, notification, response or null' };
  }
  for (const field of NULLABLE_STRINGS) {
    const v = event[field];
    if (v === null || v === undefined) continue;
    if (typeof v !== 'string') return { ok: false, reason: `${field} must be a string or null` };
    if (BOUNDED_STRINGS.has(field) && tooLong(v))
      return { ok: false, reason: `${field} is longer than ${MAX_TEXT_LENGTH} characters` };
  }
  if (event.auth_method !== undefined && !AUTH_METHOD_SET.has(event.auth_method))
    return { ok: false, reason: `auth_method must be one of ${AUTH_METHODS.join(', ')}` };
  const count = event.count;
  if (
    count !== undefined &&
    !(Number.isSafeInteger(count) && (count as number) >= 1 && (count as number) <= MAX_EVENT_COUNT)
  ) {
    return { ok: false, reason: `count must be an integer from 1 to ${MAX_EVENT_COUNT}` };
  }
  for (const field of NULLABLE_NUMBERS) {
    const v = event[field];
    if (v !== null && v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) {
      return { ok: false, reason: `${field} must be a finite number or null` };
    }
  }
  for (const field of NULLABLE_INTEGERS) {
    const v = event[field];
    if (
      v !== null &&
      v !== undefined &&
      !(Number.isSafeInteger(v) && (field !== 'http_status' || (v as number) < 1000))
    ) {
      return { ok: false, reason: `${field} must be an integer or null` };
    }
  }
  if (event.tools_listed !== null && event.tools_listed !== undefined) {
    const problem = toolsListedProblem(event.tools_listed);
    if (problem !== undefined) return { ok: false, reason: problem };
  }
  const detail = event.detail;
  if (
    detail !== null &&
    detail !== undefined &&
    (typeof detail !== 'string' || tooLong(detail, MAX_DETAIL_LENGTH))
  ) {
    return {
      ok: false,
      reason: `detail must be text of at most ${MAX_DETAIL_LENGTH} characters or null`,
    };
  }
  return { ok: true, event: value, tsMs };
}

/**
 * Decodes a message body from JetStream. The common case (an object without duplicate or nested
 * keys, which is what the edge publishes) is stored as received: DuckDB then reads exactly what was
 * validated here, and re-serialising would cost more than everything else in this function.
 */
export function decodeEventMessage(body: string | Uint8Array): DecodeResult {
  const text = typeof body === 'string' ? body : utf8.decode(body);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const checked = validateEvent(value);
  if (!checked.ok) return checked;
  const doc = hasOnlyValidatedKeys(text, checked.event) ? text : canonicalDocument(checked.event);
  return {
    ok: true,
    event: { id: checked.event.id, doc, tsMs: checked.tsMs, count: countOf(checked.event) },
  };
}

/**
 * Decodes an event object handed over in process (standalone mode). An object cannot hold a
 * duplicate key, so its plain serialisation is what was validated.
 */
export function decodeEventObject(value: unknown): DecodeResult {
  const checked = validateEvent(value);
  if (!checked.ok) return checked;
  return {
    ok: true,
    event: {
      id: checked.event.id,
      doc: JSON.stringify(value),
      tsMs: checked.tsMs,
      count: countOf(checked.event),
    },
  };
}

/**
 * True when the text has no duplicate key and no nested key but those of the `tools_listed`
 * entries, so DuckDB's parser (which keeps the first of duplicate keys, where JSON.parse keeps the
 * last) reads exactly what was validated. A key ends with `":`, and that sequence cannot occur
 * unescaped inside a string; counting the unescaped ones gives the number of keys in the text,
 * nested ones included. (A listing's entries are counted in: re-serialising every tools/list
 * response would cost more than the rest of its decoding.)
 */
function hasOnlyValidatedKeys(text: string, parsed: McpEvent): boolean {
  // Whitespace between a key and its colon is legal JSON but never produced by the edge. The
  // regex can only match where a whitespace character precedes a colon: look for that first
  // (four indexOf calls cost a fraction of the regex over a whole event).
  if (
    (text.includes(' :') || text.includes('\t:') || text.includes('\n:') || text.includes('\r:')) &&
    WHITESPACE_BEFORE_COLON.test(text)
  )
    return false;
  let keys = 0;
  for (let at = text.indexOf('":'); at !== -1; at = text.indexOf('":', at + 2)) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) keys++;
  }
  let expected = Object.keys(parsed).length;
  for (const entry of parsed.tools_listed ?? []) expected += Object.keys(entry).length;
  return keys === expected;
}

/**
 * Re-serialises exactly the validated columns: the slow path for unusual message bodies. An
 * absent v2 field becomes null, which STAGE_FRESH_SQL reads as absent.
 */
function canonicalDocument(event: McpEvent): string {
  const picked: Record<string, unknown> = {};
  for (const column of EVENT_COLUMNS) picked[column] = event[column] ?? null;
  return JSON.stringify(picked);
}

/**
 * Epoch ms of an ISO 8601 date-time with offset, or undefined. Checks the calendar itself:
 * Date.parse rolls 2024-02-31 over to March where DuckDB refuses it.
 */
export function parseTimestamp(text: string): number | undefined {
  if (text.length === 24 && text.charCodeAt(23) === 0x5a /* Z */) {
    const fast = parseIsoMillisZ(text);
    if (fast !== undefined) return fast;
  }
  const match = ISO_TIMESTAMP.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (
    year < 1 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return undefined;
  }
  const offset = match[8];
  if (offset !== 'Z' && (Number(offset.slice(1, 3)) > 18 || Number(offset.slice(4, 6)) > 59))
    return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * Fast path of parseTimestamp for `YYYY-MM-DDTHH:MM:SS.sssZ` (what toISOString writes, so what
 * the edge publishes): no regex, no Date object. Undefined sends the text to the general path.
 */
function parseIsoMillisZ(text: string): number | undefined {
  if (
    text.charCodeAt(4) !== 0x2d ||
    text.charCodeAt(7) !== 0x2d ||
    text.charCodeAt(10) !== 0x54 ||
    text.charCodeAt(13) !== 0x3a ||
    text.charCodeAt(16) !== 0x3a ||
    text.charCodeAt(19) !== 0x2e
  )
    return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const ms = digits(text, 20, 3);
  if (
    year < 1 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 59 ||
    ms < 0
  )
    return undefined;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0)) return undefined;
  const epoch = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC maps years 0-99 to 1900-1999: leave those to the general path.
  return year < 100 ? undefined : epoch;
}

/** How many requests a validated event stands for: its `count`, 1 for an event of an older edge. */
function countOf(event: McpEvent): number {
  return typeof event.count === 'number' ? event.count : 1;
}
