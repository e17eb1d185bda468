import type { IncomingMessage } from 'node:http';
import { ErrorCode, GatewayError } from '#common';

/** Whether a request has a body to read: a Content-Length above 0, or chunked. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads a body of at most `limit` bytes, raw (never parsed by a framework), so the bytes the
 * gateway inspects are the bytes it forwards: refused at once from Content-Length, otherwise
 * when the count passes the limit (the rest is discarded, not buffered).
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  done: (error: GatewayError | null, body?: Buffer) => void,
): void {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) {
    done(new GatewayError(ErrorCode.PayloadTooLarge, `Body larger than ${limit} bytes`));
    req.resume(); // discard, do not buffer
    return;
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let failed = false;
  req.on('data', (chunk: Buffer) => {
    if (failed) return;
    size += chunk.length;
    if (size > limit) {
      failed = true;
      first = undefined;
      chunks = undefined;
      done(new GatewayError(ErrorCode.PayloadTooLarge, `Body larger than ${limit} bytes`));
      return;
    }
    // A body usually arrives in one chunk: kept as it is, without a copy.
    if (first === undefined) first = chunk;
    else (chunks ??= [first]).push(chunk);
  });
  req.on('end', () => {
    if (failed) return;
    done(null, chunks ? Buffer.concat(chunks, size) : (first ?? Buffer.alloc(0)));
  });
  req.on('error', () => {
    if (failed) return;
    failed = true;
    done(new GatewayError(ErrorCode.BadRequest, 'Bad request: the body could not be read'));
  });
}
