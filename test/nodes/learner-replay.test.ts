// Kafka records replayed after a fault, in a real Node-RED runtime (node-red-node-test-helper): the learner does
// not learn a record at or below the model's offset for its topic and partition again, and counts it; the scorer
// marks its prediction and keeps it from the threshold and the evaluation. Records without msg.kafka are learned.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import type { Node, NodeMessage } from 'node-red';
import { createModel, type Model } from '../../src/engine';
import { listModels } from '../../src/node-red/model-registry';
import { nodeRedPath, projectRoot } from '../support/env';

helper.init(nodeRedPath());

const learnerNode = require(path.join(projectRoot, 'dist/nodes/stream-ml-online-learner/stream-ml-online-learner.js'));
const scorerNode = require(path.join(projectRoot, 'dist/nodes/stream-ml-anomaly-scorer/stream-ml-anomaly-scorer.js'));

type Msg = NodeMessage & Record<string, unknown>;
const ATTRIBUTES = [
  { name: 'a', type: 'C' },
  { name: 'b', type: 'C' },
];

const flow = [
  { id: 'flow1', type: 'tab', label: 'replay' },
  { id: 'scorer', type: 'stream-ml-anomaly-scorer', z: 'flow1', model: 'm', labelField: 'label', wires: [['learner']] },
  {
    id: 'learner',
    type: 'stream-ml-online-learner',
    z: 'flow1',
    model: 'm',
    attributes: ATTRIBUTES,
    warmup: '5',
    wires: [['out'], ['side']],
  },
  { id: 'out', type: 'helper', z: 'flow1' },
  { id: 'side', type: 'helper', z: 'flow1' },
];

function record(i: number): { a: number; b: number; label: number } {
  return { a: Math.sin(i), b: Math.cos(i * 0.7), label: i % 10 === 0 ? 1 : 0 };
}

/** Sends the messages into the scorer and resolves with what leaves the learner's first output. */
function through(messages: Record<string, unknown>[]): Promise<Msg[]> {
  const out = helper.getNode('out') as Node;
  const got: Msg[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${messages.length} messages`)), 10_000);
    const listener = (msg: Msg) => {
      got.push(msg);
      if (got.length === messages.length) {
        clearTimeout(timer);
        out.removeListener('input', listener);
        resolve(got);
      }
    };
    out.on('input', listener);
    for (const m of messages) (helper.getNode('scorer') as Node).receive(m as NodeMessage);
  });
}

function model(): Model {
  return (helper.getNode('learner') as Node).context().flow.get('m') as Model;
}

const kafkaRecord = (partition: number, offset: number, i: number) => ({
  topic: 'sensors',
  payload: record(i),
  kafka: { topic: 'sensors', partition, offset: String(offset), timestamp: '0', headers: {} },
});

before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
afterEach(() => helper.unload());

test('a replayed Kafka record passes on, marked, but is learned, observed and evaluated once', async () => {
  await helper.load([learnerNode, scorerNode], flow);
  const first = Array.from({ length: 40 }, (_, i) => kafkaRecord(i % 2, Math.floor(i / 2), i));
  await through(first);
  assert.equal(model().recordsLearned, 40);
  assert.deepEqual(model().positions.toJSON(), { 'sensors/0': 19, 'sensors/1': 19 });
  const scorerThreshold = (): string =>
    JSON.stringify(
      (
        (helper.getNode('scorer') as Node).context().flow.get('stream-ml-threshold-scorer') as {
          threshold: { toJSON(): unknown };
        }
      ).threshold.toJSON(),
    );
  const before = scorerThreshold();

  // A replay from an earlier committed offset of partition 0: 10..19 were learned, 20..24 are new.
  const replay = Array.from({ length: 15 }, (_, k) => kafkaRecord(0, 10 + k, 2 * (10 + k)));
  const replayed = await through(replay.slice(0, 10));
  for (const m of replayed) {
    const anomaly = m.anomaly as { replayed?: boolean; evaluation?: unknown };
    assert.equal(anomaly.replayed, true);
    assert.equal(anomaly.evaluation, undefined, 'a replay is not evaluated again');
  }
  assert.equal(scorerThreshold(), before, 'the threshold does not take a replay in again');
  assert.equal(model().recordsLearned, 40);
  const fresh = await through(replay.slice(10));
  for (const m of fresh) {
    const anomaly = m.anomaly as { replayed?: boolean; evaluation?: unknown };
    assert.equal(anomaly.replayed, undefined);
    assert.notEqual(anomaly.evaluation, undefined);
  }
  assert.notEqual(scorerThreshold(), before);
  assert.equal(model().recordsLearned, 45);
  assert.equal(model().positions.lastOf('sensors/0'), 24);

  // The same model learning the same records once, without the nodes.
  const reference = createModel({ attributes: ATTRIBUTES.map((a) => ({ name: a.name, type: 'C' as const })) });
  for (const m of first) reference.learnOne(m.payload);
  for (const m of replay.slice(10)) reference.learnOne(m.payload);
  assert.deepEqual(model().statistics(), reference.statistics());

  const summary = listModels()
    .find((e) => e.name === 'm')!
    .summary();
  assert.equal(summary.replayed, 10);
  // Records with no msg.kafka are learned as always, also the same object twice.
  await through([{ payload: record(1) }, { payload: record(1) }]);
  assert.equal(model().recordsLearned, 47);
});

test('a batch learns only its records past the model’s offset; the merge command keeps this model’s offsets', async () => {
  await helper.load([learnerNode, scorerNode], flow);
  const batch = (offsets: number[]) => ({
    topic: 'sensors',
    payload: offsets.map((o) => record(o)),
    kafka: { topic: 'sensors', partition: 3, offsets: offsets.map(String), count: offsets.length },
  });
  await through([batch([0, 1, 2, 3, 4, 5, 6, 7])]);
  assert.equal(model().recordsLearned, 8);
  const [out] = await through([batch([5, 6, 7, 8, 9])]);
  assert.deepEqual(
    (out.anomaly as { replayed?: boolean }[]).map((a) => a.replayed === true),
    [true, true, true, false, false],
  );
  assert.equal(model().recordsLearned, 10);
  assert.equal(model().positions.lastOf('sensors/3'), 9);

  const other = createModel({ attributes: ATTRIBUTES.map((a) => ({ name: a.name, type: 'C' as const })) });
  other.learnOne(record(100));
  other.positions.advance('sensors/3', 1_000);
  other.positions.advance('other/0', 5);
  (helper.getNode('learner') as Node).receive({ topic: 'merge', payload: JSON.stringify(other.toJSON()) } as never);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(model().recordsLearned, 11);
  assert.deepEqual(model().positions.toJSON(), { 'sensors/3': 9 });
});
