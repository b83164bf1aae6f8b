import { type CycleEdge, DomainError, LockErrorCode, type LockMode } from '@lib/contracts';

/** A holder as refusals show it (its token is the holder's to present, so it is left out). */
export interface HolderView {
  client_id: string;
  mode: LockMode;
  granted_at: string;
  expires_at: string;
}

/**
 * Base of the lock service's refusals: a stable `code`, the HTTP `status` (409) and the extra fields
 * its body carries. The same error is answered over HTTP (the global filter) and NATS (`RpcErrorFilter`).
 */
export abstract class LockError extends DomainError {
  abstract override readonly code: LockErrorCode;
  override readonly status: number = 409;

  constructor(
    message: string,
    override readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class LockConflictError extends LockError {
  readonly code = LockErrorCode.Conflict;
  constructor(resource: string, holders: HolderView[]) {
    super(`${resource} is locked in a conflicting mode (or others queue for it first)`, {
      resource,
      holders,
    });
  }
}

export class LockTimeoutError extends LockError {
  readonly code = LockErrorCode.Timeout;
  constructor(resource: string, waitMs: number, holders: HolderView[]) {
    super(`${resource} was not granted within wait_ms ${waitMs}`, { resource, holders });
  }
}

/** Formats a cycle the way people read it: `A → Q held by B → P held by A`. */
export function describeCycle(cycle: CycleEdge[]): string {
  const steps = cycle.map(
    (edge) =>
      `${edge.resource} ${edge.blocker_state === 'held' ? 'held by' : 'queued first by'} ${edge.blocked_by}`,
  );
  return [cycle[0]?.client ?? '?', ...steps].join(' → ');
}

export class DeadlockError extends LockError {
  readonly code = LockErrorCode.Deadlock;
  constructor(resource: string, cycle: CycleEdge[]) {
    const text = describeCycle(cycle);
    super(`waiting for ${resource} would close a wait-for cycle: ${text}`, {
      resource,
      cycle: text,
      cycle_path: cycle,
    });
  }
}

export class LockModeMismatchError extends LockError {
  readonly code = LockErrorCode.ModeMismatch;
  constructor(resource: string, clientId: string, current: { mode: string; state: string }) {
    super(
      `${clientId} already ${current.state === 'held' ? 'holds' : 'waits for'} ${resource} in ${current.mode} mode; ` +
        'release it first (modes are not upgraded or downgraded)',
      { resource },
    );
  }
}

export class NotHolderError extends LockError {
  readonly code = LockErrorCode.NotHolder;
  constructor(resource: string, clientId: string) {
    super(`${clientId} holds no lease on ${resource} with this token`, { resource });
  }
}

export class LeaseExpiredError extends LockError {
  readonly code = LockErrorCode.LeaseExpired;
  constructor(resource: string, clientId: string) {
    super(`the lease of ${clientId} on ${resource} expired before this request`, { resource });
  }
}

export class WaitSupersededError extends LockError {
  readonly code = LockErrorCode.Superseded;
  constructor(resource: string, clientId: string) {
    super(`a newer acquire of ${clientId} for ${resource} took over this wait`, { resource });
  }
}
