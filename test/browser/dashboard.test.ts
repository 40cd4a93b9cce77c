// Dashboard 2.0 works in the embedded Node-RED the demo runs: a chart and a text widget fed by a generated
// stream render at /dashboard, and the chart changes as points arrive. This checks the demo's wiring (the
// Dashboard's pages and websocket on our own http server) and the "chart is filling" check that the demo
// test uses once the Shuttle example feeds a real chart. Screenshot: test-results/screenshots/dashboard-smoke.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { browserUnavailable, launchBrowser, screenshot, type Browser } from '../support/browser';
import { errorsOf, startNodeRed, type EmbeddedNodeRed, type FlowNode } from '../support/node-red-embedded';

const flow: FlowNode[] = [
  { id: 'tab1', type: 'tab', label: 'dashboard smoke' },
  { id: 'base1', type: 'ui-base', name: 'demo', path: '/dashboard', includeClientData: true },
  { id: 'theme1', type: 'ui-theme', name: 'default', colors: {} },
  { id: 'page1', type: 'ui-page', name: 'Live', ui: 'base1', path: '/live', layout: 'grid', theme: 'theme1', order: 1 },
  { id: 'group1', type: 'ui-group', name: 'Scores', page: 'page1', width: 6, height: 1, order: 1, showTitle: true },
  {
    id: 'tick',
    type: 'inject',
    z: 'tab1',
    repeat: '0.2',
    once: true,
    onceDelay: '0.1',
    props: [{ p: 'payload' }],
    payload: '',
    payloadType: 'date',
    wires: [['gen']],
  },
  {
    id: 'gen',
    type: 'function',
    z: 'tab1',
    func: "return [{ topic: 'score', payload: Math.random() }, { payload: (0.9 + Math.random() / 20).toFixed(3) }];",
    outputs: 2,
    wires: [['chart'], ['auc']],
  },
  {
    id: 'chart',
    type: 'ui-chart',
    z: 'tab1',
    group: 'group1',
    label: 'anomaly score',
    order: 1,
    chartType: 'line',
    category: 'topic',
    categoryType: 'msg',
    xAxisType: 'time',
    xAxisPropertyType: 'timestamp',
    yAxisProperty: 'payload',
    yAxisPropertyType: 'msg',
    action: 'append',
    removeOlder: 1,
    removeOlderUnit: '3600',
    removeOlderPoints: '',
    width: 6,
    height: 4,
    wires: [[]],
  },
  {
    id: 'auc',
    type: 'ui-text',
    z: 'tab1',
    group: 'group1',
    order: 2,
    label: 'ROC-AUC',
    format: '{{msg.payload}}',
    layout: 'row-spread',
    width: 6,
    height: 1,
    wires: [],
  },
];

describe('Dashboard 2.0 in the embedded Node-RED', { skip: browserUnavailable() }, () => {
  let nodeRed: EmbeddedNodeRed;
  let browser: Browser;
  let userDir: string;

  before(async () => {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-dashboard-'));
    nodeRed = await startNodeRed({ userDir, flows: flow, logLevel: 'error' });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  test('the chart fills and the text updates at /dashboard', async () => {
    const page = await browser.newPage();
    await page.goto(`${nodeRed.url}dashboard`);
    await page.getByText('ROC-AUC').first().waitFor();
    const chart = page.locator('.nrdb-ui-chart').first();
    await chart.waitFor();
    await page.waitForTimeout(1000);
    const first = await chart.screenshot();
    await page.waitForTimeout(2000);
    const second = await chart.screenshot();
    assert.ok(!first.equals(second), 'the chart changes as points arrive');
    await screenshot(page, 'dashboard-smoke');
    assert.deepEqual(errorsOf(nodeRed.problems), []);
  });
});
