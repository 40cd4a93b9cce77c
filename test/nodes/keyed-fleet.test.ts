// "One model per key" with "Share on a model topic" in a real Node-RED runtime (node-red-node-test-helper) on the
// real broker: the learner publishes one contribution per key under ["<model>","<member>","<key>"] (only the keys
// that changed), and a Kafka record's message finishes once a contribution of its key has it; a template for new
// keys is refused at deploy with a clear error.
import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import { createModel, modelFromJSON } from '../../src/engine';
import { parseAttributeTable } from '../../src/node-red/model-config';
import {
  brokerNode,
  consumeRaw,
  flowNode,
  loadFlow,
  redeploy,
  uniqueName,
  useTestRuntime,
  waitForAsync,
} from '../kafka/support';
import { findKeyedModels } from '../../src/node-red/keyed-models';
import { projectRoot } from '../support/env';
import { assertSameStatistics } from '../support/same-statistics';

useTestRuntime();
afterEach(() => helper.unload());

const learnerNode = require(path.join(projectRoot, 'dist/nodes/stream-ml-online-learner/stream-ml-online-learner.js'));
const TABLE = [
  { name: 'a', type: 'C' },
  { name: 'machine', type: 'X' },
];

function learner(topic: string, extra: Record<string, unknown> = {}) {
  return {
    id: 'learner',
    type: 'stream-ml-online-learner',
    model: 'machines',
    attributes: TABLE,
    keyed: true,
    keySource: 'record',
    keyProperty: 'machine',
    share: true,
    shareBroker: 'broker',
    shareTopic: topic,
    shareInterval: 0.2,
    shareMember: 'gw-test',
    wires: [['out'], []],
    ...extra,
  };
}

test('a template for new keys with sharing is refused at deploy, saying why', async () => {
  await loadFlow([brokerNode(), learner(uniqueName('models'), { template: 'merged' })], undefined, [learnerNode]);
  const spy = helper.log() as unknown as { args: [{ id?: string; level?: number; msg?: unknown }][] };
  const errors = spy.args.map((a) => a[0]).filter((e) => e && e.id === 'learner' && e.level === 20);
  assert.ok(
    errors.some((e) => /template for new keys does not work with sharing/.test(String(e.msg))),
    JSON.stringify(errors),
  );
});

/** Every record on the model topic so far: per record key, the contributions in order. */
async function contributions(
  topic: string,
): Promise<Map<string, { key: string; member: string; snapshot: unknown }[]>> {
  const out = new Map<string, { key: string; member: string; snapshot: unknown }[]>();
  // Until the learner has created the topic, there is nothing to read.
  const read = await consumeRaw(topic, Number.POSITIVE_INFINITY, 2_000).catch(() => []);
  for (const r of read) {
    const key = String(r.key);
    if (!out.has(key)) out.set(key, []);
    out.get(key)!.push(JSON.parse(String(r.value)));
  }
  return out;
}

const keyOf = (key: string): string => JSON.stringify(['machines', 'gw-test', key]);

test('one contribution per key on the topic, with the records of that key; a publish has only the keys that changed', async () => {
  const topic = uniqueName('keyed-models');
  await loadFlow([brokerNode(), learner(topic), { id: 'out', type: 'helper' }], undefined, [learnerNode]);
  const node = flowNode('learner');
  const records = Array.from({ length: 60 }, (_, i) => ({ machine: i % 3 === 0 ? 'k1' : 'k2', a: i * 0.5 }));
  const more = Array.from({ length: 20 }, (_, i) => ({ machine: 'k2', a: 100 + i }));
  // As the Kafka consumer sends them: each with its topic, partition and offset.
  const send = (batch: typeof records, from: number): void =>
    batch.forEach((payload, i) =>
      node.receive({ payload, kafka: { topic: 'in', partition: 0, offset: String(from + i) } }),
    );
  const learned = (c: { snapshot: unknown } | undefined): number =>
    (c?.snapshot as { recordsLearned?: number } | undefined)?.recordsLearned ?? 0;
  const expectedOf = (key: string, all: typeof records) => {
    const model = createModel({ attributes: parseAttributeTable(TABLE) });
    for (const r of all) if (r.machine === key) model.learnOne({ ...r });
    return model;
  };

  send(records, 0);
  let seen = new Map<string, { key: string; member: string; snapshot: unknown }[]>();
  await waitForAsync('both keys published with all their records', async () => {
    seen = await contributions(topic);
    return learned(seen.get(keyOf('k1'))?.at(-1)) === 20 && learned(seen.get(keyOf('k2'))?.at(-1)) === 40;
  });
  for (const key of ['k1', 'k2']) {
    const last = seen.get(keyOf(key))!.at(-1)!;
    assert.equal(last.key, key);
    assert.equal(last.member, 'gw-test');
    assertSameStatistics(modelFromJSON(last.snapshot).statistics(), expectedOf(key, records).statistics(), key);
  }
  const k1Before = seen.get(keyOf('k1'))!.length;

  send(more, records.length);
  await waitForAsync('k2 published again', async () => {
    seen = await contributions(topic);
    return learned(seen.get(keyOf('k2'))?.at(-1)) === 60;
  });
  assertSameStatistics(
    modelFromJSON(seen.get(keyOf('k2'))!.at(-1)!.snapshot).statistics(),
    expectedOf('k2', [...records, ...more]).statistics(),
    'k2 after more',
  );
  // k1 learned nothing since: not published again.
  assert.equal(seen.get(keyOf('k1'))!.length, k1Before);
});

test('a redeployed learner takes its own per key from the topic; a replay is then skipped per key', async () => {
  const topic = uniqueName('keyed-models');
  const flow = [brokerNode(), learner(topic), { id: 'out', type: 'helper' }];
  await loadFlow(flow, undefined, [learnerNode]);
  const records = Array.from({ length: 30 }, (_, i) => ({ machine: i % 2 === 0 ? 'k1' : 'k2', a: i }));
  records.forEach((payload, i) =>
    flowNode('learner').receive({ payload, kafka: { topic: 'in', partition: 0, offset: String(i) } }),
  );
  await waitForAsync('both keys published', async () => {
    const seen = await contributions(topic);
    return seen.has(keyOf('k1')) && seen.has(keyOf('k2'));
  });
  // A full redeploy: the learner closes (publishing what is left) and starts again, reading the topic.
  await redeploy(flow, 'full');
  const models = (): ReturnType<typeof findKeyedModels> => findKeyedModels('f1//machines');
  await waitForAsync('the keys back', async () => models()?.modelOf('k1')?.recordsLearned === 15);
  assert.equal(models()!.modelOf('k2')!.recordsLearned, 15);
  // A replay of the same Kafka records is skipped per key: nothing is learned twice.
  records.forEach((payload, i) =>
    flowNode('learner').receive({ payload, kafka: { topic: 'in', partition: 0, offset: String(i) } }),
  );
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(models()!.modelOf('k1')!.recordsLearned, 15);
  assert.equal(models()!.modelOf('k2')!.recordsLearned, 15);
});
