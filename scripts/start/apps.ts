import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { env, loadConfig } from '@lib/config';

/** A service `npm start` runs. */
export interface AppDefinition {
  /** Its folder under `apps/`; the built entry is `dist/apps/<name>/src/main.js`. */
  readonly name: string;
  /** HTTP port of its first process. */
  readonly port: number;
  /** For a service that runs as several processes: the variable saying how many, and the port of the second one. */
  readonly replicas?: {
    readonly variable: string;
    readonly extraPortsFrom: number;
    readonly max: number;
    readonly why?: string;
  };
}

/** Every service, in start order, one line each; a service runs only once its entry is built. */
export const APPS: readonly AppDefinition[] = [
  { name: 'publisher', port: 3000 },
  {
    name: 'aggregator',
    port: 3001,
    // replicas share the partitions among themselves (leases, rendezvous hashing)
    replicas: { variable: 'AGGREGATOR_REPLICAS', extraPortsFrom: 3101, max: 8 },
  },
  { name: 'chat-gateway', port: 3002 },
  { name: 'lock-service', port: 3003 },
  {
    name: 'cache-service',
    port: 3004,
    // replicas keep their memories coherent through NATS invalidations and leases in Postgres
    replicas: { variable: 'CACHE_REPLICAS', extraPortsFrom: 3104, max: 5 },
  },
];

/** One process of a service. */
export interface AppInstance {
  /** Unique: the service name, then `-1`, `-2` … for extra replicas (matching the last digit of their port). */
  readonly name: string;
  readonly app: AppDefinition;
  readonly port: number;
  /** Absolute path of the built entry file. */
  readonly entry: string;
}

/** The built entry file of `app` under `root`. */
export function entryOf(root: string, app: AppDefinition): string {
  return join(root, 'dist', 'apps', app.name, 'src', 'main.js');
}

/**
 * The processes to run: every replica of every built service; and the services skipped because their
 * entry is not built. Throws a `ConfigError` naming a bad replica count.
 */
export function planApps(
  root: string,
  source: NodeJS.ProcessEnv = process.env,
): { instances: AppInstance[]; notBuilt: AppDefinition[] } {
  const instances: AppInstance[] = [];
  const notBuilt: AppDefinition[] = [];
  for (const app of APPS) {
    const count = replicaCount(app, source);
    const entry = entryOf(root, app);
    if (!existsSync(entry)) {
      notBuilt.push(app);
      continue;
    }
    instances.push({ name: app.name, app, port: app.port, entry });
    for (let i = 1; i < count && app.replicas; i++) {
      instances.push({ name: `${app.name}-${i}`, app, port: app.replicas.extraPortsFrom + i - 1, entry });
    }
  }
  return { instances, notBuilt };
}

function replicaCount(app: AppDefinition, source: NodeJS.ProcessEnv): number {
  if (!app.replicas) return 1;
  const { variable, max, why } = app.replicas;
  const spec = {
    [variable]: env.int(1, `Number of ${app.name} processes npm start runs${why ? ` (${why})` : ''}`, {
      min: 1,
      max,
    }),
  };
  return loadConfig(spec, source)[variable];
}
