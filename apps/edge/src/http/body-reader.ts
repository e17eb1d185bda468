import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, GatewayError } from '#common';

/** Whether a request has a body to read: a Content-Length above 0, or chunked. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** A refused body's connection is closed once the answer is out: nothing more is read from it. */
const CLOSE = { Connection: 'close' };

export interface BodyLimits {
  /** `server.max_body_bytes` */
  maxBytes: number;
  /** `server.request_timeout`, counted from when the request's headers arrived. */
  timeoutMs: number;
}

/**
 * Reads a body raw (never parsed by a framework), so the bytes the gateway inspects are the
 * bytes it forwards, within the limits: a declared Content-Length over `maxBytes` is refused
 * before a byte is read (413), a body that grows past it when its count does, and a body still
 * incomplete after `timeoutMs` (trickled, or endless) gets 408. A refused body is not read any
 * further: the answer says `Connection: close`, and the connection is closed after it, so a
 * client cannot keep the edge reading (or waiting for) what it will never use.
 */
export function readBody(
  req: IncomingMessage,
  limits: BodyLimits,
  done: (error: GatewayError | null, body?: Buffer) => void,
  res?: ServerResponse,
): void {
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let settled = false;
  const tooLarge = () =>
    new GatewayError(ErrorCode.PayloadTooLarge, `Body larger than ${limits.maxBytes} bytes`, CLOSE);
  function refuse(error: GatewayError): void {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    req.removeListener('data', onData);
    first = chunks = undefined;
    done(error);
    lingerThenClose(req, limits.maxBytes);
  }
  function onData(chunk: Buffer): void {
    size += chunk.length;
    if (size > limits.maxBytes) return refuse(tooLarge());
    // A body usually arrives in one chunk: kept as it is, without a copy.
    if (first === undefined) first = chunk;
    else (chunks ??= [first]).push(chunk);
  }
  const timer = setTimeout(
    () =>
      refuse(
        new GatewayError(
          ErrorCode.RequestTimeout,
          'Request Timeout: the body took too long',
          CLOSE,
        ),
      ),
    limits.timeoutMs,
  );
  if (Number(req.headers['content-length'] ?? NaN) > limits.maxBytes) return refuse(tooLarge());
  // A client waiting for `100 Continue` (Expect: 100-continue) is told to send only now, once the
  // declared length is judged: a body over the limit is refused before it is uploaded.
  if (res && req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
  req.on('data', onData);
  req.on('end', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(null, chunks ? Buffer.concat(chunks, size) : (first ?? Buffer.alloc(0)));
  });
  req.on('error', () =>
    refuse(new GatewayError(ErrorCode.BadRequest, 'Bad request: the body could not be read')),
  );
}

/** How long a refused body may keep arriving (discarded) before its connection is cut. */
const LINGER_MS = 2_000;

/**
 * After a refusal (answered with `Connection: close`) the rest of the body is read and dropped
 * for a short while, at most `maxBytes` of it, so the client can read the answer (closing on
 * unread data would reset the connection under it); then the connection is cut. An endless or
 * trickled body costs the edge two seconds, not a connection for good.
 */
function lingerThenClose(req: IncomingMessage, maxBytes: number): void {
  const socket = req.socket;
  let discarded = 0;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > maxBytes) socket.destroy();
  });
  req.resume();
}
