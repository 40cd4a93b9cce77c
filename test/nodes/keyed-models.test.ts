// "One model per key" in a real Node-RED runtime (node-red-node-test-helper): an interleaved stream of several keys
// gives each key the scores, flags and statistics of a separate model learned on that key's records alone, per record
// and in batches that mix keys; evicting models past the live cap (to their files, with a persistent store) and
// reading them back changes nothing; 10,000 keys under a cap of 100 stay within a stated memory bound; records
// without a key follow the policy; commands act on one key or on all.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { after, afterEach, before, describe, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import type { Node, NodeMessage } from 'node-red';
import { createModel, type AttributeSpec, type Model } from '../../src/engine';
import { findKeyedModels, type KeyedModels } from '../../src/node-red/keyed-models';
import { nodeRedPath, projectRoot } from '../support/env';

helper.init(nodeRedPath());

const learnerNode = require(path.join(projectRoot, 'dist/nodes/stream-ml-online-learner/stream-ml-online-learner.js'));
const scorerNode = require(path.join(projectRoot, 'dist/nodes/stream-ml-anomaly-scorer/stream-ml-anomaly-scorer.js'));
const NODES = [learnerNode, scorerNode];

type FlowNode = { id: string; type: string; [key: string]: unknown };
type Msg = NodeMessage & Record<string, unknown>;
type Anomaly = {
  score: number;
  isAnomaly: boolean;
  threshold: number;
  warmingUp: boolean;
  key?: string;
  invalid?: string;
};

const TABLE = [
  { name: 'a', type: 'C' },
  { name: 'b', type: 'C' },
  { name: 'machine', type: 'X' },
];
const ENGINE_ATTRIBUTES: AttributeSpec[] = TABLE.map((a) => ({ name: a.name, type: a.type as 'C' | 'X' }));
const WARMUP = 20;

const tab: FlowNode = { id: 'flow1', type: 'tab', label: 'keyed' };
const sink = (id: string): FlowNode => ({ id, type: 'helper', z: 'flow1' });

function keyedFlow(learnerExtra: Record<string, unknown> = {}, scorerExtra: Record<string, unknown> = {}): FlowNode[] {
  const keyed = { keyed: true, keySource: 'record', keyProperty: 'machine' };
  return [
    tab,
    {
      id: 's1',
      type: 'stream-ml-anomaly-scorer',
      z: 'flow1',
      model: 'fleet',
      ...keyed,
      ...scorerExtra,
      wires: [['l1']],
    },
    {
      id: 'l1',
      type: 'stream-ml-online-learner',
      z: 'flow1',
      model: 'fleet',
      attributes: TABLE,
      warmup: String(WARMUP),
      ...keyed,
      ...learnerExtra,
      wires: [['out'], ['side']],
    },
    sink('out'),
    sink('side'),
  ];
}

/** Deterministic records of `machines` machines, interleaved at random; each machine has its own normal. */
function fleetStream(machines: number, perMachine: number, seed = 7): { machine: string; a: number; b: number }[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const left = Array.from({ length: machines }, () => perMachine);
  const out: { machine: string; a: number; b: number }[] = [];
  while (out.length < machines * perMachine) {
    let m = Math.floor(next() * machines);
    while (left[m] === 0) m = (m + 1) % machines;
    left[m]--;
    const spike = next() < 0.03 ? 8 : 0;
    out.push({ machine: `m${m}`, a: m * 10 + next() + spike, b: m * -3 + 2 * next() });
  }
  return out;
}

/** Per key, what a separate model learned on that key's records alone gives: score then learn. */
function separateModels(records: { machine: string; a: number; b: number }[]) {
  const models = new Map<string, Model>();
  const results = new Map<string, Anomaly[]>();
  for (const record of records) {
    let model = models.get(record.machine);
    if (!model) {
      model = createModel({ attributes: ENGINE_ATTRIBUTES, warmupRecords: WARMUP });
      models.set(record.machine, model);
      results.set(record.machine, []);
    }
    const r = model.scoreOne(record, 3);
    results.get(record.machine)!.push({
      score: r.score,
      isAnomaly: r.isAnomaly,
      threshold: r.threshold,
      warmingUp: r.warmingUp,
    });
    model.learnOne(record);
  }
  return { models, results };
}

/** The same for batches: a batch is scored whole, then learned whole (as the engine's scoreMany, learnMany). */
function separateModelsBatched(batches: { machine: string; a: number; b: number }[][]) {
  const models = new Map<string, Model>();
  const results = new Map<string, Anomaly[]>();
  const modelOf = (key: string): Model => {
    let model = models.get(key);
    if (!model) {
      model = createModel({ attributes: ENGINE_ATTRIBUTES, warmupRecords: WARMUP });
      models.set(key, model);
      results.set(key, []);
    }
    return model;
  };
  for (const batch of batches) {
    for (const record of batch) {
      const r = modelOf(record.machine).scoreOne(record, 3);
      results.get(record.machine)!.push({
        score: r.score,
        isAnomaly: r.isAnomaly,
        threshold: r.threshold,
        warmingUp: r.warmingUp,
      });
    }
    for (const record of batch) modelOf(record.machine).learnOne(record);
  }
  return { models, results };
}

function nextMessages(id: string, count: number, timeoutMs = 20_000): Promise<Msg[]> {
  const node = helper.getNode(id) as Node;
  const got: Msg[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} received ${got.length} of ${count} messages`)), timeoutMs);
    const listener = (msg: Msg) => {
      got.push(msg);
      if (got.length === count) {
        clearTimeout(timer);
        node.removeListener('input', listener);
        resolve(got);
      }
    };
    node.on('input', listener);
  });
}

/** Sends each message once the one before has left the learner: score, then learn, record after record. */
async function through(messages: Record<string, unknown>[], first = 's1'): Promise<Msg[]> {
  const got: Msg[] = [];
  for (const m of messages) {
    const out = nextMessages('out', 1);
    (helper.getNode(first) as Node).receive(m as NodeMessage);
    got.push(...(await out));
  }
  return got;
}

function fleet(): KeyedModels {
  const models = findKeyedModels('flow1//fleet');
  assert.ok(models, 'the keyed models of "fleet" exist');
  return models;
}

/** The scorer's results by key, in arrival order. */
function byKey(anomalies: Anomaly[]): Map<string, Anomaly[]> {
  const out = new Map<string, Anomaly[]>();
  for (const a of anomalies) {
    if (!out.has(a.key!)) out.set(a.key!, []);
    out.get(a.key!)!.push({ score: a.score, isAnomaly: a.isAnomaly, threshold: a.threshold, warmingUp: a.warmingUp });
  }
  return out;
}

function assertSameAsSeparate(
  anomalies: Anomaly[],
  records: { machine: string; a: number; b: number }[],
  expected = separateModels(records),
): void {
  const got = byKey(anomalies);
  assert.deepEqual([...got.keys()].sort(), [...expected.results.keys()].sort());
  for (const [key, results] of expected.results) assert.deepEqual(got.get(key), results, `scores of key ${key}`);
  for (const [key, model] of expected.models) {
    const kept = fleet().modelOf(key)!;
    assert.equal(kept.recordsLearned, model.recordsLearned, `records learned by key ${key}`);
    assert.deepEqual(kept.statistics(), model.statistics(), `statistics of key ${key}`);
  }
  assert.ok(
    anomalies.some((a) => a.isAnomaly),
    'some records are flagged (the comparison covers flags)',
  );
}

/** The errors a node has logged since the flow was loaded. */
function errorsOf(id: string): string[] {
  const spy = helper.log() as unknown as { args: [{ id?: string; level?: number; msg?: unknown }][] };
  return spy.args
    .map((a) => a[0])
    .filter((e) => e && e.id === id && e.level === 20)
    .map((e) => String(e.msg));
}

/** The status texts a node shows from now on. */
function statusTexts(id: string): string[] {
  const texts: string[] = [];
  (helper.getNode(id) as unknown as { on(e: string, f: (call: never) => void): void }).on('call:status', (call) =>
    texts.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  return texts;
}

before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
afterEach(() => helper.unload());

describe('one model per key', () => {
  test('an interleaved stream of 5 machines: per key the scores and statistics of a separate model', async () => {
    await helper.load(NODES, keyedFlow());
    const records = fleetStream(5, 200);
    const out = await through(records.map((r) => ({ payload: { ...r } })));
    assert.equal(fleet().liveCount, 5);
    assertSameAsSeparate(
      out.map((m) => m.anomaly as Anomaly),
      records,
    );
  });

  test('the admin routes behind the sidebar: a keyed model with its most active keys, and one key’s detail', async () => {
    await helper.load(NODES, keyedFlow());
    await through(fleetStream(3, 30, 8).map((r) => ({ payload: { ...r } })));
    const list = (await helper.request().get('/stream-ml/models').expect(200)).body as {
      id: string;
      keyed?: { live: number; keys: { key: string; recordsLearned: number; lastScore: number }[] };
    }[];
    const keyed = list.find((m) => m.id === 'flow1//fleet')?.keyed;
    assert.ok(keyed, 'the model is listed as keyed');
    assert.equal(keyed.live, 3);
    assert.deepEqual(keyed.keys.map((k) => k.key).sort(), ['m0', 'm1', 'm2']);
    assert.ok(keyed.keys.every((k) => k.recordsLearned === 30 && typeof k.lastScore === 'number'));
    const detail = (
      await helper.request().get('/stream-ml/models/keys').query({ model: 'flow1//fleet', key: 'm1' }).expect(200)
    ).body as { recordsLearned: number; statistics: { features: { name: string }[] } };
    assert.equal(detail.recordsLearned, 30);
    assert.deepEqual(
      detail.statistics.features.map((f) => f.name),
      ['a', 'b'],
    );
    await helper.request().get('/stream-ml/models/keys').query({ model: 'flow1//fleet', key: 'nope' }).expect(404);
  });

  test('batches mixing keys (one key per record in a msg property): split per key, results in record order', async () => {
    const keyed = { keySource: 'msg', keyProperty: 'kafka.keys' };
    await helper.load(NODES, keyedFlow(keyed, keyed));
    const records = fleetStream(4, 150, 11);
    const batches: Record<string, unknown>[] = [];
    const plain: (typeof records)[] = [];
    for (let i = 0; i < records.length; i += 25) {
      const batch = records.slice(i, i + 25);
      plain.push(batch);
      batches.push({ payload: batch.map((r) => ({ ...r })), kafka: { keys: batch.map((r) => r.machine) } });
    }
    const out = await through(batches);
    const anomalies = out.flatMap((m) => m.anomaly as Anomaly[]);
    // Record order is kept: the i-th result is the i-th record's.
    assert.deepEqual(
      anomalies.map((a) => a.key),
      records.map((r) => r.machine),
    );
    assertSameAsSeparate(anomalies, records, separateModelsBatched(plain));
  });

  test('records without a key: an error to Catch and counted, or the shared default model', async () => {
    await helper.load(NODES, [
      ...keyedFlow(),
      { id: 'c1', type: 'catch', z: 'flow1', scope: ['l1'], uncaught: false, wires: [['caught']] },
      sink('caught'),
    ]);
    const caught = nextMessages('caught', 1);
    const [msg] = await through([{ payload: { a: 1, b: 2 } }]);
    const [error] = await caught;
    assert.match(String((error.error as { message: string }).message), /no key \(the record's field "machine"\)/);
    assert.match(String((msg.anomaly as Anomaly).invalid), /no key/);
    assert.equal(fleet().liveCount, 0, 'no model was made for the record without a key');
    await helper.unload();

    await helper.load(NODES, keyedFlow({ noKey: 'default' }, { noKey: 'default' }));
    await through([{ payload: { a: 1, b: 2 } }, { payload: { a: 1.5, b: 2, machine: 'm1' } }]);
    assert.deepEqual(fleet().keys().sort(), ['', 'm1']);
    assert.equal(fleet().modelOf('')!.recordsLearned, 1);
  });

  test('a scorer that learns keeps one model per key on its own, without a learner', async () => {
    await helper.load(NODES, [
      tab,
      {
        id: 's1',
        type: 'stream-ml-anomaly-scorer',
        z: 'flow1',
        model: 'fleet',
        keyed: true,
        keySource: 'record',
        keyProperty: 'machine',
        learn: true,
        attributes: TABLE,
        wires: [['out']],
      },
      sink('out'),
    ]);
    const records = fleetStream(2, 30, 12);
    const out = await through(records.map((r) => ({ payload: { ...r } })));
    assert.deepEqual(fleet().keys().sort(), ['m0', 'm1']);
    assert.equal(fleet().modelOf('m0')!.recordsLearned, 30);
    // The first record of each key is scored by its new, empty model: warming up.
    assert.equal((out[0].anomaly as Anomaly).warmingUp, true);
  });

  test('commands: snapshot, statistics and reset of one key (msg.key) or of every key', async () => {
    await helper.load(NODES, keyedFlow({ allKeysAs: 'object' }));
    const records = fleetStream(3, 40, 3);
    await through(records.map((r) => ({ payload: { ...r } })));
    const learner = helper.getNode('l1') as Node;

    let side = nextMessages('side', 1);
    learner.receive({ topic: 'snapshot', key: 'm1' } as NodeMessage);
    const [one] = await side;
    assert.equal(one.key, 'm1');
    assert.equal((one.payload as { recordsLearned: number }).recordsLearned, 40);

    side = nextMessages('side', 1);
    learner.receive({ topic: 'snapshot' } as NodeMessage);
    const [all] = await side;
    const snapshot = all.payload as { format: string; models: Record<string, { recordsLearned: number }> };
    assert.equal(snapshot.format, 'stream-ml-keyed-models');
    assert.deepEqual(Object.keys(snapshot.models).sort(), ['m0', 'm1', 'm2']);

    side = nextMessages('side', 1);
    learner.receive({ topic: 'statistics', key: 'm2' } as NodeMessage);
    const [stats] = await side;
    assert.equal((stats.payload as { records: number }).records, 40);

    learner.receive({ topic: 'reset', key: 'm0' } as NodeMessage);
    await until(() => fleet().modelOf('m0')!.recordsLearned === 0);
    assert.equal(fleet().modelOf('m1')!.recordsLearned, 40);

    // Every key back from the one-object snapshot.
    learner.receive({ topic: 'load', payload: snapshot } as NodeMessage);
    await until(() => fleet().modelOf('m0')!.recordsLearned === 40);

    learner.receive({ topic: 'reset' } as NodeMessage);
    await until(() => fleet().keys().length === 0);
  });
});

describe('the key from a JSONata expression', () => {
  const jsonata = (expression: string) => ({ keySource: 'jsonata', keyProperty: expression });

  test('an expression on the message gives each key the scores and statistics of a separate model', async () => {
    const key = jsonata('topic & "/" & payload.machine');
    await helper.load(NODES, keyedFlow(key, key));
    const records = fleetStream(3, 150, 21);
    const out = await through(records.map((r) => ({ topic: 'site-a', payload: { ...r } })));
    // The machine field is not learned (X), so a record filed under "site-a/m0" is m0's record.
    const renamed = records.map((r) => ({ ...r, machine: `site-a/${r.machine}` }));
    assert.deepEqual(fleet().keys().sort(), ['site-a/m0', 'site-a/m1', 'site-a/m2']);
    assertSameAsSeparate(
      out.map((m) => m.anomaly as Anomaly),
      renamed,
    );
  });

  test('on a batch an array is one key per record, a single value the key of every record', async () => {
    const perRecord = jsonata('payload.machine');
    await helper.load(NODES, keyedFlow(perRecord, perRecord));
    const records = fleetStream(4, 150, 11);
    const batches: Record<string, unknown>[] = [];
    const plain: (typeof records)[] = [];
    for (let i = 0; i < records.length; i += 25) {
      const batch = records.slice(i, i + 25);
      plain.push(batch);
      batches.push({ payload: batch.map((r) => ({ ...r })) });
    }
    const out = await through(batches);
    const anomalies = out.flatMap((m) => m.anomaly as Anomaly[]);
    assert.deepEqual(
      anomalies.map((a) => a.key),
      records.map((r) => r.machine),
    );
    assertSameAsSeparate(anomalies, records, separateModelsBatched(plain));
    await helper.unload();

    const oneForAll = jsonata('$uppercase(topic)');
    await helper.load(NODES, keyedFlow(oneForAll, oneForAll));
    const [msg] = await through([{ topic: 'line-3', payload: records.slice(0, 10).map((r) => ({ ...r })) }]);
    assert.ok((msg.anomaly as Anomaly[]).every((a) => a.key === 'LINE-3'));
    assert.deepEqual(fleet().keys(), ['LINE-3']);
    assert.equal(fleet().modelOf('LINE-3')!.recordsLearned, 10);
  });

  test('messages sent at once are learned in the order they came, though the expression evaluates asynchronously', async () => {
    // Reading flow context takes a message's evaluation a few turns longer than the next one's.
    await helper.load(NODES, keyedFlow(jsonata('(slow ? $flowContext("nothing"); payload.machine)')));
    const records = fleetStream(3, 100, 23);
    const out = nextMessages('out', records.length);
    const learner = helper.getNode('l1') as Node;
    records.forEach((r, i) =>
      learner.receive({ payload: { ...r }, seq: i, slow: i % 3 === 0 } as unknown as NodeMessage),
    );
    assert.deepEqual(
      (await out).map((m) => m.seq),
      records.map((_, i) => i),
    );
    for (const [key, model] of separateModels(records).models)
      assert.deepEqual(fleet().modelOf(key)!.statistics(), model.statistics(), `statistics of key ${key}`);
  });

  test('a result that is missing or null is no key: the policy applies, per record of a batch', async () => {
    // Records without the field stay in place as null, so the others keep their keys.
    const key = jsonata('payload.($exists(machine) ? machine : null)');
    await helper.load(NODES, [
      ...keyedFlow(key, key),
      { id: 'c1', type: 'catch', z: 'flow1', scope: ['l1'], uncaught: false, wires: [['caught']] },
      sink('caught'),
    ]);
    const caught = nextMessages('caught', 1);
    const [msg] = await through([
      {
        payload: [
          { a: 1, b: 2, machine: 'm1' },
          { a: 1, b: 2 },
          { a: 2, b: 1, machine: 'm2' },
        ],
      },
    ]);
    const [error] = await caught;
    assert.match(String((error.error as { message: string }).message), /no key \(the key expression payload\./);
    assert.deepEqual(
      (msg.anomaly as Anomaly[]).map((a) => [a.key, a.invalid !== undefined]),
      [
        ['m1', false],
        [undefined, true],
        ['m2', false],
      ],
    );
    assert.deepEqual(fleet().keys().sort(), ['m1', 'm2']);
    await helper.unload();

    const missing = jsonata('payload.site');
    await helper.load(NODES, keyedFlow({ ...missing, noKey: 'default' }, { ...missing, noKey: 'default' }));
    await through([{ payload: { a: 1, b: 2 } }, { payload: { a: 1.5, b: 2, site: 's1' } }]);
    assert.deepEqual(fleet().keys().sort(), ['', 's1']);
    assert.equal(fleet().modelOf('')!.recordsLearned, 1);
  });

  test('an expression that fails on a message is an error for its records only, whatever the policy', async () => {
    const key = { ...jsonata('payload.bad ? $error("unreadable machine") : payload.machine'), noKey: 'default' };
    await helper.load(NODES, [
      ...keyedFlow(key, key),
      { id: 'c1', type: 'catch', z: 'flow1', scope: ['s1', 'l1'], uncaught: false, wires: [['caught']] },
      sink('caught'),
    ]);
    const caught = nextMessages('caught', 2);
    const statuses = statusTexts('l1');
    const batch = [
      { a: 1, b: 2, machine: 'm1' },
      { a: 2, b: 1, machine: 'm2', bad: true },
      { a: 1, b: 1, machine: 'm1' },
    ];
    const out = await through([
      { payload: { a: 1, b: 2, machine: 'm1' } },
      { payload: batch },
      { payload: { a: 1.5, b: 2, machine: 'm2' } },
    ]);
    // One error per node for the failed message, not one per record.
    const errors = await caught;
    assert.deepEqual(errors.map((e) => (e.error as { source: { id: string } }).source.id).sort(), ['l1', 's1']);
    for (const e of errors)
      assert.match((e.error as { message: string }).message, /key expression failed: unreadable machine/);
    // The failed message goes on, each record marked; none went to the default model.
    const failed = out[1].anomaly as Anomaly[];
    assert.equal(failed.length, 3);
    assert.ok(failed.every((a) => /key expression failed: unreadable machine/.test(a.invalid!) && a.key === undefined));
    assert.deepEqual(fleet().keys().sort(), ['m1', 'm2']);
    assert.equal(fleet().modelOf('m1')!.recordsLearned, 1);
    assert.equal(fleet().modelOf('m2')!.recordsLearned, 1);
    await until(() => statuses.some((s) => /key expression failed: 3/.test(s)), 3_000);
  });

  test('an expression that does not parse stops the node at deploy with a clear error', async () => {
    const key = jsonata('payload.machine &');
    await helper.load(NODES, keyedFlow(key, key));
    for (const id of ['s1', 'l1']) {
      const node = helper.getNode(id) as unknown as {
        status: { getCalls(): { thisValue: unknown; args: [{ fill?: string; text?: string }] }[] };
      };
      const shown = node.status
        .getCalls()
        .filter((c) => c.thisValue === node)
        .map((c) => c.args[0]);
      assert.equal(shown.at(-1)?.fill, 'red', `${id} shows the error`);
      assert.match(String(shown.at(-1)?.text), /the key expression payload\.machine & is not valid JSONata: /);
      assert.ok(
        errorsOf(id).some((e) => /the key expression payload\.machine & is not valid JSONata/.test(e)),
        `${id} logs the error`,
      );
    }
    // Nothing is made of the records it is sent.
    (helper.getNode('l1') as Node).receive({ payload: { a: 1, b: 2, machine: 'm1' } } as NodeMessage);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(findKeyedModels('flow1//fleet'), undefined);
  });
});

describe('cold start and Kafka offsets per key', () => {
  test('a new key can start from the merge of every key so far (without their Kafka offsets)', async () => {
    const keyed = { keySource: 'msg', keyProperty: 'key' };
    await helper.load(NODES, keyedFlow({ ...keyed, template: 'merged' }, keyed));
    const records = fleetStream(3, 40, 9);
    await through(
      records.map((r, i) => ({
        payload: { ...r },
        key: r.machine,
        kafka: { topic: 't', partition: 0, offset: 100 + i },
      })),
    );
    // The new machine's first record, at an offset the other keys have learned: judged at once, and learned.
    const [first] = await through([
      { payload: { machine: 'new', a: 5, b: 0 }, key: 'new', kafka: { topic: 't', partition: 0, offset: 150 } },
    ]);
    const anomaly = first.anomaly as Anomaly;
    assert.equal(anomaly.key, 'new');
    assert.equal(anomaly.warmingUp, false, 'the template is past its warm-up');
    const model = fleet().modelOf('new')!;
    // Keys that started from an earlier template carry its records, so the merge counts those again.
    assert.ok(model.recordsLearned >= 120 + 1, `${model.recordsLearned} records learned`);
    assert.equal(model.positions.lastOf('t/0'), 150);
  });

  test('a new key can start from a template snapshot sent with the template command', async () => {
    await helper.load(NODES, keyedFlow({ template: 'snapshot' }));
    await through(fleetStream(1, 30, 2).map((r) => ({ payload: { ...r } })));
    const learner = helper.getNode('l1') as Node;
    const side = nextMessages('side', 1);
    learner.receive({ topic: 'snapshot', key: 'm0' } as NodeMessage);
    const [snapshot] = await side;
    learner.receive({ topic: 'template', payload: snapshot.payload } as NodeMessage);
    await through([{ payload: { machine: 'm1', a: 1, b: 1 } }]);
    assert.equal(fleet().modelOf('m1')!.recordsLearned, 31);
  });

  test('a replay is skipped per key: each key’s model knows the offsets of its own records', async () => {
    const keyed = { keySource: 'msg', keyProperty: 'key' };
    await helper.load(NODES, keyedFlow(keyed, keyed));
    const records = fleetStream(3, 40, 4);
    const messages = records.map((r, i) => ({
      payload: { ...r },
      key: r.machine,
      kafka: { topic: 't', partition: 0, offset: i },
    }));
    await through(messages);
    const learned = (key: string) => fleet().modelOf(key)!.recordsLearned;
    assert.deepEqual(['m0', 'm1', 'm2'].map(learned), [40, 40, 40]);
    // The last 60 again, as a consumer resuming at an older commit would send them; then one new record.
    const replay = await through(messages.slice(60).map((m) => ({ ...m, payload: { ...m.payload } })));
    assert.ok(replay.every((m) => (m.anomaly as { replayed?: boolean }).replayed === true));
    assert.deepEqual(['m0', 'm1', 'm2'].map(learned), [40, 40, 40]);
    await through([{ payload: { ...records[0] }, key: 'm0', kafka: { topic: 't', partition: 0, offset: 120 } }]);
    assert.equal(learned('m0'), 41);
  });
});

describe('a cap on live models', () => {
  let userDir: string;
  before(() => {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-keyed-'));
    helper.settings({ userDir, contextStorage: { default: { module: 'localfilesystem' } } } as never);
  });
  after(() => {
    helper.settings({});
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  test('models evicted to their files and read back score as a model never evicted, bit for bit', async () => {
    await helper.load(NODES, keyedFlow({ maxLive: '2' }));
    const records = fleetStream(6, 120, 5);
    const out = await through(records.map((r) => ({ payload: { ...r } })));
    const models = fleet();
    assert.ok(models.liveCount <= 2, `${models.liveCount} live`);
    assert.ok(models.evicted > 100 && models.reloaded > 100, `${models.evicted} evicted, ${models.reloaded} reloaded`);
    assert.equal(models.liveCount + models.storedCount, 6);
    assertSameAsSeparate(
      out.map((m) => m.anomaly as Anomaly),
      records,
    );
    // A redeploy writes the live ones too; the next runtime finds every key in its file.
    await helper.unload();
    const files = fs.readdirSync(path.join(userDir, 'stream-ml', 'keyed', 'flow1-default-fleet'));
    assert.deepEqual(
      files.sort(),
      ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'].map((k) => `${k}.json`),
    );
    await helper.load(NODES, keyedFlow({ maxLive: '2' }));
    await until(() => fleet().storedCount === 6);
    const [next] = await through([{ payload: { machine: 'm3', a: 30.5, b: -8 } }]);
    const expected = separateModels(records).models.get('m3')!.scoreOne({ machine: 'm3', a: 30.5, b: -8 });
    assert.equal((next.anomaly as Anomaly).score, expected.score);
  });

  test('a template snapshot is kept in a file beside the keys, so a new key starts from it after a restart', async () => {
    fs.rmSync(path.join(userDir, 'stream-ml'), { recursive: true, force: true });
    await helper.load(NODES, keyedFlow({ template: 'snapshot' }));
    await through(fleetStream(1, 30, 2).map((r) => ({ payload: { ...r } })));
    const learner = helper.getNode('l1') as Node;
    const side = nextMessages('side', 1);
    learner.receive({ topic: 'snapshot', key: 'm0' } as NodeMessage);
    const [snapshot] = await side;
    learner.receive({ topic: 'template', payload: snapshot.payload } as NodeMessage);
    await helper.unload();
    const file = path.join(userDir, 'stream-ml', 'keyed', 'flow1-default-fleet.template.json');
    assert.ok(fs.existsSync(file), 'the template is on disk once the learner has closed');
    // A new runtime: a key never seen starts from the template, with its 30 records.
    await helper.load(NODES, keyedFlow({ template: 'snapshot' }));
    await through([{ payload: { machine: 'm9', a: 1, b: 1 } }]);
    assert.equal(fleet().modelOf('m9')!.recordsLearned, 31);
    // An empty template clears it, on disk too: the next new key starts with the node's settings.
    (helper.getNode('l1') as Node).receive({ topic: 'template', payload: '' } as NodeMessage);
    await helper.unload();
    assert.equal(fs.existsSync(file), false, 'the cleared template is gone from disk');
    await helper.load(NODES, keyedFlow({ template: 'snapshot' }));
    await through([{ payload: { machine: 'm8', a: 1, b: 1 } }]);
    assert.equal(fleet().modelOf('m8')!.recordsLearned, 1);
  });

  test('with Kafka records, a message finishes once every key it touched has its model on disk', async () => {
    fs.rmSync(path.join(userDir, 'stream-ml'), { recursive: true, force: true });
    const keyed = { keySource: 'msg', keyProperty: 'kafka.keys' };
    await helper.load(NODES, [
      ...keyedFlow({ ...keyed, maxLive: '2' }, keyed),
      { id: 'done1', type: 'complete', z: 'flow1', scope: ['l1'], uncaught: false, wires: [['completed']] },
      sink('completed'),
    ]);
    const records = fleetStream(5, 20, 6);
    const completed = nextMessages('completed', 1);
    (helper.getNode('s1') as Node).receive({
      payload: records.map((r) => ({ ...r })),
      kafka: { topic: 't', partition: 0, keys: records.map((r) => r.machine), offsets: records.map((_, i) => i) },
    } as unknown as NodeMessage);
    await completed;
    // By then every key's file (3 evicted past the cap, 2 written by the checkpoint) has its own last offset.
    const folder = path.join(userDir, 'stream-ml', 'keyed', 'flow1-default-fleet');
    for (let m = 0; m < 5; m++) {
      const key = `m${m}`;
      const last = records.map((r, i) => (r.machine === key ? i : -1)).reduce((x, y) => Math.max(x, y));
      const snapshot = JSON.parse(fs.readFileSync(path.join(folder, `${key}.json`), 'utf8')) as {
        positions?: Record<string, number>;
        recordsLearned: number;
      };
      assert.equal(snapshot.positions?.['t/0'], last, `last offset of key ${key}`);
      assert.equal(snapshot.recordsLearned, 20);
    }
  });

  test('10,000 keys with a cap of 100 live models stay under 30 MB (heap and array buffers)', async () => {
    const gc = vm.runInNewContext('gc', undefined) as (() => void) | undefined;
    assert.ok(typeof gc === 'function');
    const gcNow: () => void = gc;
    fs.rmSync(path.join(userDir, 'stream-ml'), { recursive: true, force: true });
    await helper.load(NODES, keyedFlow({ maxLive: '100', saveInterval: '3600' }));
    // Models keep much of their state in typed arrays, outside the heap proper: both count. Array buffers
    // are freed some time after the collection that finds them unreachable: wait, collect again.
    const used = async () => {
      for (let i = 0; i < 3; i++) {
        gcNow();
        await new Promise((r) => setTimeout(r, 100));
      }
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    // The helper's spies record every call of every node: that history is cleared before each measure.
    const resetHistory = () => (helper as unknown as { _sandbox: { resetHistory(): void } })._sandbox.resetHistory();
    resetHistory();
    const before = await used();
    const KEYS = 10_000;
    // Two records per key, in batches of 100 (the same key twice in a batch, far apart).
    for (let start = 0; start < KEYS; start += 50) {
      const batch: Record<string, unknown>[] = [];
      for (let round = 0; round < 2; round++)
        for (let k = start; k < start + 50; k++) batch.push({ machine: `k${k}`, a: k % 7, b: round });
      await through([{ payload: batch }]);
    }
    // No reference to the collection stays here: the unload below is to free it.
    assert.equal(fleet().liveCount, 100);
    assert.equal(fleet().storedCount, KEYS - 100);
    resetHistory();
    const grown = (await used()) - before;
    assert.ok(grown > 100 * 50e3, `the measure sees the 100 live models (${grown} bytes)`);
    assert.ok(grown < 30e6, `memory grew by ${(grown / 1e6).toFixed(1)} MB`);
    console.log(`# 10,000 keys, 100 live: memory grew by ${(grown / 1e6).toFixed(1)} MB`);
  });
});

v8.setFlagsFromString('--expose-gc');

async function until(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!probe()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
