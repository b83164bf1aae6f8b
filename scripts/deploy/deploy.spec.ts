import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { describe, expect, it } from '@jest/globals';
import { commonEnv } from '@lib/config';
import { parse, parseAllDocuments } from 'yaml';

import { aggregatorEnv } from '../../apps/aggregator/src/aggregator.env.js';
import { cacheServiceEnv } from '../../apps/cache-service/src/cache-service.env.js';
import { chatGatewayEnv } from '../../apps/chat-gateway/src/chat-gateway.env.js';
import { lockServiceEnv } from '../../apps/lock-service/src/lock-service.env.js';
import { publisherEnv } from '../../apps/publisher/src/publisher.env.js';
import { APPS } from '../start/apps.js';
import { GENERATED_FILES } from './render.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (path: string): string => readFileSync(resolve(ROOT, path), 'utf8');

/** The variables each service validates at start-up: anything else in a deploy file is a typo. */
const ENV_SPECS: Record<string, Record<string, unknown>> = {
  publisher: publisherEnv,
  aggregator: aggregatorEnv,
  'chat-gateway': chatGatewayEnv,
  'lock-service': lockServiceEnv,
  'cache-service': cacheServiceEnv,
};
const IMAGE = 'distributed-systems-toolkit:latest';

function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('deploy files', () => {
  it.each(Object.keys(GENERATED_FILES))('%s is what npm run deploy:render writes', (path) => {
    expect(read(path)).toBe(GENERATED_FILES[path]());
  });

  describe('docker-compose.yml', () => {
    interface ComposeService {
      image?: string;
      command?: string[];
      environment?: Record<string, string>;
      healthcheck?: { test: string[] };
      ports?: string[];
      container_name?: string;
      depends_on?: Record<string, { condition: string }>;
    }
    const compose = parse(read('docker-compose.yml'), { merge: true }) as {
      services: Record<string, ComposeService>;
      volumes: Record<string, unknown>;
    };

    it('validates with docker-compose (offline, with the example .env)', () => {
      if (!onPath('docker-compose'))
        throw new Error('docker-compose is missing: apt-get install docker-compose');
      execFileSync(
        'docker-compose',
        ['--env-file', '.env.example', '-f', 'docker-compose.yml', 'config', '-q'],
        {
          cwd: ROOT,
          stdio: 'pipe',
        },
      );
    });

    it('runs every service of the product from the one image, after NATS, Postgres and the migration', () => {
      for (const app of APPS) {
        const service = compose.services[app.name];
        expect(service).toBeDefined();
        expect(service.image).toContain(IMAGE);
        expect(service.command).toEqual([app.name]);
        expect(service.depends_on).toEqual({
          nats: { condition: 'service_healthy' },
          postgres: { condition: 'service_healthy' },
          migrate: { condition: 'service_completed_successfully' },
        });
        expect(service.environment?.PORT).toBe(String(app.port));
        expect(service.environment?.NATS_USER).toBe(app.name);
      }
      expect(compose.services.migrate.command).toEqual(['migrate']);
    });

    it('gives every long-running service a healthcheck', () => {
      for (const [name, service] of Object.entries(compose.services)) {
        if (name === 'migrate') continue;
        expect({ name, test: service.healthcheck?.test }).toEqual({ name, test: expect.any(Array) });
      }
    });

    it('sets only variables the services validate', () => {
      for (const app of APPS) {
        const unknown = Object.keys(compose.services[app.name].environment ?? {}).filter(
          (name) => !(name in ENV_SPECS[app.name]),
        );
        expect({ service: app.name, unknown }).toEqual({ service: app.name, unknown: [] });
      }
    });

    it('lets the aggregator scale: no fixed host port, no container name', () => {
      expect(compose.services.aggregator.ports).toBeUndefined();
      for (const service of Object.values(compose.services)) expect(service.container_name).toBeUndefined();
    });

    it('keeps NATS and Postgres data on named volumes and gives NATS every password it reads', () => {
      expect(Object.keys(compose.volumes).sort()).toEqual(['nats-data', 'pg-data']);
      const natsEnv = Object.keys(compose.services.nats.environment ?? {});
      const referenced = [...read('deploy/nats/nats.conf').matchAll(/\$(NATS_[A-Z_]+_PASSWORD)/g)].map(
        (m) => m[1],
      );
      expect(natsEnv.sort()).toEqual([...new Set(referenced)].sort());
      const example = read('.env.example');
      for (const name of referenced) expect(example).toContain(`${name}=`);
    });
  });

  describe('k8s/ (kustomize)', () => {
    interface Container {
      name: string;
      image: string;
      args?: string[];
      env?: { name: string }[];
      readinessProbe?: { httpGet?: { path: string } };
      livenessProbe?: { httpGet?: { path: string } };
      resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
      ports?: { containerPort: number }[];
    }
    interface Manifest {
      kind: string;
      metadata: { name: string; namespace?: string };
      data?: Record<string, string>;
      spec?: {
        template?: { spec: { containers: Container[] } };
        scaleTargetRef?: { name: string };
        ports?: { port: number }[];
      };
    }
    function render(): Manifest[] {
      if (!onPath('kubectl')) throw new Error('kubectl is missing: install it to validate k8s/');
      const output = execFileSync('kubectl', ['kustomize', 'k8s/'], { cwd: ROOT, encoding: 'utf8' });
      return parseAllDocuments(output).map((document) => document.toJS() as Manifest);
    }
    const manifests = render();
    const find = (kind: string, name: string): Manifest | undefined =>
      manifests.find((m) => m.kind === kind && m.metadata.name === name);

    it('renders everything into the toolkit namespace', () => {
      for (const manifest of manifests) {
        if (manifest.kind !== 'Namespace') expect(manifest.metadata.namespace).toBe('toolkit');
      }
      expect(find('StatefulSet', 'nats')).toBeDefined();
      expect(find('StatefulSet', 'postgres')).toBeDefined();
      expect(find('Job', 'migrate')).toBeDefined();
    });

    it('runs every service with probes, resources, its own NATS user and only variables it validates', () => {
      for (const app of APPS) {
        const deployment = find('Deployment', app.name);
        const [container] = deployment?.spec?.template?.spec.containers ?? [];
        expect(container).toBeDefined();
        expect(container.image).toBe(IMAGE);
        expect(container.args).toEqual([app.name]);
        expect(container.readinessProbe?.httpGet?.path).toBe('/health');
        expect(container.livenessProbe?.httpGet?.path).toBe('/health/live');
        expect(container.resources?.requests).toEqual({
          cpu: expect.any(String),
          memory: expect.any(String),
        });
        expect(container.resources?.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
        expect(container.ports?.[0].containerPort).toBe(app.port);
        // POSTGRES_PASSWORD only feeds $(POSTGRES_PASSWORD) in DATABASE_URL
        const unknown = (container.env ?? [])
          .map((e) => e.name)
          .filter((name) => name !== 'POSTGRES_PASSWORD' && !(name in ENV_SPECS[app.name]));
        expect({ service: app.name, unknown }).toEqual({ service: app.name, unknown: [] });
        expect(find('Service', app.name)?.spec?.ports?.[0].port).toBe(app.port);
      }
    });

    it('shares only common settings in the ConfigMap', () => {
      const data = find('ConfigMap', 'toolkit-config')?.data ?? {};
      expect(Object.keys(data).filter((name) => !(name in commonEnv))).toEqual([]);
    });

    it('autoscales the aggregator and the chat gateway', () => {
      expect(find('HorizontalPodAutoscaler', 'aggregator')?.spec?.scaleTargetRef?.name).toBe('aggregator');
      expect(find('HorizontalPodAutoscaler', 'chat-gateway')?.spec?.scaleTargetRef?.name).toBe(
        'chat-gateway',
      );
    });
  });

  describe('Dockerfile', () => {
    const dockerfile = read('Dockerfile');

    it('builds once and runs as an unprivileged user with a healthcheck, for any service by argument', () => {
      expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
      expect(dockerfile).toMatch(/^USER node$/m);
      expect(dockerfile).toMatch(
        /^HEALTHCHECK .*\n\s+CMD \["node", "dist\/scripts\/container\/healthcheck.js"\]/m,
      );
      expect(dockerfile).toContain('ENTRYPOINT ["node", "dist/scripts/container/entrypoint.js"]');
      expect(existsSync(resolve(ROOT, 'scripts/container/entrypoint.ts'))).toBe(true);
    });

    it('copies only paths that exist', () => {
      const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(' '));
      for (const source of sources)
        expect({ source, exists: existsSync(resolve(ROOT, source)) }).toEqual({ source, exists: true });
      const fromBuild = [...dockerfile.matchAll(/^COPY --from=build \S+ \/app\/(\S+)/gm)].map((m) => m[1]);
      for (const path of fromBuild.filter((p) => p.startsWith('apps/')))
        expect(existsSync(resolve(ROOT, path))).toBe(true);
    });
  });
});
