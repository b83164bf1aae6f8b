/**
 * A declarative description of environment variables: each entry parses one variable, applies its
 * default and reports a readable problem naming the variable. `loadConfig` collects every problem
 * before failing, so a bad deployment shows all its mistakes at once.
 */
export interface EnvVar<T> {
  readonly description: string;
  parse(raw: string | undefined): T;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

class VariableProblem extends Error {}

export const env = {
  string(defaultValue: string, description: string, pattern?: RegExp): EnvVar<string> {
    return {
      description,
      parse(raw) {
        const value = raw === undefined || raw === '' ? defaultValue : raw;
        if (pattern && !pattern.test(value))
          throw new VariableProblem(`"${value}" must match ${pattern.source}`);
        return value;
      },
    };
  },
  optional(description: string): EnvVar<string | undefined> {
    return {
      description,
      parse: (raw) => (raw === undefined || raw === '' ? undefined : raw),
    };
  },
  int(defaultValue: number, description: string, range: { min?: number; max?: number } = {}): EnvVar<number> {
    return {
      description,
      parse(raw) {
        if (raw === undefined || raw === '') return defaultValue;
        if (!/^-?\d+$/.test(raw.trim())) throw new VariableProblem(`"${raw}" is not a whole number`);
        const value = Number(raw);
        if (range.min !== undefined && value < range.min)
          throw new VariableProblem(`${value} is below ${range.min}`);
        if (range.max !== undefined && value > range.max)
          throw new VariableProblem(`${value} is above ${range.max}`);
        return value;
      },
    };
  },
  bool(defaultValue: boolean, description: string): EnvVar<boolean> {
    return {
      description,
      parse(raw) {
        if (raw === undefined || raw === '') return defaultValue;
        if (/^(1|true|yes|on)$/i.test(raw)) return true;
        if (/^(0|false|no|off)$/i.test(raw)) return false;
        throw new VariableProblem(`"${raw}" is not a boolean (true/false)`);
      },
    };
  },
  oneOf<T extends string>(values: readonly T[], defaultValue: T, description: string): EnvVar<T> {
    return {
      description,
      parse(raw) {
        const value = raw === undefined || raw === '' ? defaultValue : raw;
        if (!(values as readonly string[]).includes(value)) {
          throw new VariableProblem(`"${value}" is not one of ${values.join(', ')}`);
        }
        return value as T;
      },
    };
  },
  url(defaultValue: string, description: string, protocols: string[]): EnvVar<string> {
    return {
      description,
      parse(raw) {
        const value = raw === undefined || raw === '' ? defaultValue : raw;
        for (const part of value.split(',')) {
          let url: URL;
          try {
            url = new URL(part.trim());
          } catch {
            throw new VariableProblem(`"${part}" is not a URL`);
          }
          if (!protocols.includes(url.protocol)) {
            throw new VariableProblem(`"${part}" must use ${protocols.join(' or ')}`);
          }
        }
        return value;
      },
    };
  },
};

export type EnvSpec = Record<string, EnvVar<unknown>>;
export type ConfigOf<S extends EnvSpec> = {
  readonly [K in keyof S]: S[K] extends EnvVar<infer T> ? T : never;
};

/** Parses `source` (default `process.env`) against `spec`, or throws one `ConfigError` naming every bad variable. */
export function loadConfig<S extends EnvSpec>(spec: S, source: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const problems: string[] = [];
  const result: Record<string, unknown> = {};
  for (const [name, variable] of Object.entries(spec)) {
    try {
      result[name] = variable.parse(source[name]);
    } catch (error) {
      if (!(error instanceof VariableProblem)) throw error;
      problems.push(`${name}: ${error.message} (${variable.description})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return result as ConfigOf<S>;
}
