import { ERROR_MAP, ErrorCode, GatewayError } from './error-codes.js';

describe('ERROR_MAP', () => {
  it('maps every ErrorCode, to an HTTP error status and a JSON-RPC error code', () => {
    for (const code of Object.values(ErrorCode)) {
      const mapping = ERROR_MAP[code] as (typeof ERROR_MAP)[ErrorCode] | undefined;
      expect([code, typeof mapping?.status, typeof mapping?.rpcCode]).toEqual([
        code,
        'number',
        'number',
      ]);
      if (!mapping) continue;
      expect(mapping.status).toBeGreaterThanOrEqual(400);
      expect(mapping.status).toBeLessThan(600);
      expect(Number.isInteger(mapping.rpcCode) && mapping.rpcCode < 0).toBe(true);
    }
    expect(Object.keys(ERROR_MAP).sort()).toEqual(Object.values(ErrorCode).sort());
  });

  // SPEC §4: the status (and, where the SPEC fixes one, the JSON-RPC code) of each situation.
  it.each<[string, number, number | undefined]>([
    ['unauthorized', 401, undefined],
    ['forbidden_namespace', 403, undefined],
    ['forbidden_origin', 403, undefined],
    ['unknown_namespace', 404, undefined],
    ['unknown_session', 404, undefined],
    ['parse_error', 400, -32700],
    ['invalid_request', 400, -32600],
    ['payload_too_large', 413, undefined],
    ['rate_limited', 429, undefined],
    ['too_many_auth_failures', 429, undefined],
    ['auth_unavailable', 503, undefined],
    ['upstream_error', 502, undefined],
    ['upstream_timeout', 504, undefined],
    ['header_mismatch', 400, -32020],
    ['missing_capability', 400, -32021],
    ['unsupported_protocol_version', 400, -32022],
    ['method_not_found', 404, -32601],
    ['invalid_params', 400, -32602],
  ])('maps %s to HTTP %i', (code, status, rpcCode) => {
    expect(Object.values(ErrorCode)).toContain(code);
    const mapping = ERROR_MAP[code as ErrorCode];
    expect(mapping.status).toBe(status);
    if (rpcCode !== undefined) expect(mapping.rpcCode).toBe(rpcCode);
  });

  it('reserves JSON-RPC -32700 for parse_error', () => {
    // -32700 means "not JSON" to every MCP client; no other situation may claim it.
    const parse = Object.values(ErrorCode).filter((code) => ERROR_MAP[code].rpcCode === -32700);
    expect(parse).toEqual([ErrorCode.ParseError]);
  });
});

describe('GatewayError', () => {
  it('carries its code, message, headers and the mapped status', () => {
    const error = new GatewayError(ErrorCode.RateLimited, 'slow down', { 'Retry-After': '3' });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('GatewayError');
    expect(error.code).toBe('rate_limited');
    expect(error.message).toBe('slow down');
    expect(error.headers).toEqual({ 'Retry-After': '3' });
    expect(error.status).toBe(429);
  });

  it('has no headers unless given', () => {
    expect(new GatewayError(ErrorCode.Unauthorized, 'no').headers).toEqual({});
  });
});
