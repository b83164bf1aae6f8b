import { createHash } from 'node:crypto';

/**
 * The NOTIFY channel of a schema's lock grants; the migration's `lock_channel()` computes the same.
 * Notifications are database-wide, so the schema is part of the name (hashed: a channel name has at
 * most 63 bytes).
 */
export function lockChannel(schema: string): string {
  return `locks_${createHash('md5').update(schema).digest('hex').slice(0, 16)}`;
}
