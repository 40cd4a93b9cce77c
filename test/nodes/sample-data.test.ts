// The sample data node in a real Node-RED runtime (node-red-node-test-helper): what it sends, one download shared
// by inputs that arrive together, and a clear error to Catch nodes when the archive cannot be reached.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import type { Node, NodeMessage } from 'node-red';
import { catchNodeModule } from '../kafka/support';
import { nodeRedPath, projectRoot, shuttleDir, shuttleMissing } from '../support/env';
import { serveRoutes, serveUciArchive } from '../support/uci-archive';

helper.init(nodeRedPath());
const sampleDataNode = [
  require(path.join(projectRoot, 'dist/nodes/stream-ml-sample-data/stream-ml-sample-data.js')),
  catchNodeModule(),
];

type Msg = NodeMessage & { payload: unknown; error?: { message: string } };
const tab = { id: 'flow1', type: 'tab', label: 'test' };

function flow(config: Record<string, unknown>) {
  return [
    tab,
    { id: 'data', type: 'stream-ml-sample-data', z: 'flow1', dataset: 'shuttle', wires: [['out']], ...config },
    { id: 'out', type: 'helper', z: 'flow1' },
    { id: 'c1', type: 'catch', z: 'flow1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'flow1' },
  ];
}

/** Collects what helper node `id` receives until `done(got)` says so (fails after 30 s). */
function collect(id: string, done: (got: Msg[]) => boolean): Promise<Msg[]> {
  const node = helper.getNode(id) as Node;
  const got: Msg[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} received ${got.length} messages`)), 30_000);
    node.on('input', (msg: NodeMessage) => {
      got.push(msg as Msg);
      if (done(got)) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

let scratch: string;
before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-sample-data-'));
  await new Promise<void>((resolve) => helper.startServer(() => resolve()));
});
after(async () => {
  await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
  fs.rmSync(scratch, { recursive: true, force: true });
});
afterEach(async () => {
  delete process.env.SHUTTLE_CSV;
  await helper.unload();
});

test('SHUTTLE_CSV names the file to send: one message per record, numbers by column, topic shuttle', async () => {
  const csv = path.join(scratch, 'short.csv');
  fs.writeFileSync(csv, 'f1,f2,outlier\n1,2.5,0\n-3,4,1\n');
  process.env.SHUTTLE_CSV = csv;
  await helper.load(sampleDataNode, flow({ folder: path.join(scratch, 'unused') }));
  const got = collect('out', (m) => m.length === 2);
  (helper.getNode('data') as Node).receive({ payload: 'go' } as NodeMessage);
  const msgs = await got;
  assert.deepEqual(
    msgs.map((m) => [m.topic, m.payload]),
    [
      ['shuttle', { f1: 1, f2: 2.5, outlier: 0 }],
      ['shuttle', { f1: -3, f2: 4, outlier: 1 }],
    ],
  );
  assert.equal(fs.existsSync(path.join(scratch, 'unused')), false, 'nothing downloaded');
});

describe('with the Shuttle data', { skip: shuttleMissing() }, () => {
  test('a folder that holds shuttle.csv is read; a batch of the first records', async () => {
    const folder = path.join(scratch, 'kept');
    fs.mkdirSync(folder);
    fs.copyFileSync(path.join(shuttleDir(), 'shuttle.csv'), path.join(folder, 'shuttle.csv'));
    await helper.load(sampleDataNode, flow({ folder, send: 'batch', limit: '100' }));
    const got = collect('out', (m) => m.length === 1);
    (helper.getNode('data') as Node).receive({ payload: 'go' } as NodeMessage);
    const [msg] = await got;
    const records = msg.payload as Record<string, number>[];
    assert.equal(records.length, 100);
    assert.deepEqual(records[0], { f1: 50, f2: 21, f3: 77, f4: 0, f5: 28, f6: 0, f7: 27, f8: 48, f9: 22, outlier: 1 });
  });

  test('two replays asked for at once share one download into the folder', async () => {
    const archive = await serveUciArchive();
    try {
      const folder = path.join(scratch, 'download');
      await helper.load(sampleDataNode, flow({ folder, url: archive.base, send: 'batch' }));
      const got = collect('out', (m) => m.length === 2);
      (helper.getNode('data') as Node).receive({ payload: 1 } as NodeMessage);
      (helper.getNode('data') as Node).receive({ payload: 2 } as NodeMessage);
      const msgs = await got;
      assert.deepEqual(
        msgs.map((m) => (m.payload as unknown[]).length),
        [49_097, 49_097],
      );
      assert.deepEqual(archive.hits, ['/static/public/148/statlog+shuttle.zip']);
      assert.ok(fs.existsSync(path.join(folder, 'shuttle.csv')));
    } finally {
      await archive.close();
    }
  });
});

test('an archive that cannot be reached: a Catch node gets what to download and where to put it', async () => {
  // An address with nothing listening: a server is started, then closed at once.
  const closed = await serveRoutes({});
  await closed.close();
  const base = closed.base;
  const folder = path.join(scratch, 'offline');
  await helper.load(sampleDataNode, flow({ folder, url: base }));
  const caught = collect('caught', (m) => m.length === 1);
  (helper.getNode('data') as Node).receive({ payload: 'go' } as NodeMessage);
  const [msg] = await caught;
  assert.match(msg.error!.message, /^could not download the Shuttle data \(GET http:\/\/127\.0\.0\.1:\d+\//);
  assert.ok(msg.error!.message.includes(`Download ${base}/static/public/148/statlog+shuttle.zip yourself`));
  assert.ok(msg.error!.message.includes(`into ${folder}`));
  assert.match(msg.error!.message, /or set the environment variable SHUTTLE_CSV/);
});
