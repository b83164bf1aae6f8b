import { describe, expect, it } from '@jest/globals';
import { ValidationFailedError } from '@lib/contracts';
import { toErrorBody } from '@lib/observability';

import { DeadlockError, describeCycle, LockConflictError, NotHolderError } from './locks.errors.js';

describe(describeCycle.name, () => {
  it('reads a cycle from the requesting client round to it again', () => {
    expect(
      describeCycle([
        { client: 'A', resource: 'Q', blocked_by: 'B', blocker_state: 'held' },
        { client: 'B', resource: 'P', blocked_by: 'A', blocker_state: 'held' },
      ]),
    ).toBe('A → Q held by B → P held by A');
  });

  it('says when the blocker is a request queued first rather than a holder', () => {
    expect(
      describeCycle([
        { client: 'A', resource: 'Q', blocked_by: 'B', blocker_state: 'waiting' },
        { client: 'B', resource: 'P', blocked_by: 'A', blocker_state: 'held' },
      ]),
    ).toBe('A → Q queued first by B → P held by A');
  });
});

describe('lock errors in the product error body', () => {
  it('answers a deadlock with 409, its code, the cycle as text and as a path', () => {
    const cycle = [
      { client: 'A', resource: 'Q', blocked_by: 'B', blocker_state: 'held' as const },
      { client: 'B', resource: 'P', blocked_by: 'A', blocker_state: 'held' as const },
    ];
    expect(toErrorBody(new DeadlockError('Q', cycle), 'corr').body).toEqual({
      statusCode: 409,
      error: 'DEADLOCK',
      message: 'waiting for Q would close a wait-for cycle: A → Q held by B → P held by A',
      resource: 'Q',
      cycle: 'A → Q held by B → P held by A',
      cycle_path: cycle,
      correlation_id: 'corr',
    });
  });

  it('maps every refusal to 409 with its own code', () => {
    const holders = [{ client_id: 'a', mode: 'shared' as const, granted_at: 'x', expires_at: 'y' }];
    expect(toErrorBody(new LockConflictError('r', holders)).body).toMatchObject({
      statusCode: 409,
      error: 'LOCK_CONFLICT',
      holders,
    });
    expect(toErrorBody(new NotHolderError('r', 'c')).body).toMatchObject({
      statusCode: 409,
      error: 'NOT_HOLDER',
    });
  });

  it('leaves the product errors to the common mapping', () => {
    const error = new ValidationFailedError('ttl_ms: too long', [{ field: 'ttl_ms', message: 'too long' }]);
    expect(toErrorBody(error).body).toMatchObject({
      statusCode: 400,
      error: 'VALIDATION_FAILED',
      details: [{ field: 'ttl_ms', message: 'too long' }],
    });
    expect(toErrorBody(new Error('boom')).body).toMatchObject({ statusCode: 500, error: 'INTERNAL' });
  });
});
