import { StringDecoder } from 'node:string_decoder';

export interface SseEvent {
  /** The event exactly as received, terminator included: relayed byte for byte. */
  raw: string;
  /** `data:` lines joined with "\n"; undefined when the event has none (priming, retry, comment). */
  data?: string;
  event?: string;
  id?: string;
}

export class SseFramingError extends Error {}

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/;

/**
 * Incremental text/event-stream parser: feed it chunks as they arrive, get complete events
 * back at once so each is relayed (and flushed) the moment it is whole. Bounded: an event
 * larger than `maxEventBytes` is a framing error, not unbounded buffering.
 */
export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';

  constructor(private readonly maxEventBytes = 16 * 1024 * 1024) {}

  push(chunk: Buffer | string): SseEvent[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const events: SseEvent[] = [];
    for (;;) {
      const match = BOUNDARY.exec(this.buffer);
      if (!match) break;
      const end = match.index + match[0].length;
      events.push(parseEvent(this.buffer.slice(0, end), this.buffer.slice(0, match.index)));
      this.buffer = this.buffer.slice(end);
    }
    if (this.buffer.length > this.maxEventBytes) {
      throw new SseFramingError(`SSE event larger than ${this.maxEventBytes} bytes`);
    }
    return events;
  }

  /** What is left when the stream ends: an unterminated event is dropped, as browsers do. */
  get pending(): string {
    return this.buffer;
  }
}

function parseEvent(raw: string, body: string): SseEvent {
  const event: SseEvent = { raw };
  let data: string[] | undefined;
  for (const line of body.split(/\r\n|\n|\r/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') (data ??= []).push(value);
    else if (field === 'event') event.event = value;
    else if (field === 'id') event.id = value;
  }
  if (data) event.data = data.join('\n');
  return event;
}

/** Serialises a message event, keeping the original id (used when a filtered event is rewritten). */
export function formatSseEvent(data: string, id?: string, event?: string): string {
  let out = '';
  if (event) out += `event: ${event}\n`;
  if (id !== undefined) out += `id: ${id}\n`;
  for (const line of data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}
