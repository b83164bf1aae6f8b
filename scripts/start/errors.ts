/** A start-up problem the user can fix; `npm start` prints its message alone, without a stack trace. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** One readable line for any thrown value (a refused connection to `localhost` is an `AggregateError` with no message). */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describeError))].join('; ');
  }
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** `url` with its password replaced by `***`, for printing. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
