import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { UnauthorizedError } from '@lib/contracts';

import { ApiKeyGuard } from './api-key.guard.js';

function httpContext(method: string, headers: Record<string, string> = {}): ExecutionContext {
  return {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => ({ method, headers }) }),
  } as unknown as ExecutionContext;
}

describe(ApiKeyGuard.name, () => {
  it('lets everything through when no key is configured', () => {
    expect(new ApiKeyGuard(undefined).canActivate(httpContext('POST'))).toBe(true);
    expect(new ApiKeyGuard('').canActivate(httpContext('DELETE'))).toBe(true);
  });

  it('leaves reads open', () => {
    const guard = new ApiKeyGuard('s3cret');
    for (const method of ['GET', 'HEAD', 'OPTIONS'])
      expect(guard.canActivate(httpContext(method))).toBe(true);
  });

  it('refuses a write without the key, or with a wrong one', () => {
    const guard = new ApiKeyGuard('s3cret');
    expect(() => guard.canActivate(httpContext('POST'))).toThrow(UnauthorizedError);
    expect(() => guard.canActivate(httpContext('PUT', { 'x-api-key': 's3cre' }))).toThrow('wrong');
    expect(() => guard.canActivate(httpContext('DELETE', { authorization: 'Basic s3cret' }))).toThrow(
      UnauthorizedError,
    );
  });

  it('accepts the key in x-api-key or as a bearer token', () => {
    const guard = new ApiKeyGuard('s3cret');
    expect(guard.canActivate(httpContext('POST', { 'x-api-key': 's3cret' }))).toBe(true);
    expect(guard.canActivate(httpContext('PUT', { authorization: 'Bearer s3cret' }))).toBe(true);
  });

  it('does not guard other transports', () => {
    const rpc = { getType: () => 'rpc' } as unknown as ExecutionContext;
    expect(new ApiKeyGuard('s3cret').canActivate(rpc)).toBe(true);
  });
});
