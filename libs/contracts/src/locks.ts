/**
 * The contract of the lock service, for its HTTP clients and for services calling it over NATS
 * request/reply. A request on a subject carries the same JSON as the HTTP body plus `resource`; the
 * reply is the HTTP answer's body (an error reply has `statusCode` and `error`, like `ErrorBody`).
 */
export type LockMode = 'exclusive' | 'shared';
export const LOCK_MODES: readonly LockMode[] = ['exclusive', 'shared'];

/** A resource name: what may follow `/locks/` in a URL without escaping (the HTTP router takes at most 100 characters). */
export const LOCK_RESOURCE_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;
/** A client id: who holds or waits; it is the node of the wait-for graph. */
export const LOCK_CLIENT_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** A granted lock. `token` strictly increases per resource, across every replica: the fencing token. */
export interface LockGrant {
  resource: string;
  client_id: string;
  mode: LockMode;
  token: number;
  /** When the lease ends unless renewed (ISO-8601). */
  expires_at: string;
}

/** Codes of the lock service's refusals (all `409`), beside the common `ErrorCode`s. */
export const LockErrorCode = {
  /** `wait_ms` 0 and the lock is not free for this mode now. */
  Conflict: 'LOCK_CONFLICT',
  /** `wait_ms` elapsed before the lock was granted. */
  Timeout: 'LOCK_TIMEOUT',
  /** Waiting would close a cycle in the wait-for graph; `cycle` names it. */
  Deadlock: 'DEADLOCK',
  /** The client already holds or awaits the resource in the other mode (no upgrades). */
  ModeMismatch: 'LOCK_MODE_MISMATCH',
  /** Release or renew by someone who is not the live holder (client id + token). */
  NotHolder: 'NOT_HOLDER',
  /** Release or renew of a lease that ran out first. */
  LeaseExpired: 'LEASE_EXPIRED',
  /** A newer acquire of the same client for the same resource took over this wait. */
  Superseded: 'LOCK_REQUEST_SUPERSEDED',
} as const;
export type LockErrorCode = (typeof LockErrorCode)[keyof typeof LockErrorCode];

/** One edge of a wait-for cycle: `client` waits for `resource`, which `blocked_by` holds or queued for first. */
export interface CycleEdge {
  client: string;
  resource: string;
  blocked_by: string;
  blocker_state: 'held' | 'waiting';
}

/** The NATS subjects of the lock service (request/reply, one queue group over the replicas). */
export interface LockSubjects {
  acquire: string;
  release: string;
  renew: string;
  get: string;
  list: string;
  audit: string;
}

/** Subject suffixes after `<namespace>.`; the service subscribes to each under its namespace. */
export const LOCK_SUBJECT_SUFFIXES: LockSubjects = {
  acquire: 'locks.acquire',
  release: 'locks.release',
  renew: 'locks.renew',
  get: 'locks.get',
  list: 'locks.list',
  audit: 'locks.audit',
};

export function lockSubjects(namespace: string): LockSubjects {
  const subject = (suffix: string): string => `${namespace}.${suffix}`;
  const s = LOCK_SUBJECT_SUFFIXES;
  return {
    acquire: subject(s.acquire),
    release: subject(s.release),
    renew: subject(s.renew),
    get: subject(s.get),
    list: subject(s.list),
    audit: subject(s.audit),
  };
}
