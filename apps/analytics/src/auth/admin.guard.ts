import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Inject,
  Injectable,
} from '@nestjs/common';
import type { Principal } from '#common';
import type { FastifyRequest } from 'fastify';
import { AdminAuthenticator } from './admin-authenticator.js';

// The principal travels with the request from the guard to the handler.
const principals = new WeakMap<FastifyRequest, Principal>();

/** Lets through requests carrying a valid admin key; everything else is answered by the error filter. */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(@Inject(AdminAuthenticator) private readonly authenticator: AdminAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    principals.set(request, await this.authenticator.authenticate(request.headers, request.raw));
    return true;
  }
}

/** The admin principal AdminGuard authenticated for this request. */
export const AdminPrincipal = createParamDecorator(
  (_: unknown, context: ExecutionContext): Principal => {
    const principal = principals.get(context.switchToHttp().getRequest<FastifyRequest>());
    if (!principal) throw new Error('AdminPrincipal used on a route without AdminGuard');
    return principal;
  },
);
