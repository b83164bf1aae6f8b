import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { launchChromium, ROOT } from '@lib/testing';
import type { Browser, Page } from 'playwright-core';

import { ChatCluster } from './chat-cluster.js';

/** Points in a chart of the page (Chart.js keeps its instances by canvas); a browser-side expression. */
function chartPoints(page: Page, canvas: string): Promise<{ labels: number; values: number[][] }> {
  return page.evaluate(`(() => {
    const chart = Chart.getChart(document.querySelector(${JSON.stringify(canvas)}));
    return { labels: chart.data.labels.length, values: chart.data.datasets.map((d) => d.data) };
  })()`);
}

describe('chat-gateway dashboard in headless Chromium', () => {
  let cluster: ChatCluster;
  let browser: Browser;

  beforeAll(async () => {
    cluster = await ChatCluster.start(1);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await cluster?.dispose();
  });

  it('registers A and B on two pages, sends in both modes, shows the messages and moves the charts', async () => {
    const open = async (nodes: string): Promise<Page> => {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${cluster.url()}/?nodes=${nodes}`);
      await page.locator('.node[data-node="' + nodes + '"] .register').click();
      await page
        .locator(`.node[data-node="${nodes}"] .node-state`)
        .filter({ hasText: 'registered' })
        .waitFor();
      expect(errors).toEqual([]);
      return page;
    };
    const pageA = await open('A');
    const pageB = await open('B');

    // the config form: no loss, short latency, applied to every client
    await pageA.fill('input[name=loss_rate]', '0');
    await pageA.fill('input[name=latency_min_ms]', '20');
    await pageA.fill('input[name=latency_max_ms]', '80');
    await pageA.click('#config-form button[type=submit]');
    await pageB.waitForFunction(`document.querySelector('input[name=latency_max_ms]').value === '80'`);
    // a refused config shows the field and changes nothing
    await pageA.fill('input[name=ack_timeout_ms]', '50');
    await pageA.click('#config-form button[type=submit]');
    await pageA.locator('#config-status').filter({ hasText: 'ack_timeout_ms' }).waitFor();
    expect((await cluster.http<{ ack_timeout_ms: number }>('GET', '/chat/config')).body.ack_timeout_ms).toBe(
      600,
    );

    const panelA = pageA.locator('.node[data-node="A"]');
    await panelA.locator('select.to').selectOption('B');
    await panelA.locator('.content').fill('hello over direct');
    await panelA.locator('button[type=submit]').click();
    await panelA.locator('input[value=pubsub]').check();
    await panelA.locator('.content').fill('hello over pubsub');
    await panelA.locator('button[type=submit]').click();
    await panelA.locator('.burst').click();

    const logB = pageB.locator('.node[data-node="B"] .log');
    await logB.filter({ hasText: 'hello over direct' }).waitFor();
    await logB.filter({ hasText: 'hello over pubsub' }).waitFor();
    await pageB.waitForFunction(`document.querySelectorAll('.node[data-node="B"] .log li').length >= 22`);

    // the charts have moved: several points, and a pubsub latency above zero
    await pageB.waitForFunction(
      `Chart.getChart(document.querySelector('#latency-chart')).data.datasets[1].data.some((v) => v > 0)`,
    );
    const latency = await chartPoints(pageB, '#latency-chart');
    const throughput = await chartPoints(pageB, '#throughput-chart');
    expect(latency.labels).toBeGreaterThanOrEqual(2);
    expect(throughput.values.flat().some((v) => v > 0)).toBe(true);
    const delivered = await pageB.locator('#counters tbody tr:nth-child(2) td:nth-child(3)').textContent();
    expect(Number(delivered)).toBeGreaterThanOrEqual(1);

    mkdirSync(resolve(ROOT, 'artifacts'), { recursive: true });
    await pageB.screenshot({ path: resolve(ROOT, 'artifacts/chat-dashboard.png'), fullPage: true });
  });
});
