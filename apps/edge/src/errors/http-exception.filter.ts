import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '#common';
import { errorBody } from './error-response.js';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BadRequest,
  401: ErrorCode.Unauthorized,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
  405: ErrorCode.MethodNotAllowed,
};

/** Non-MCP routes (unknown paths included) answer the same JSON error envelope (SPEC §4). */
@Catch()
export class JsonErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    const code = CODE_BY_STATUS[status] ?? ErrorCode.Internal;
    const message =
      status === 404
        ? `Not found: ${request.method} ${request.url.split('?')[0]}`
        : status >= 500
          ? 'Internal error'
          : (exception as Error).message;
    void reply
      .code(status)
      .type('application/json')
      .send(errorBody(code, message, String(request.id)));
  }
}
