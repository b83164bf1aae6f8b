import { describe, expect, it } from '@jest/globals';

import {
  type CellResult,
  chartSpec,
  experimentPlan,
  markdownTable,
  parseExperimentArgs,
  reading,
  resultsCsv,
  resultsMarkdown,
  UsageError,
} from './experiment-plan.js';

const noRandom = (): number => {
  throw new Error('no random seed expected');
};

/** A plausible result for every cell of the plan: delivery rises with retries, direct loses loss_rate %. */
function fakeResults(messages = 1_000): CellResult[] {
  return experimentPlan().flatMap((experiment) =>
    experiment.cells.map((cell) => {
      const { loss_rate, max_retries, ack_timeout_ms } = cell.config;
      const deliveredShare =
        cell.method === 'direct' ? 1 - loss_rate / 100 : 1 - (loss_rate / 100) ** (max_retries + 1);
      const delivered = Math.round(messages * deliveredShare);
      return {
        cell,
        sent: messages,
        delivered,
        lost: messages - delivered,
        retries: cell.method === 'pubsub' ? max_retries * 3 : 0,
        duplicates: 0,
        failed: cell.method === 'pubsub' ? messages - delivered : 0,
        avgLatencyMs: cell.method === 'pubsub' ? ack_timeout_ms / 2 : 150,
        p50LatencyMs: 140,
        p99LatencyMs: cell.method === 'pubsub' ? ack_timeout_ms * (max_retries + 1) : 245,
        throughput: 120.4,
        elapsedMs: 2_500,
      };
    }),
  );
}

describe(parseExperimentArgs.name, () => {
  it('takes the defaults and draws a seed when none is given', () => {
    expect(parseExperimentArgs([], () => 1234)).toEqual({
      url: 'http://127.0.0.1:3002',
      messages: 300,
      window: 50,
      seed: 1234,
      seedGiven: false,
      out: 'artifacts/experiments',
      only: ['loss', 'latency', 'retries', 'methods'],
      charts: true,
    });
  });

  it('reads every option', () => {
    expect(
      parseExperimentArgs(
        [
          '--url',
          'http://gw:4000/',
          '--messages',
          '20',
          '--window',
          '5',
          '--seed',
          '42',
          '--out',
          '/tmp/x',
          '--only',
          'retries, loss',
          '--no-charts',
        ],
        noRandom,
      ),
    ).toEqual({
      url: 'http://gw:4000',
      messages: 20,
      window: 5,
      seed: 42,
      seedGiven: true,
      out: '/tmp/x',
      only: ['loss', 'retries'],
      charts: false,
    });
    expect(parseExperimentArgs(['-h'], noRandom)).toBe('help');
  });

  it.each([
    [['--messages', '0'], /--messages must be between 1/],
    [['--messages', '2.5'], /--messages must be a whole number/],
    [['--seed=-1'], /--seed must be a whole number/],
    [['--seed', String(2 ** 32)], /--seed must be between 0 and 4294967295/],
    [['--url', 'ftp://x'], /--url must use http/],
    [['--url', 'nope'], /--url must be a URL/],
    [['--only', 'loss,speed'], /--only takes some of loss, latency, retries, methods/],
    [['--frobnicate'], /frobnicate/],
  ])('refuses %j naming the option', (argv, message) => {
    expect(() => parseExperimentArgs(argv, () => 1)).toThrow(UsageError);
    expect(() => parseExperimentArgs(argv, () => 1)).toThrow(message);
  });
});

describe(experimentPlan.name, () => {
  it('has the four experiments of the seed with every cell', () => {
    const plan = experimentPlan();
    expect(plan.map((e) => [e.id, e.cells.length])).toEqual([
      ['loss', 4],
      ['latency', 4],
      ['retries', 12],
      ['methods', 2],
    ]);
    const retries = plan[2].cells.map((c) => [c.config.max_retries, c.config.ack_timeout_ms]);
    expect(retries).toEqual([0, 1, 2, 5].flatMap((r) => [300, 600, 1000].map((t) => [r, t])));
    expect(plan[0].cells.map((c) => [c.config.loss_rate, c.method])).toEqual([
      [10, 'direct'],
      [10, 'pubsub'],
      [50, 'direct'],
      [50, 'pubsub'],
    ]);
    expect(plan[1].cells[2].config).toMatchObject({
      latency_min_ms: 200,
      latency_max_ms: 500,
      loss_rate: 10,
    });
    expect(plan[3].cells[0].config).toEqual({
      loss_rate: 10,
      latency_min_ms: 50,
      latency_max_ms: 250,
      max_retries: 2,
      ack_timeout_ms: 600,
    });
    expect(experimentPlan(['methods']).map((e) => e.id)).toEqual(['methods']);
  });
});

describe('results rendering', () => {
  const results = fakeResults();

  it('renders a Markdown table with a row per cell and aligned columns', () => {
    const loss = results.filter((r) => r.cell.experiment === 'loss');
    const lines = markdownTable(loss).split('\n');
    expect(lines).toHaveLength(2 + 4);
    expect(lines[0]).toMatch(/^\| cell +\| method \| delivered % \| delivered \| lost \| retries \|/);
    expect(lines[1]).toMatch(/^\| -+ \| -+ \| -+: \|/);
    expect(lines[4]).toMatch(/^\| loss 50 % +\| direct \| +50\.0 \| +500\/1000 \| +500 \| +0 \|/);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  });

  it('writes results.md with every experiment, its reading and its chart', () => {
    const markdown = resultsMarkdown(
      {
        url: 'http://gw',
        messages: 100,
        window: 50,
        seed: 42,
        startedAt: '2026-01-01T00:00:00Z',
        elapsedMs: 9_000,
      },
      experimentPlan(),
      results,
      { loss: 'loss.png' },
    );
    expect(markdown).toContain('seed 42');
    for (const title of ['Experiment 1', 'Experiment 2', 'Experiment 3', 'Experiment 4'])
      expect(markdown).toContain(`## ${title}`);
    expect(markdown).toContain('![Experiment 1: loss rate 10 % vs 50 %](loss.png)');
    expect(markdown).toContain(
      'direct delivery falls from 90.0 % to 50.0 % while pubsub (2 retries) goes from 99.9 % to 87.5 %',
    );
    expect(markdown.match(/^\| retries \d, timeout \d+ ms/gm)).toHaveLength(12);
  });

  it('writes one CSV line per cell with its config, quoting where needed', () => {
    const lines = resultsCsv(results).trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 22);
    expect(lines[0].split(',')).toHaveLength(20);
    expect(lines[0]).toMatch(/^experiment,cell,method,loss_rate,/);
    expect(
      lines.find((l) => l.startsWith('retries,"retries 5, timeout 1000 ms",pubsub,10,50,250,5,1000,1000,')),
    ).toBeDefined();
    for (const line of lines.slice(1)) expect(line.replace(/"[^"]*"/g, 'q').split(',')).toHaveLength(20);
  });

  it('reads each experiment from its numbers', () => {
    const [, latency, retries] = experimentPlan();
    expect(
      reading(
        retries,
        results.filter((r) => r.cell.experiment === 'retries'),
      ),
    ).toMatch(
      /^Delivery ranges from 90\.0 % \(retries 0, timeout 300 ms\) to 100\.0 % \(retries 5, timeout \d+ ms\); p99 latency from 300 ms \(retries 0, timeout 300 ms\) to 6000 ms \(retries 5, timeout 1000 ms\); 0–15 retries per cell\.$/,
    );
    expect(reading(latency, [])).toContain('n/a');
  });

  it('charts every experiment with a value per label and dataset', () => {
    for (const experiment of experimentPlan()) {
      const spec = chartSpec(experiment, results);
      expect(spec.labels.length).toBeGreaterThan(0);
      for (const dataset of spec.datasets) {
        expect(dataset.data).toHaveLength(spec.labels.length);
        expect(dataset.data.every(Number.isFinite)).toBe(true);
        if (dataset.axis === 'y1') expect(spec.axes.y1).toBeDefined();
      }
    }
    const retries = chartSpec(experimentPlan(['retries'])[0], results);
    expect(retries.labels).toEqual(['retries 0', 'retries 1', 'retries 2', 'retries 5']);
    expect(retries.datasets[0]).toMatchObject({
      label: 'delivered % (timeout 300 ms)',
      data: [90, 99, 99.9, 100],
    });
  });
});
