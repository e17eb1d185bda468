/** Machine-readable error codes of SPEC §4, with the HTTP status and JSON-RPC code each maps to. */
export enum ErrorCode {
  Unauthorized = 'unauthorized',
  ForbiddenNamespace = 'forbidden_namespace',
  ForbiddenOrigin = 'forbidden_origin',
  UnknownNamespace = 'unknown_namespace',
  UnknownSession = 'unknown_session',
  ParseError = 'parse_error',
  InvalidRequest = 'invalid_request',
  PayloadTooLarge = 'payload_too_large',
  RequestTimeout = 'request_timeout',
  RateLimited = 'rate_limited',
  TooManySessions = 'too_many_sessions',
  TooManyAuthFailures = 'too_many_auth_failures',
  AuthUnavailable = 'auth_unavailable',
  UpstreamError = 'upstream_error',
  UpstreamTimeout = 'upstream_timeout',
  NotFound = 'not_found',
  MethodNotAllowed = 'method_not_allowed',
  NotAcceptable = 'not_acceptable',
  UnsupportedMediaType = 'unsupported_media_type',
  HeaderMismatch = 'header_mismatch',
  BadRequest = 'bad_request',
  UriTooLong = 'uri_too_long',
  Forbidden = 'forbidden',
  /** (v2) The admin API: the key id is taken, or a file key cannot be changed there. */
  Conflict = 'conflict',
  /** (v2) The admin API: a tenant admin asked for a key with more access than it has itself. */
  ExceedsGrant = 'exceeds_grant',
  InsufficientScope = 'insufficient_scope',
  Unavailable = 'unavailable',
  Internal = 'internal_error',
  /** (v2) 2026-07-28: a method the revision does not have (`ping`, `initialize`, …). */
  MethodNotFound = 'method_not_found',
  /** (v2) 2026-07-28: a request without the `_meta` envelope the revision requires. */
  InvalidParams = 'invalid_params',
  /** (v2) 2026-07-28: the request needs a client capability its envelope does not declare. */
  MissingCapability = 'missing_capability',
  /** (v2) A stateless request naming a protocol revision the endpoint does not speak. */
  UnsupportedProtocolVersion = 'unsupported_protocol_version',
}

export interface ErrorMapping {
  status: number;
  /** JSON-RPC error code used when the failing request carried a JSON-RPC id. */
  rpcCode: number;
}

// JSON-RPC codes: -32700 parse, -32600 invalid request, -32602 invalid params, -32603 internal;
// -32000..-32099 are implementation-defined server errors.
export const ERROR_MAP: Record<ErrorCode, ErrorMapping> = {
  [ErrorCode.Unauthorized]: { status: 401, rpcCode: -32001 },
  [ErrorCode.ForbiddenNamespace]: { status: 403, rpcCode: -32003 },
  [ErrorCode.ForbiddenOrigin]: { status: 403, rpcCode: -32003 },
  [ErrorCode.UnknownNamespace]: { status: 404, rpcCode: -32004 },
  [ErrorCode.UnknownSession]: { status: 404, rpcCode: -32001 },
  [ErrorCode.ParseError]: { status: 400, rpcCode: -32700 },
  [ErrorCode.InvalidRequest]: { status: 400, rpcCode: -32600 },
  [ErrorCode.PayloadTooLarge]: { status: 413, rpcCode: -32600 },
  [ErrorCode.RequestTimeout]: { status: 408, rpcCode: -32600 },
  [ErrorCode.RateLimited]: { status: 429, rpcCode: -32029 },
  [ErrorCode.TooManySessions]: { status: 429, rpcCode: -32029 },
  [ErrorCode.TooManyAuthFailures]: { status: 429, rpcCode: -32029 },
  [ErrorCode.AuthUnavailable]: { status: 503, rpcCode: -32053 },
  [ErrorCode.UpstreamError]: { status: 502, rpcCode: -32052 },
  [ErrorCode.UpstreamTimeout]: { status: 504, rpcCode: -32054 },
  [ErrorCode.NotFound]: { status: 404, rpcCode: -32004 },
  [ErrorCode.MethodNotAllowed]: { status: 405, rpcCode: -32600 },
  [ErrorCode.NotAcceptable]: { status: 406, rpcCode: -32600 },
  [ErrorCode.UnsupportedMediaType]: { status: 415, rpcCode: -32600 },
  [ErrorCode.HeaderMismatch]: { status: 400, rpcCode: -32020 },
  [ErrorCode.BadRequest]: { status: 400, rpcCode: -32600 },
  [ErrorCode.UriTooLong]: { status: 414, rpcCode: -32600 },
  [ErrorCode.Forbidden]: { status: 403, rpcCode: -32003 },
  [ErrorCode.Conflict]: { status: 409, rpcCode: -32600 },
  [ErrorCode.ExceedsGrant]: { status: 403, rpcCode: -32003 },
  [ErrorCode.InsufficientScope]: { status: 403, rpcCode: -32003 },
  [ErrorCode.Unavailable]: { status: 503, rpcCode: -32053 },
  [ErrorCode.Internal]: { status: 500, rpcCode: -32603 },
  [ErrorCode.MethodNotFound]: { status: 404, rpcCode: -32601 },
  [ErrorCode.InvalidParams]: { status: 400, rpcCode: -32602 },
  [ErrorCode.MissingCapability]: { status: 400, rpcCode: -32021 },
  [ErrorCode.UnsupportedProtocolVersion]: { status: 400, rpcCode: -32022 },
};

/** An error the gateway answers on purpose; mapped to HTTP + JSON-RPC once, at the boundary. */
export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More for the JSON-RPC error's `data` (beside `code` and `requestId`). */
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'GatewayError';
  }

  get status(): number {
    return ERROR_MAP[this.code].status;
  }
}
