import { createHash, timingSafeEqual } from 'node:crypto';

import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { UnauthorizedError } from '@lib/contracts';
import type { FastifyRequest } from 'fastify';

/** Methods that change nothing: never need the key, so probes, metrics, docs and reads stay open. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Optional API-key auth on write endpoints: when a key is configured, every HTTP request other than
 * GET/HEAD/OPTIONS must carry it in `x-api-key` or `Authorization: Bearer <key>`, else `401`.
 * Compared in constant time (over digests, so the length leaks nothing either). Only HTTP is guarded:
 * NATS request/reply is protected by NATS's own user permissions.
 */
export class ApiKeyGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(apiKey: string | undefined) {
    this.expected = apiKey === undefined || apiKey === '' ? undefined : digest(apiKey);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.expected === undefined || context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (READ_METHODS.has(request.method)) return true;
    const presented = keyOf(request);
    if (presented !== undefined && timingSafeEqual(digest(presented), this.expected)) return true;
    throw new UnauthorizedError(
      presented === undefined
        ? 'this endpoint needs the API key: send it in x-api-key or Authorization: Bearer <key>'
        : 'the API key is wrong',
    );
  }
}

function keyOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const authorization = request.headers.authorization;
  const bearer = authorization === undefined ? undefined : /^Bearer\s+(\S+)$/i.exec(authorization);
  return bearer?.[1];
}
