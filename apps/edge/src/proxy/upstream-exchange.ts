import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { type Dispatcher, errors as undiciErrors } from 'undici';
import { mediaTypeOf } from './upstream-headers.js';

const EMPTY = Buffer.alloc(0);

/** A buffered answer grew past the bound the edge reads into memory. */
export class AnswerTooLargeError extends Error {}

/**
 * One request to a backend as an undici dispatch handler: the lean form of `request()` for a
 * proxy. A unary answer (JSON, 202, 4xx) is collected into one Buffer and handed over when it
 * is complete, without a body stream, an abort signal or an async resource per request. An SSE
 * answer becomes a Readable fed straight from the socket, paused while the reader (the client's
 * socket) is full.
 *
 * `ready` resolves when the answer can be relayed (an SSE stream's headers, a unary answer's
 * last byte) and rejects when it cannot (connect error, timeout, abort, a body over `limit`).
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  status = 0;
  headers: IncomingHttpHeaders = {};
  /** The unary answer, complete (empty for a discarded 5xx body). */
  body: Buffer = EMPTY;
  /** The SSE answer, when the backend streams. */
  stream: Readable | undefined;
  aborted = false;
  readonly ready: Promise<void>;

  private controller: Dispatcher.DispatchController | undefined;
  private first: Buffer | undefined;
  private chunks: Buffer[] | undefined;
  private size = 0;
  private discard = false;
  private ended = false;
  private resolve!: () => void;
  private reject!: (error: Error) => void;

  constructor(private readonly limit: number) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Stops the exchange: before the answer `ready` rejects; during a stream the stream errors. */
  abort(): void {
    if (this.aborted || this.ended) return;
    this.aborted = true;
    this.controller?.abort(new undiciErrors.RequestAbortedError());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(new undiciErrors.RequestAbortedError());
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (status < 200) return; // 1xx: the answer is still to come
    this.status = status;
    this.headers = headers;
    if (status >= 500) {
      this.discard = true; // answered as upstream_error; the body is read and dropped
      return;
    }
    if (mediaTypeOf(headers['content-type']) === 'text/event-stream') {
      this.stream = new Readable({
        read: () => controller.resume(),
        destroy: (error, callback) => {
          // The reader gave up (client gone, idle timeout): stop the backend's stream too.
          if (!this.ended) {
            this.ended = true;
            controller.abort(error ?? new undiciErrors.RequestAbortedError());
          }
          callback(error);
        },
      });
      this.resolve();
      return;
    }
    if (Number(headers['content-length']) > this.limit) {
      controller.abort(new AnswerTooLargeError('Backend answer too large'));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.stream) {
      if (!this.stream.push(chunk)) controller.pause();
      return;
    }
    if (this.discard) return;
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.discard = true;
      controller.abort(new AnswerTooLargeError('Backend answer too large'));
      return;
    }
    // Chunks are views of the socket's reads, never reused: kept as they are, and a single one
    // (the usual unary answer) is the body without a copy.
    if (this.first === undefined) this.first = chunk;
    else (this.chunks ??= [this.first]).push(chunk);
  }

  onResponseEnd(): void {
    this.ended = true;
    if (this.stream) {
      this.stream.push(null);
      return;
    }
    if (!this.discard) {
      this.body = this.chunks ? Buffer.concat(this.chunks, this.size) : (this.first ?? EMPTY);
    }
    this.resolve();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.ended = true;
    if (this.stream) this.stream.destroy(error);
    else this.reject(error);
  }
}
