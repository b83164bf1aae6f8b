/** What the command-line tools share to read their options: one error kind, one integer rule. */

/** A bad command line: the tool prints the message and its usage, and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `--name`'s whole number between `min` and `max`, `fallback` when not given; a `UsageError` otherwise. */
export function integerOption(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const trimmed = raw.trim();
  if (!/^\d+$/.test(trimmed)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  const value = Number(trimmed);
  if (value < min || value > max)
    throw new UsageError(`--${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}
