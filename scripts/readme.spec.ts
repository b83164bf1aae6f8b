import { readFileSync } from 'node:fs';

import { describe, expect, it } from '@jest/globals';

import { aggregatorEnv } from '../apps/aggregator/src/aggregator.env.js';
import { publisherEnv } from '../apps/publisher/src/publisher.env.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it.each(Object.keys({ ...publisherEnv, ...aggregatorEnv }))('documents the variable %s', (name) => {
    expect(readme).toContain(`\`${name}\``);
  });

  it('gives the two-command quick start', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
  });
});
