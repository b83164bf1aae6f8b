import { readdirSync, readFileSync } from 'node:fs';

import { describe, expect, it } from '@jest/globals';

import { aggregatorEnv } from '../apps/aggregator/src/aggregator.env.js';
import { cacheServiceEnv } from '../apps/cache-service/src/cache-service.env.js';
import { chatGatewayEnv } from '../apps/chat-gateway/src/chat-gateway.env.js';
import { lockServiceEnv } from '../apps/lock-service/src/lock-service.env.js';
import { publisherEnv } from '../apps/publisher/src/publisher.env.js';
import { APPS } from './start/apps.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const docsDir = new URL('../docs/', import.meta.url);
const docs = readdirSync(docsDir).filter((f) => f.endsWith('.md'));
const documentation = [readme, ...docs.map((f) => readFileSync(new URL(f, docsDir), 'utf8'))].join('\n');

const variables = Object.keys({
  ...publisherEnv,
  ...aggregatorEnv,
  ...chatGatewayEnv,
  ...lockServiceEnv,
  ...cacheServiceEnv,
  ...Object.fromEntries(APPS.flatMap((app) => (app.replicas ? [[app.replicas.variable, true]] : []))),
});

describe('README', () => {
  it.each(variables)('documents the variable %s (in README.md or docs/)', (name) => {
    expect(documentation).toContain(`\`${name}\``);
  });

  it('gives the two-command quick start', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
  });

  it.each(docs)('links docs/%s', (file) => {
    expect(readme).toContain(`docs/${file}`);
  });
});
