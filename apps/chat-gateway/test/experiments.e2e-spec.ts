import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChatConfig } from '@lib/contracts';
import { freePort, ROOT } from '@lib/testing';

import { experimentPlan } from '../../../scripts/experiments/experiment-plan.js';
import { ChatCluster } from './chat-cluster.js';

const run = promisify(execFile);
const CLI = resolve(ROOT, 'dist/scripts/experiments/experiments.js');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('npm run experiments', () => {
  let cluster: ChatCluster;
  let out: string;

  beforeAll(async () => {
    cluster = await ChatCluster.start(1);
    out = mkdtempSync(join(tmpdir(), 'chat-experiments-'));
  });
  afterAll(async () => {
    if (out) rmSync(out, { recursive: true, force: true });
    await cluster?.dispose();
  });

  it('runs every cell of the four experiments, writes the table, the CSV and the charts, and restores the config', async () => {
    const before = {
      loss_rate: 7,
      latency_min_ms: 1,
      latency_max_ms: 9,
      max_retries: 3,
      ack_timeout_ms: 700,
      seed: 5,
    };
    expect((await cluster.http('PUT', '/chat/config', before)).status).toBe(200);

    const { stdout, stderr } = await run(
      process.execPath,
      [CLI, '--url', cluster.url(), '--messages', '20', '--seed', '42', '--out', out],
      { timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
    );

    const cells = experimentPlan().flatMap((e) => e.cells);
    expect(cells).toHaveLength(22);
    const markdown = readFileSync(join(out, 'results.md'), 'utf8');
    for (const cell of cells) {
      const row = new RegExp(
        `^\\| ${escape(cell.label)} +\\| ${cell.method} +\\| +[\\d.]+ \\| +\\d+/20 \\|`,
        'm',
      );
      expect(markdown).toMatch(row);
      expect(stdout).toMatch(row);
    }
    expect(markdown).toContain('seed 42');
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').trimEnd().split('\n');
    expect(csv).toHaveLength(1 + cells.length);
    // at 0 retries every message is delivered or lost, never both
    const noRetry = csv
      .find((line) => line.startsWith('retries,"retries 0, timeout 300 ms",pubsub,'))!
      .replace(/"[^"]*"/, 'cell')
      .split(',');
    const [sent, delivered, , lost] = noRetry.slice(8, 12).map(Number);
    expect(delivered + lost).toBe(sent);
    for (const id of ['loss', 'latency', 'retries', 'methods']) {
      const png = readFileSync(join(out, `${id}.png`));
      expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
      expect(png.length).toBeGreaterThan(5_000);
      expect(markdown).toContain(`](${id}.png)`);
    }
    expect(stderr).toContain('[22/22]');
    expect((await cluster.http<ChatConfig>('GET', '/chat/config')).body).toEqual(before);
  });

  it('says clearly when the gateway cannot be reached', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const failure = await run(process.execPath, [CLI, '--url', url, '--out', out]).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain(`cannot reach the chat gateway at ${url} (ECONNREFUSED)`);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
