import { hash, timingSafeEqual } from 'node:crypto';

export function sha256Hex(value: string): string {
  // One-shot: no Hash object per call (the edge hashes the presented key on every request).
  return hash('sha256', value, 'hex');
}

/** Constant-time comparison of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a.toLowerCase(), 'hex');
  const right = Buffer.from(b.toLowerCase(), 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

/** How every generated key secret begins (`mcpgw_` + 43 base64url characters): scanners know it. */
export const SECRET_PREFIX = 'mcpgw_';

/**
 * Whether text is shaped like a key secret: the generated prefix, anywhere in it. Such text is
 * never logged or stored where an id belongs (a key id may not have that shape, so an id that
 * does is a secret pasted in the wrong place).
 */
export function looksLikeSecret(text: string): boolean {
  return text.toLowerCase().includes(SECRET_PREFIX);
}

/** Text with every path segment shaped like a secret replaced, for a log line. */
export function redactSecrets(path: string): string {
  return path
    .split('/')
    .map((segment) => (looksLikeSecret(safeDecode(segment)) ? '[redacted]' : segment))
    .join('/');
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Paths pino must censor on every log line: keys, bearer tokens, session secrets. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'key',
  '*.key',
  'apiKey',
  '*.apiKey',
];

/**
 * The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. Never the
 * query string (URLs end up in logs and browser history).
 */
export function presentedKey(
  headers: Record<string, string | string[] | undefined>,
): string | undefined {
  const authorization = single(headers.authorization);
  if (authorization !== undefined) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = single(headers['x-api-key'])?.trim();
  return apiKey ? apiKey : undefined;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
