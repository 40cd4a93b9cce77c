// The example flows run as shipped (Dashboard widgets left out) in the real `node-red` command: the Shuttle
// replay without a broker scores and learns every record, the Kafka one does the same through the test broker
// and writes a prediction per record, a snapshot saved to a file restores into another learner, three scorers
// compare the detectors of one model, and the two fleets (one model, one model per machine) share over Kafka.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaBrokers, projectRoot } from '../support/env';
import { prepareUserFolder, startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { readShuttle, shuttleMissing } from '../support/shuttle';

type FlowNode = { id: string; type: string; name?: string; wires?: string[][]; [key: string]: unknown };

const RECORDS = 3000;
const started: NodeRedProcess[] = [];
const folders: string[] = [];

/** The example without its Dashboard nodes (not installed in tests), the replay sped up. */
function example(file: string): FlowNode[] {
  const flow = JSON.parse(fs.readFileSync(path.join(projectRoot, 'examples', file), 'utf8')) as FlowNode[];
  const dashboard = new Set(flow.filter((n) => n.type.startsWith('ui-')).map((n) => n.id));
  return flow
    .filter((n) => !dashboard.has(n.id))
    .map((n) => ({
      ...n,
      wires: n.wires?.map((port) => port.filter((id) => !dashboard.has(id))),
      ...(n.type === 'delay' ? { rate: '5000' } : {}),
    }));
}

/** A fleet example on the test broker, with topics, groups and model topic of its own (other tests share it). */
function onOwnTopics(flow: FlowNode[], suffix: string): FlowNode[] {
  return flow.map((n) => {
    if (n.type === 'stream-ml-kafka-broker') return { ...n, brokers: kafkaBrokers().join(',') };
    if (n.type === 'stream-ml-kafka-consumer')
      return { ...n, topics: `${n.topics}-${suffix}`, groupId: `${n.groupId}-${suffix}` };
    if (n.type === 'stream-ml-kafka-producer') return { ...n, topic: `${n.topic}-${suffix}` };
    if (n.type === 'stream-ml-online-learner') return { ...n, shareTopic: `${n.shareTopic}-${suffix}` };
    return n;
  });
}

async function createTopic(topic: string, numPartitions: number): Promise<void> {
  const kafka = new Kafka({ clientId: 'example-test', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  await admin.disconnect();
}

async function run(flows: FlowNode[]): Promise<{ url: string; userDir: string }> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-example-'));
  folders.push(userDir);
  // A short Shuttle CSV for the replay (the example reads the file SHUTTLE_CSV names).
  const { header, rows } = readShuttle();
  const csv = path.join(userDir, 'shuttle.csv');
  fs.writeFileSync(csv, [header.join(','), ...rows.slice(0, RECORDS).map((r) => r.join(','))].join('\n') + '\n');
  process.env.SHUTTLE_CSV = csv;
  prepareUserFolder(
    userDir,
    { flowFile: 'flows.json', fileWorkingDirectory: userDir, logging: { console: { level: 'info' } } },
    flows,
  );
  const nodeRed = await startNodeRed(userDir);
  started.push(nodeRed);
  return { url: nodeRed.url, userDir };
}

async function inject(url: string, id: string): Promise<void> {
  const res = await fetch(`${url}/inject/${id}`, { method: 'POST' });
  assert.equal(res.status, 200, `inject ${id}`);
}

async function models(url: string): Promise<
  {
    name: string;
    recordsLearned: number;
    evaluation?: { rocAuc: number };
    evaluations?: { detector: string; rocAuc: number }[];
  }[]
> {
  return (await fetch(`${url}/stream-ml/models`)).json() as never;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - start > timeoutMs)
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify(await models(started.at(-1)!.url).catch(String))}\n${started.at(-1)?.output()}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

after(async () => {
  for (const nodeRed of started) await nodeRed.stop();
  for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true });
});

test('Shuttle without a broker: the replay is scored, learned and evaluated', { skip: shuttleMissing() }, async () => {
  const flow = example('Shuttle anomaly detection without a broker.json');
  const { url } = await run(flow);
  await inject(url, flow.find((n) => n.type === 'inject')!.id);
  const shuttle = await until('every record learned', async () =>
    (await models(url)).find((m) => m.name === 'shuttle' && m.recordsLearned === RECORDS),
  );
  // The scorer reports the running ROC-AUC of the label field once a second.
  const evaluated = await until('the live ROC-AUC', async () => {
    const m = (await models(url)).find((x) => x.name === 'shuttle');
    return m?.evaluation && Number.isFinite(m.evaluation.rocAuc) ? m : undefined;
  });
  assert.equal(shuttle.recordsLearned, RECORDS);
  assert.ok(evaluated.evaluation!.rocAuc > 0.8, `ROC-AUC ${evaluated.evaluation!.rocAuc}`);
});

test(
  'Compare detectors: three scorers of one model each report the ROC-AUC of their detector',
  { skip: shuttleMissing() },
  async () => {
    const flow = example('Compare detectors on Shuttle.json');
    const { url } = await run(flow);
    await inject(url, flow.find((n) => n.type === 'inject')!.id);
    await until('every record learned', async () =>
      (await models(url)).find((m) => m.name === 'shuttle' && m.recordsLearned === RECORDS),
    );
    const compared = await until('an evaluation per detector', async () => {
      const m = (await models(url)).find((x) => x.name === 'shuttle');
      return m?.evaluations?.length === 3 ? m : undefined;
    });
    assert.deepEqual(
      compared.evaluations!.map((e) => e.detector),
      ['auto', 'gaussian', 'hst'],
    );
    for (const e of compared.evaluations!) assert.ok(e.rocAuc > 0.8, `${e.detector}: ROC-AUC ${e.rocAuc}`);
  },
);

test('Model snapshot and restore: the saved model loads into another learner', { skip: shuttleMissing() }, async () => {
  const flow = example('Model snapshot and restore.json');
  const { url, userDir } = await run(flow);
  const byName = (name: string) => flow.find((n) => n.type === 'inject' && n.name === name)!.id;
  await inject(url, byName('train'));
  await until('the trained model', async () =>
    (await models(url)).find((m) => m.name === 'trained' && m.recordsLearned === RECORDS),
  );
  await inject(url, byName('save snapshot'));
  const file = path.join(userDir, 'shuttle-model.json');
  await until('the snapshot file', async () => (fs.existsSync(file) && fs.statSync(file).size > 0 ? true : undefined));
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).format, 'stream-ml-model');
  await inject(url, byName('restore'));
  const restored = await until('the restored model', async () =>
    (await models(url)).find((m) => m.name === 'restored' && m.recordsLearned === RECORDS),
  );
  assert.equal(restored.recordsLearned, RECORDS);
});

test('Machines with one model each: every machine gets its own model, and the damaged pump is flagged', async () => {
  // The simulation needs no data set; its pump's bearing is damaged 15 s after the start.
  const flow = example('Machines with one model each.json');
  const { url } = await run(flow);
  type Keyed = { live: number; keys: { key: string; recordsLearned: number; lastScore: number }[] };
  const machines = async () =>
    (
      (await models(url)) as {
        name: string;
        keyed?: Keyed;
        evaluations?: { rocAuc: number; recall: number; precision: number }[];
      }[]
    ).find((m) => m.name === 'machines');
  const keyed = await until('six machines with a model each', async () => {
    const m = await machines();
    return m?.keyed?.live === 6 ? m.keyed : undefined;
  });
  assert.deepEqual(keyed.keys.map((k) => k.key).sort(), [
    'compressor-1',
    'compressor-2',
    'fan-1',
    'pump-1',
    'pump-2',
    'pump-3',
  ]);
  // After some 1,000 steps of damage (the healthy machines have learned about 2,500 records each), pump-2 has the
  // highest score of all, and the scorer's evaluation over every machine separates its fault from the normal records.
  const evaluated = await until(
    'a thousand steps of damage, pump-2 flagged',
    async () => {
      const m = await machines();
      const keys = m?.keyed?.keys ?? [];
      const healthy = keys.filter((k) => k.key !== 'pump-2');
      const top = keys.length > 0 ? keys.reduce((a, b) => (b.lastScore > a.lastScore ? b : a)) : undefined;
      const e = m?.evaluations?.[0];
      const steps = Math.min(...healthy.map((k) => k.recordsLearned));
      return healthy.length === 5 && steps >= 2400 && e && top?.key === 'pump-2' ? m : undefined;
    },
    90_000,
  );
  const e = evaluated.evaluations![0];
  assert.ok(e.rocAuc > 0.95, `ROC-AUC ${e.rocAuc}`);
  // Nearly every record of the damaged pump is flagged (none is learned as its normal), and only pump-2 is faulty:
  // most records flagged are its own, the other machines' false alarms are few.
  assert.ok(e.recall > 0.9, `recall ${e.recall}`);
  assert.ok(e.precision > 0.8, `precision ${e.precision}`);
  // The learner skipped the flagged records: pump-2's model holds its 1,500 healthy steps and next to no damage.
  const pump2 = evaluated.keyed!.keys.find((k) => k.key === 'pump-2')!;
  assert.ok(pump2.recordsLearned < 1550, `pump-2 learned ${pump2.recordsLearned} records`);
  console.log(
    `# machines example: ROC-AUC ${e.rocAuc.toFixed(3)}, precision ${e.precision.toFixed(3)}, recall ${e.recall.toFixed(3)}, pump-2 learned ${pump2.recordsLearned}`,
  );
});

test(
  'Shuttle with Kafka: replayed records come back as predictions with a score and the true label',
  { skip: shuttleMissing() },
  async () => {
    // Topics and groups of their own, so other tests on the same broker do not mix with this one.
    const suffix = randomUUID().slice(0, 8);
    const topicOf = (t: string) => `${t}-${suffix}`;
    const flow = example('Shuttle anomaly detection with Kafka.json').map((n) => {
      if (n.type === 'stream-ml-kafka-broker') return { ...n, brokers: kafkaBrokers().join(',') };
      if (n.type === 'stream-ml-kafka-consumer')
        return { ...n, topics: topicOf(String(n.topics)), groupId: `${n.groupId}-${suffix}` };
      if (n.type === 'stream-ml-kafka-producer') return { ...n, topic: topicOf(String(n.topic)) };
      return n;
    });
    const kafka = new Kafka({ clientId: 'example-test', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: topicOf('shuttle-sensor') }, { topic: topicOf('shuttle-sensor-preds') }],
      waitForLeaders: true,
    });
    await admin.disconnect();

    const { url } = await run(flow);
    await inject(url, flow.find((n) => n.type === 'inject')!.id);
    await until('every record learned', async () =>
      (await models(url)).find((m) => m.name === 'shuttle' && m.recordsLearned === RECORDS),
    );

    const consumer = kafka.consumer({ groupId: `example-test-${suffix}` });
    await consumer.connect();
    await consumer.subscribe({ topic: topicOf('shuttle-sensor-preds'), fromBeginning: true });
    const predictions: { outlier: number; anomaly: { score: number } }[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        predictions.push(JSON.parse(String(message.value)));
      },
    });
    await until('a prediction per record', async () => (predictions.length >= RECORDS ? true : undefined));
    await consumer.disconnect();
    assert.equal(predictions.length, RECORDS);
    for (const p of predictions) {
      assert.ok(p.outlier === 0 || p.outlier === 1);
      assert.ok(p.anomaly.score >= 0 && p.anomaly.score <= 1);
    }
  },
);

test(
  'Shuttle on a fleet: two gateways each learn part of the stream and both serve the model of all of it',
  { skip: shuttleMissing() },
  async () => {
    const suffix = randomUUID().slice(0, 8);
    const flow = onOwnTopics(example('Shuttle on a fleet.json'), suffix);
    // As the example's description says: the topic with two partitions, one for each gateway.
    await createTopic(`shuttle-fleet-${suffix}`, 2);

    const { url } = await run(flow);
    await inject(url, flow.find((n) => n.type === 'inject')!.id);
    type FleetModel = {
      name: string;
      recordsLearned: number;
      fleet?: { members: { member: string; records: number }[] };
    };
    const both = await until('both gateways serving every record', async () => {
      const listed = ((await models(url)) as FleetModel[]).filter((m) => m.name === 'shuttle-fleet');
      return listed.length === 2 && listed.every((m) => m.recordsLearned === RECORDS) ? listed : undefined;
    });
    for (const m of both) {
      const members = m.fleet!.members;
      assert.deepEqual(members.map((x) => x.member).sort(), ['gateway-a', 'gateway-b']);
      assert.equal(members[0].records + members[1].records, RECORDS, 'each record learned by one gateway');
      assert.ok(
        members.every((x) => x.records > 0),
        `both gateways learned a part: ${JSON.stringify(members)}`,
      );
    }
  },
);

test('Machines on a fleet: each gateway learns the machines of its partition, shared per machine, and pump-2 is flagged', async () => {
  const suffix = randomUUID().slice(0, 8);
  const flow = onOwnTopics(example('Machines on a fleet.json'), suffix);
  // As the example's description says: the topic with two partitions, one for each gateway.
  await createTopic(`machines-fleet-${suffix}`, 2);

  const { url } = await run(flow);
  await inject(url, flow.find((n) => n.type === 'inject' && n.name === 'start machines')!.id);
  type Keyed = { live: number; keys: { key: string; recordsLearned: number; lastScore: number }[] };
  type Listed = { name: string; keyed?: Keyed; fleet?: { member: string; members: string[]; keys: number } };
  const gateways = async () => ((await models(url)) as Listed[]).filter((m) => m.name === 'machines-fleet');
  // A machine's records all go to one partition (its key), so after the group's first rebalance one gateway learns
  // each machine; a gateway that read a machine before the rebalance keeps serving it, from the fleet's model. By
  // step 2,500 pump-2 has had a thousand steps of damage.
  const learnedOf = (both: Listed[], key: string) =>
    both
      .flatMap((m) => m.keyed?.keys ?? [])
      .filter((k) => k.key === key)
      .map((k) => k.recordsLearned);
  const MACHINES = ['compressor-1', 'compressor-2', 'fan-1', 'pump-1', 'pump-2', 'pump-3'];
  const listed = await until(
    'every machine learned 2,400 steps, pump-2 damaged',
    async () => {
      const both = await gateways();
      const healthy = MACHINES.filter((key) => key !== 'pump-2').map((key) => Math.max(0, ...learnedOf(both, key)));
      return both.length === 2 && Math.min(...healthy) >= 2400 ? both : undefined;
    },
    90_000,
  );
  const served = listed.map((m) => m.keyed!.keys.map((k) => k.key).sort());
  assert.deepEqual([...new Set(served.flat())].sort(), MACHINES);
  for (const m of listed) {
    assert.ok(m.fleet, 'the learner shares on the model topic');
    assert.deepEqual(
      m.fleet.members.slice().sort(),
      ['gateway-a', 'gateway-b'],
      `both gateways' contributions are on the model topic: ${JSON.stringify(m.fleet)}`,
    );
  }
  // A machine both gateways hold is served by each with the fleet's model of it, not only with what it learned
  // itself: the two counts are a moment's records apart (100 a second per machine, shared every second).
  for (const key of MACHINES) {
    const counts = learnedOf(listed, key);
    if (counts.length === 2) assert.ok(Math.min(...counts) >= 1500, `${key}: ${counts.join(' and ')} records`);
  }
  const keys = listed.flatMap((m) => m.keyed!.keys);
  const top = keys.reduce((a, b) => (b.lastScore > a.lastScore ? b : a));
  assert.equal(top.key, 'pump-2', `the highest last score: ${JSON.stringify(keys)}`);
  console.log(`# machines on a fleet: ${served.map((k, i) => `gateway ${'AB'[i]} ${k.join(', ')}`).join('; ')}`);
});
