import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import { ERROR_MAP, ErrorCode, GatewayError } from '#common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BadRequest,
  401: ErrorCode.Unauthorized,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
  405: ErrorCode.MethodNotAllowed,
  406: ErrorCode.NotAcceptable,
  413: ErrorCode.PayloadTooLarge,
  415: ErrorCode.UnsupportedMediaType,
  429: ErrorCode.RateLimited,
  503: ErrorCode.Unavailable,
};

/**
 * The one place analytics errors become HTTP: `{ error: { code, message, requestId } }` with
 * the code's status (SPEC §4). Anything unexpected is logged and answered as a bare 500.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    let code: ErrorCode;
    let message: string;
    let headers: Record<string, string> = {};
    if (exception instanceof GatewayError) {
      code = exception.code;
      message = exception.message;
      headers = exception.headers;
    } else if (exception instanceof HttpException) {
      code = CODE_BY_STATUS[exception.getStatus()] ?? ErrorCode.Internal;
      message =
        code === ErrorCode.NotFound
          ? `no route ${request.method} ${request.url.split('?')[0]}`
          : code === ErrorCode.UnsupportedMediaType
            ? 'Unsupported Media Type: a body is application/json'
            : exception.message;
    } else {
      code = ErrorCode.Internal;
      message = 'internal error';
      this.logger.error({ err: exception, request_id: request.id }, 'request failed');
    }
    void reply
      .status(ERROR_MAP[code].status)
      .headers(headers)
      .send({ error: { code, message, requestId: request.id } });
  }
}
