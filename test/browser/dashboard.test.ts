// The dashboard of the example without a broker, as shipped, in the embedded Node-RED with Dashboard 2.0: a
// replay of Shuttle records fills its chart at /dashboard with the anomaly score, the threshold (a dashed line),
// the true label and a marker on each flagged record; some markers fall on labelled records, and a browser that
// opens the page afterwards gets the same picture from the chart's history. The chart's series are read from its
// ECharts instance in the page, and one marker is looked for in the canvas pixels.
// Screenshot: test-results/screenshots/dashboard-example.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { browserUnavailable, launchBrowser, screenshot, type Browser } from '../support/browser';
import { projectRoot } from '../support/env';
import { errorsOf, startNodeRed, type EmbeddedNodeRed, type FlowNode } from '../support/node-red-embedded';
import { readShuttle, shuttleMissing } from '../support/shuttle';

const EXAMPLE = 'Shuttle anomaly detection without a broker';
// Enough records for the model to warm up and flag some of them (about 18 in the first 3,000 Shuttle rows).
const RECORDS = 3000;
const FLAGGED_COLOR = [0x5b, 0x2c, 0x83];

/** The example as shipped, replayed at 300 records/s (headless Chromium on a small machine keeps up). */
function exampleFlow(): FlowNode[] {
  const flow = JSON.parse(fs.readFileSync(path.join(projectRoot, 'examples', `${EXAMPLE}.json`), 'utf8')) as FlowNode[];
  return flow.map((n) => (n.type === 'delay' ? { ...n, rate: '300' } : n));
}

interface SeriesSeen {
  name: string;
  type: string;
  lineType?: string;
  lineOpacity?: number;
  symbol?: string;
  showSymbol?: boolean;
  data: [number, number][];
}

/** Dashboard 2.0 lists its chart components in window.uiCharts when window.Cypress is set (its own test hook). */
interface ChartWindow {
  Cypress?: unknown;
  uiCharts?: Record<string, { chart: EChart }>;
}

interface EChart {
  getOption(): {
    series: {
      name: string;
      type: string;
      lineStyle?: { type?: string; opacity?: number };
      symbol?: string;
      showSymbol?: boolean;
      data?: [number, number][];
    }[];
  };
  convertToPixel(finder: { seriesName: string }, value: [number, number]): [number, number];
  getDom(): HTMLElement;
}

/** The chart's series as the page's ECharts instance holds them. */
function seriesOf(page: Page, chartId: string): Promise<SeriesSeen[]> {
  return page.evaluate((id) => {
    const chart = (window as unknown as ChartWindow).uiCharts?.[id]?.chart;
    if (!chart) return [];
    return chart.getOption().series.map((s) => ({
      name: s.name,
      type: s.type,
      lineType: s.lineStyle?.type,
      lineOpacity: s.lineStyle?.opacity,
      symbol: s.symbol,
      showSymbol: s.showSymbol,
      data: (s.data ?? []).map(([x, y]) => [Number(x), Number(y)] as [number, number]),
    }));
  }, chartId);
}

/** The colour of the canvas pixel under a data point of a series, after the next frame is painted. */
function pixelAt(page: Page, chartId: string, seriesName: string, point: [number, number]): Promise<number[]> {
  return page.evaluate(
    async ({ id, name, value }) => {
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const chart = (window as unknown as ChartWindow).uiCharts![id].chart;
      const [x, y] = chart.convertToPixel({ seriesName: name }, value);
      const canvas = chart.getDom().querySelector('canvas')!;
      const scale = canvas.width / canvas.getBoundingClientRect().width;
      const pixel = canvas.getContext('2d')!.getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data;
      return [pixel[0], pixel[1], pixel[2]];
    },
    { id: chartId, name: seriesName, value: point },
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe('the dashboard of the example without a broker', { skip: browserUnavailable() || shuttleMissing() }, () => {
  const flow = exampleFlow();
  const chartId = flow.find((n) => n.type === 'ui-chart')!.id;
  const replayId = flow.find((n) => n.type === 'inject')!.id;
  let nodeRed: EmbeddedNodeRed;
  let browser: Browser;
  let userDir: string;
  let live: SeriesSeen[];

  async function openDashboard(): Promise<Page> {
    const page = await browser.newPage();
    await page.addInitScript(() => {
      (window as unknown as ChartWindow).Cypress = {};
    });
    await page.goto(`${nodeRed.url}dashboard`);
    await page.locator('.nrdb-ui-chart').first().waitFor();
    return page;
  }

  before(async () => {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-dashboard-'));
    // The example reads the CSV that SHUTTLE_CSV names: the first RECORDS Shuttle rows.
    const { header, rows } = readShuttle();
    const csv = path.join(userDir, 'shuttle.csv');
    fs.writeFileSync(csv, [header.join(','), ...rows.slice(0, RECORDS).map((r) => r.join(','))].join('\n') + '\n');
    process.env.SHUTTLE_CSV = csv;
    nodeRed = await startNodeRed({ userDir, flows: flow, logLevel: 'error' });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  test('the chart draws the threshold and marks the flagged records, some of them labelled', async () => {
    const page = await openDashboard();
    try {
      const res = await fetch(`${nodeRed.url}inject/${replayId}`, { method: 'POST' });
      assert.equal(res.status, 200);
      await until('every record learned', async () => {
        const models = (await (await fetch(`${nodeRed.url}stream-ml/models`)).json()) as {
          name: string;
          recordsLearned: number;
        }[];
        return models.find((m) => m.name === 'shuttle' && m.recordsLearned === RECORDS);
      });
      // The ROC-AUC shows once labelled records are scored.
      await page
        .getByText(/^0\.\d{4}$/)
        .first()
        .waitFor();
      // The last points reach the page a moment after the last record is learned.
      let previous = '';
      live = await until('the chart to take its last points', async () => {
        const series = await seriesOf(page, chartId);
        const counts = JSON.stringify(series.map((s) => s.data.length));
        const settled = counts === previous;
        previous = counts;
        return settled ? series : undefined;
      });
      const byName = new Map(live.map((s) => [s.name, s]));
      assert.deepEqual([...byName.keys()].sort(), ['anomaly score', 'flagged', 'threshold', 'true label']);

      const score = byName.get('anomaly score')!;
      const threshold = byName.get('threshold')!;
      const label = byName.get('true label')!;
      const flagged = byName.get('flagged')!;
      assert.equal(threshold.type, 'line');
      assert.equal(threshold.lineType, 'dashed', 'the threshold is a dashed line');
      assert.ok(threshold.data.length > 10, `${threshold.data.length} threshold points`);
      for (const [, y] of threshold.data) assert.ok(y > 0 && y <= 1, `threshold ${y}`);
      // Markers without a line between them.
      assert.equal(flagged.symbol, 'diamond');
      assert.equal(flagged.showSymbol, true);
      assert.equal(flagged.lineOpacity, 0);
      assert.ok(flagged.data.length > 0, 'some records are flagged');

      // A marker sits on its record's score, above the threshold that record was judged against, at the time
      // of that record's label.
      const at = (points: [number, number][]) => new Map(points.map(([x, y]) => [x, y]));
      const scoreAt = at(score.data);
      const thresholdAt = at(threshold.data);
      const labelAt = at(label.data);
      for (const [x, y] of flagged.data) {
        assert.equal(scoreAt.get(x), y, `marker at ${x} on the score`);
        assert.ok(y > thresholdAt.get(x)!, `marker at ${x}: score ${y} above threshold ${thresholdAt.get(x)}`);
        assert.ok(labelAt.has(x), `marker at ${x} has a true label`);
      }
      const labelled = flagged.data.filter(([x]) => labelAt.get(x) === 1);
      assert.ok(labelled.length > 0, `of ${flagged.data.length} flagged records, none is labelled an outlier`);
      assert.ok(
        label.data.some(([, y]) => y === 1) && label.data.some(([, y]) => y === 0),
        'the label line shows outliers and normal records',
      );

      await screenshot(page, 'dashboard-example');
      // And the marker is painted: the canvas under one of them has the marker's colour.
      const pixel = await pixelAt(page, chartId, 'flagged', flagged.data.at(-1)!);
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(pixel[i] - FLAGGED_COLOR[i]) <= 8, `pixel ${pixel}`);
      assert.deepEqual(errorsOf(nodeRed.problems), []);
    } finally {
      await page.close();
    }
  });

  test('a browser that opens the dashboard afterwards sees the same series and styles', async () => {
    assert.ok(live, 'the replay test ran first');
    const page = await openDashboard();
    try {
      const later = await until('the chart history', async () => {
        const series = await seriesOf(page, chartId);
        return series.find((s) => s.name === 'flagged' && s.data.length > 0) ? series : undefined;
      });
      const summary = (series: SeriesSeen[]) =>
        series
          .map((s) => ({ name: s.name, lineType: s.lineType, symbol: s.symbol, points: s.data.length }))
          .sort((a, b) => a.name.localeCompare(b.name));
      assert.deepEqual(summary(later), summary(live));
      const flagged = later.find((s) => s.name === 'flagged')!;
      assert.deepEqual(flagged.data, live.find((s) => s.name === 'flagged')!.data);
      assert.equal(flagged.symbol, 'diamond');
      assert.equal(flagged.lineOpacity, 0);
      assert.equal(later.find((s) => s.name === 'threshold')!.lineType, 'dashed');
    } finally {
      await page.close();
    }
  });
});
