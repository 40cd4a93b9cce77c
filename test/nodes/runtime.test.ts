// The learner and scorer in the real `node-red` command: a model kept in the localfilesystem context store
// survives a restart, and the admin route behind the sidebar refuses users without permission.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { thresholdFromJSON } from '../../src/engine/thresholds';
import { nodeRedPath } from '../support/env';
import { prepareUserFolder, startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { readShuttle, SHUTTLE_ATTRIBUTES, shuttleMissing } from '../support/shuttle';

// bcryptjs comes with Node-RED (its admin login uses it).
const bcrypt = createRequire(nodeRedPath())('bcryptjs') as { hashSync(s: string, rounds: number): string };

const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-runtime-'));
const PASSWORD = 'correct horse battery staple';
const settings = {
  flowFile: 'flows.json',
  uiHost: '127.0.0.1',
  logging: { console: { level: 'info' } },
  contextStorage: { default: { module: 'memory' }, file: { module: 'localfilesystem' } },
  adminAuth: {
    type: 'credentials',
    users: [
      { username: 'admin', password: bcrypt.hashSync(PASSWORD, 4), permissions: '*' },
      { username: 'flows-only', password: bcrypt.hashSync(PASSWORD, 4), permissions: 'flows.read' },
      { username: 'viewer', password: bcrypt.hashSync(PASSWORD, 4), permissions: 'read' },
    ],
  },
};
const flows = [
  { id: 'tab1', type: 'tab', label: 'runtime test' },
  { id: 'in-learn', type: 'http in', z: 'tab1', url: '/learn', method: 'post', wires: [['learner']] },
  {
    id: 'learner',
    type: 'stream-ml-online-learner',
    z: 'tab1',
    model: 'shuttle',
    store: 'file',
    attributes: SHUTTLE_ATTRIBUTES,
    saveInterval: '60',
    wires: [['out-learn'], []],
  },
  { id: 'out-learn', type: 'http response', z: 'tab1', wires: [] },
  { id: 'in-score', type: 'http in', z: 'tab1', url: '/score', method: 'post', wires: [['scorer']] },
  {
    id: 'scorer',
    type: 'stream-ml-anomaly-scorer',
    z: 'tab1',
    model: 'shuttle',
    store: 'file',
    output: 'payload',
    wires: [['out-score']],
  },
  { id: 'out-score', type: 'http response', z: 'tab1', wires: [] },
];

let nodeRed: NodeRedProcess | undefined;

async function post(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

type Scored = { anomaly: { score: number; threshold: number | null; invalid?: string } };

async function scoreAll(base: string, records: Record<string, number>[]): Promise<Scored[]> {
  const scored = (await post(`${base}/score`, records)) as Scored[];
  for (const r of scored) assert.equal(r.anomaly.invalid, undefined);
  return scored;
}

async function scores(base: string, records: Record<string, number>[]): Promise<number[]> {
  return (await scoreAll(base, records)).map((r) => r.anomaly.score);
}

before(() => prepareUserFolder(userDir, settings, flows));
after(async () => {
  await nodeRed?.stop();
  fs.rmSync(userDir, { recursive: true, force: true });
});

test(
  'a model and the scorer’s threshold in the localfilesystem store survive a restart of Node-RED',
  { skip: shuttleMissing() },
  async () => {
    const { records } = readShuttle();
    nodeRed = await startNodeRed(userDir);
    await post(`${nodeRed.url}/learn`, records.slice(0, 2000));
    const probe = records.slice(2000, 2050);
    const before = await scores(nodeRed.url, probe);
    // Enough scores for the extreme-value threshold to leave its initial phase.
    await scoreAll(nodeRed.url, records.slice(2050, 2450));
    await nodeRed.stop();
    const flowFile = path.join(userDir, 'context', 'tab1', 'flow.json');
    assert.ok(fs.existsSync(flowFile), 'the store wrote the flow context');
    const saved = (JSON.parse(fs.readFileSync(flowFile, 'utf8')) as Record<string, { threshold: unknown }>)[
      'stream-ml-threshold-scorer'
    ];
    assert.ok(saved, 'the scorer saved its threshold');
    const threshold = thresholdFromJSON(saved.threshold).value;
    assert.ok(Number.isFinite(threshold), `a threshold learned from 450 scores, got ${threshold}`);

    nodeRed = await startNodeRed(userDir);
    const afterRestart = await scoreAll(nodeRed.url, probe);
    assert.deepEqual(
      afterRestart.map((r) => r.anomaly.score),
      before,
    );
    assert.equal(afterRestart[0].anomaly.threshold, threshold, 'the first record meets the saved threshold');
    assert.doesNotMatch(nodeRed.output(), /not a model|could not read model|saved threshold could not be read/);
  },
);

test('the models admin route needs stream-ml.read, the sample route stream-ml.write', async () => {
  assert.ok(nodeRed, 'started by the previous test');
  const base = nodeRed.url;
  const token = async (username: string, scope: string) => {
    const res = await fetch(`${base}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_id: 'node-red-admin',
        grant_type: 'password',
        scope,
        username,
        password: PASSWORD,
      }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { access_token: string }).access_token;
  };
  const anonymous = await fetch(`${base}/stream-ml/models`);
  assert.equal(anonymous.status, 401);
  const limited = await fetch(`${base}/stream-ml/models`, {
    headers: { authorization: `Bearer ${await token('flows-only', 'flows.read')}` },
  });
  assert.equal(limited.status, 401);
  const admin = await fetch(`${base}/stream-ml/models`, {
    headers: { authorization: `Bearer ${await token('admin', '*')}` },
  });
  assert.equal(admin.status, 200);
  const models = (await admin.json()) as { name: string; store: string; recordsLearned: number; statistics: unknown }[];
  const shuttle = models.find((m) => m.name === 'shuttle');
  assert.ok(shuttle, JSON.stringify(models));
  assert.equal(shuttle.store, 'file');
  assert.equal(shuttle.recordsLearned, 2000);
  assert.equal((shuttle.statistics as { features: unknown[] }).features.length, 9);

  // A viewer reads the models, but the last raw record (for the dialog's Fill from sample) needs an editor.
  await post(`${base}/learn`, readShuttle().records[0]);
  const viewer = `Bearer ${await token('viewer', 'read')}`;
  assert.equal((await fetch(`${base}/stream-ml/models`, { headers: { authorization: viewer } })).status, 200);
  assert.equal((await fetch(`${base}/stream-ml/sample/learner`, { headers: { authorization: viewer } })).status, 401);
  const sample = await fetch(`${base}/stream-ml/sample/learner`, {
    headers: { authorization: `Bearer ${await token('admin', '*')}` },
  });
  assert.equal(sample.status, 200);
  assert.deepEqual(
    Object.keys((await sample.json()) as object).sort(),
    [...SHUTTLE_ATTRIBUTES.map((a) => a.name)].sort(),
  );
});
