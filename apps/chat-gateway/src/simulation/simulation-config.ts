import { CHAT_CONFIG_LIMITS, type ChatConfig, type FieldError } from '@lib/contracts';

const FIELDS = Object.keys(CHAT_CONFIG_LIMITS) as (keyof ChatConfig)[];

/**
 * Merges a partial update into `current` and checks the result: every problem is reported with its
 * field (unknown fields, wrong types, out-of-range values, min above max); nothing is clamped.
 */
export function mergeChatConfig(
  current: ChatConfig,
  update: unknown,
): { config: ChatConfig; problems: FieldError[] } {
  const problems: FieldError[] = [];
  if (typeof update !== 'object' || update === null || Array.isArray(update)) {
    return { config: current, problems: [{ field: 'config', message: 'must be an object' }] };
  }
  const next: ChatConfig = { ...current };
  for (const [field, value] of Object.entries(update)) {
    if (!FIELDS.includes(field as keyof ChatConfig)) {
      problems.push({ field, message: `is not a setting (settings: ${FIELDS.join(', ')})` });
      continue;
    }
    const key = field as keyof ChatConfig;
    if (key === 'seed' && value === null) {
      next.seed = null;
      continue;
    }
    const limits = CHAT_CONFIG_LIMITS[key];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      problems.push({ field, message: 'must be a number' });
    } else if (limits.integer && !Number.isInteger(value)) {
      problems.push({ field, message: 'must be a whole number' });
    } else if (value < limits.min || value > limits.max) {
      problems.push({ field, message: `must be between ${limits.min} and ${limits.max}, got ${value}` });
    } else {
      (next as Record<keyof ChatConfig, number | null>)[key] = value;
    }
  }
  if (problems.length === 0 && next.latency_max_ms < next.latency_min_ms) {
    problems.push({
      field: 'latency_max_ms',
      message: `must be at least latency_min_ms (${next.latency_min_ms}), got ${next.latency_max_ms}`,
    });
  }
  return { config: problems.length === 0 ? next : current, problems };
}
