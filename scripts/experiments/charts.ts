import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { launchChromium } from '@lib/testing';

import type { ChartSpec } from './experiment-plan.js';

const WIDTH = 960;
const HEIGHT = 520;
const COLORS = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#dc2626', '#0891b2'];

/**
 * Draws each chart with Chart.js (its UMD build from node_modules) in headless Chromium and saves a
 * PNG of the canvas at the matching path. One browser for all charts; animation off so the
 * screenshot shows the finished drawing.
 */
export async function renderCharts(charts: { spec: ChartSpec; path: string }[]): Promise<void> {
  if (charts.length === 0) return;
  const chartJs = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.js');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: WIDTH + 40, height: HEIGHT + 40 } });
    for (const { spec, path } of charts) {
      await page.setContent(
        `<!doctype html><html><body style="margin:0;background:#fff">` +
          `<div style="width:${WIDTH}px;height:${HEIGHT}px;padding:12px"><canvas id="chart"></canvas></div></body></html>`,
      );
      await page.addScriptTag({ path: chartJs });
      await page.evaluate(drawInPage, { spec, colors: COLORS });
      await page.locator('#chart').screenshot({ path });
    }
  } finally {
    await browser.close();
  }
}

/** Runs in the page: `Chart` is the UMD global. */
function drawInPage({ spec, colors }: { spec: ChartSpec; colors: string[] }): void {
  const ChartCtor = (globalThis as unknown as { Chart: new (canvas: unknown, config: unknown) => unknown })
    .Chart;
  const twoAxes = spec.axes.y1 !== undefined;
  const canvas = (
    globalThis as unknown as { document: { getElementById(id: string): unknown } }
  ).document.getElementById('chart');
  new ChartCtor(canvas, {
    data: {
      labels: spec.labels,
      datasets: spec.datasets.map((dataset, i) => {
        const color = colors[(dataset.color ?? i) % colors.length];
        return {
          type: dataset.type,
          label: dataset.label,
          data: dataset.data.map((value) => (Number.isFinite(value) ? value : null)),
          yAxisID: dataset.axis,
          backgroundColor: dataset.type === 'bar' ? `${color}b3` : color,
          borderColor: color,
          borderWidth: dataset.type === 'line' ? 2 : 1,
          borderDash: dataset.type === 'line' ? [6, 4] : [],
          pointRadius: 4,
          order: dataset.type === 'line' ? 0 : 1,
        };
      }),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      devicePixelRatio: 1,
      plugins: {
        title: { display: true, text: spec.title, font: { size: 16 } },
        legend: { position: 'bottom' },
      },
      scales: {
        y: {
          type: 'linear',
          position: 'left',
          beginAtZero: true,
          title: { display: true, text: spec.axes.y },
        },
        ...(twoAxes
          ? {
              y1: {
                type: 'linear',
                position: 'right',
                beginAtZero: true,
                grid: { drawOnChartArea: false },
                title: { display: true, text: spec.axes.y1 },
              },
            }
          : {}),
      },
    },
  });
}
