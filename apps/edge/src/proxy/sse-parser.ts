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

const CR = 13;
const LF = 10;

/**
 * Incremental text/event-stream parser, line by line as the HTML standard reads a stream (the
 * way SDK clients and browsers do): a leading byte-order mark is dropped, CRLF, LF and lone CR
 * each end a line, a blank line ends an event. It yields each event the moment it is whole, so
 * it is relayed (and flushed) at once, whatever byte a chunk boundary falls on. A gateway parser
 * that framed events differently from its clients would let a backend show a client a message
 * the gateway never inspected. Bounded: an event larger than `maxEventBytes` is a framing
 * error, not unbounded buffering.
 */
export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  private started = false;
  /** The previous chunk ended in CR: a LF first in the next one belongs to that line end. */
  private skipLf = false;
  /** Complete lines of the event being read, terminators included. */
  private raw = '';
  /** The line being read (no terminator yet). */
  private line = '';
  private data: string[] | undefined;
  private event: string | undefined;
  private id: string | undefined;

  constructor(private readonly maxEventBytes = 16 * 1024 * 1024) {}

  push(chunk: Buffer | string): SseEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const events: SseEvent[] = [];
    let start = 0;
    if (this.skipLf && text.charCodeAt(0) === LF) {
      // The LF of a CRLF split across chunks: relayed as its own (empty) piece.
      if (this.raw === '' && this.line === '') events.push({ raw: '\n' });
      else this.raw += '\n';
      start = 1;
    }
    this.skipLf = false;
    for (let i = start; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code !== CR && code !== LF) continue;
      let end = i + 1;
      if (code === CR) {
        if (end < text.length) {
          if (text.charCodeAt(end) === LF) end++;
        } else this.skipLf = true;
      }
      const line = this.line + text.slice(start, i);
      this.line = '';
      this.raw += line + text.slice(i, end);
      if (line === '') events.push(this.dispatch());
      else this.field(line);
      start = end;
      i = end - 1;
    }
    this.line += text.slice(start);
    if (this.raw.length + this.line.length > this.maxEventBytes) {
      throw new SseFramingError(`SSE event larger than ${this.maxEventBytes} bytes`);
    }
    return events;
  }

  /** What is left of an unterminated event: dropped when the stream ends, as browsers do. */
  get pending(): string {
    return this.raw + this.line;
  }

  private field(line: string): void {
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (name === 'data') (this.data ??= []).push(value);
    else if (name === 'event') this.event = value;
    else if (name === 'id' && !value.includes('\0')) this.id = value;
  }

  private dispatch(): SseEvent {
    const event: SseEvent = { raw: this.raw };
    if (this.data) event.data = this.data.join('\n');
    if (this.event !== undefined) event.event = this.event;
    if (this.id !== undefined) event.id = this.id;
    this.raw = '';
    this.data = undefined;
    this.event = undefined;
    this.id = undefined;
    return event;
  }
}

/** Serialises a message event, keeping the original id (used when a filtered event is rewritten). */
export function formatSseEvent(data: string, id?: string, event?: string): string {
  let out = '';
  if (event) out += `event: ${event}\n`;
  if (id !== undefined) out += `id: ${id}\n`;
  for (const line of data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}
