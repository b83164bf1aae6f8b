import { ValidationFailedError } from '@lib/contracts';

/**
 * 1–100 characters of letters, digits and `. _ : -` (e.g. `user:1`): safe in a URL path without
 * encoding.
 */
export const CACHE_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;

/** Path segments of the API that cannot be read back through `GET /cache/:key`. */
const RESERVED_KEYS = new Set(['stats']);

/** Throws a 400 naming the `key` field unless `key` is a valid cache key. */
export function checkKey(key: unknown): asserts key is string {
  let problem: string | undefined;
  if (typeof key !== 'string') problem = 'must be a string';
  else if (!CACHE_KEY_PATTERN.test(key)) problem = 'must be 1–100 characters of A-Z a-z 0-9 . _ : -';
  else if (RESERVED_KEYS.has(key)) problem = `"${key}" is reserved (GET /cache/${key} is an API route)`;
  if (problem) throw new ValidationFailedError(`key ${problem}`, [{ field: 'key', message: problem }]);
}
