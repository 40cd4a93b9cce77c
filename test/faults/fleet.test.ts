// Fleet learning in real `node-red` processes on the real broker: three Node-RED instances (standing in for three
// gateways) read one six-partition topic of Shuttle records in one consumer group, each with consumer → scorer →
// learner (sharing on a model topic) → producer. Every member ends up serving the model of the whole stream: the
// statistics of one model that learned every record once, and about its ROC-AUC, also when a member is SIGKILLed
// mid-stream or the broker is killed and restarted; a member that joins later starts from the fleet's model.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Consumer } from 'kafkajs';
import { createModel, rocAuc, type StatisticsReport } from '../../src/engine';
import { parseAttributeTable } from '../../src/node-red/model-config';
import { client, createTopic, uniqueName, waitFor, withAdmin } from '../kafka/support';
import { kafkaBrokers } from '../support/env';
import { brokerNotRestartable, killAndRestartBroker, NodeRedProcesses, pacedStream } from '../support/fault-run';
import { modelSummaries, type NodeRedProcess } from '../support/node-red-process';
import { assertSameStatistics } from '../support/same-statistics';
import { readShuttle, SHUTTLE_ATTRIBUTES, shuttleMissing } from '../support/shuttle';

// kafkajs can keep a connection waiting after the tests (see kafka-restart.test.ts): end once reported.
after(() => {
  setTimeout(() => process.exit(), 2_000);
});

const RECORDS = 20_000;
const PER_TICK = 200; // every 100 ms: about 2,000 records/s
const PARTITIONS = 6;
const INTERVAL_S = 0.5;
const SESSION_TIMEOUT_MS = 10_000;
const MAX_IN_FLIGHT = 50;

interface Prediction {
  id: number;
  member: string;
  score: number;
  label: number;
  replayed: boolean;
  /** When the collector received it (ms since the epoch). */
  at: number;
}

interface FleetSummary {
  member: string;
  members: { member: string; records: number; own: boolean; ageMs?: number }[];
  records: number;
  refused: number;
  learnedTwiceForgotten: number;
  published: number;
  lastContributionBytes: number;
  publishedBytes: number;
}

interface ModelSummary {
  name: string;
  recordsLearned: number;
  statistics: StatisticsReport;
  fleet?: FleetSummary;
}

const records = shuttleMissing()
  ? []
  : readShuttle()
      .records.slice(0, RECORDS)
      .map((r, id) => ({ id, ...r }));

/** One member's flow; `modelTopic` undefined: a learner of its own (the one model to compare with). */
function flows(
  member: string,
  input: string,
  output: string,
  modelTopic: string | undefined,
  groupId: string,
): unknown[] {
  return [
    { id: 'tab1', type: 'tab', label: 'fleet' },
    {
      id: 'broker',
      type: 'stream-ml-kafka-broker',
      brokers: kafkaBrokers().join(','),
      clientId: `fleet-${member}`,
      reconnectMaxDelay: 2_000,
      requestTimeout: 5_000,
      connectionTimeout: 2_000,
    },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      z: 'tab1',
      broker: 'broker',
      topics: input,
      groupId,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      sessionTimeout: SESSION_TIMEOUT_MS,
      // Few records between scorer and learner: prequential ROC-AUC on Shuttle falls with how far scoring runs
      // ahead of learning (one model, the engine alone: 0.9924 learning each record before scoring the next, 0.9905
      // 50 records ahead, 0.980 200 ahead, 0.957 500 ahead), and that depth would otherwise follow the timing of
      // each process's fetches, not the models.
      maxInFlight: MAX_IN_FLIGHT,
      wires: [['scorer']],
    },
    {
      id: 'scorer',
      type: 'stream-ml-anomaly-scorer',
      z: 'tab1',
      model: 'shuttle',
      output: 'payload',
      wires: [['learner']],
    },
    {
      id: 'learner',
      type: 'stream-ml-online-learner',
      z: 'tab1',
      model: 'shuttle',
      attributes: SHUTTLE_ATTRIBUTES,
      share: modelTopic !== undefined,
      shareBroker: 'broker',
      shareTopic: modelTopic,
      shareInterval: INTERVAL_S,
      shareMember: member,
      wires: [['member'], []],
    },
    {
      id: 'member',
      type: 'change',
      z: 'tab1',
      rules: [{ t: 'set', p: 'payload.member', pt: 'msg', to: member, tot: 'str' }],
      wires: [['producer']],
    },
    {
      id: 'producer',
      type: 'stream-ml-kafka-producer',
      z: 'tab1',
      broker: 'broker',
      topic: output,
      valueEncoding: 'json',
    },
  ];
}

async function shuttleModel(url: string): Promise<ModelSummary | undefined> {
  return (await modelSummaries<ModelSummary>(url)).find((m) => m.name === 'shuttle');
}

/** One model that learned the stream once, in order: its statistics and its prequential ROC-AUC. */
function reference(): { statistics: StatisticsReport; rocAuc: number } {
  const model = createModel({ attributes: parseAttributeTable(SHUTTLE_ATTRIBUTES) });
  const scores: number[] = [];
  const labels: number[] = [];
  for (const r of records) {
    const record = JSON.parse(JSON.stringify(r)) as Record<string, number>;
    scores.push(model.scoreOne(record).score);
    labels.push(record.outlier ? 1 : 0);
    model.learnOne(record);
  }
  return { statistics: model.statistics(), rocAuc: rocAuc(scores, labels) };
}

let expected: ReturnType<typeof reference> | undefined;
const one = (): ReturnType<typeof reference> => (expected ??= reference());

async function collectPredictions(topic: string, into: Prediction[]): Promise<Consumer> {
  const consumer = client().consumer({ groupId: uniqueName('fleet-out') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const v = JSON.parse(String(message.value)) as {
        id: number;
        member: string;
        outlier: number;
        anomaly?: { score?: number; replayed?: boolean };
      };
      into.push({
        id: v.id,
        member: v.member,
        score: v.anomaly?.score ?? NaN,
        label: v.outlier ? 1 : 0,
        replayed: v.anomaly?.replayed === true,
        at: Date.now(),
      });
    },
  });
  return consumer;
}

interface Fleet {
  /** A member of the fleet; `alone`: a Node-RED of its own group that does not share (one model of the stream). */
  start(member: string, alone?: boolean): Promise<NodeRedProcess>;
  /** Starts the stream of records into the input topic. */
  stream(): void;
  /** Holds the stream (resolving once no send is under way) or lets it go on. */
  hold(held: boolean): Promise<void>;
  input: string;
  processes: Map<string, NodeRedProcess>;
  predictions: Prediction[];
  /** Resolves once every record is in the input topic. */
  producing: Promise<void>;
  close(): Promise<void>;
  warnings(): string;
}

async function startFleet(): Promise<Fleet> {
  const input = await createTopic('fleet-in', PARTITIONS);
  const output = await createTopic('fleet-out', PARTITIONS);
  const modelTopic = uniqueName('fleet-models');
  const groupId = uniqueName('fleet-group');
  const members = new NodeRedProcesses('stream-ml-fleet');
  const predictions: Prediction[] = [];
  const collector = await collectPredictions(output, predictions);
  const stream = await pacedStream(input, records, PER_TICK, { waitForRelease: true });
  return {
    processes: members.processes,
    predictions,
    producing: stream.done,
    start: (member, alone = false) =>
      members.start(
        member,
        alone
          ? flows(member, input, output, undefined, `${groupId}-${member}`)
          : flows(member, input, output, modelTopic, groupId),
      ),
    stream: () => stream.release(),
    hold: (held) => stream.hold(held),
    input,
    warnings: () => members.warnings(),
    async close() {
      await stream.close();
      await members.close();
      await collector.disconnect();
    },
  };
}

/** Waits until a prediction for every record has come, saying which are missing otherwise. */
async function allPredicted(fleet: Fleet, members: string[]): Promise<void> {
  const unique = (): number =>
    new Set(fleet.predictions.filter((p) => members.includes(p.member)).map((p) => p.id)).size;
  await waitFor('a prediction for every record', () => unique() >= RECORDS, 120_000).catch((error: Error) => {
    throw new Error(`${error.message}: ${unique()} of ${RECORDS}; Node-RED warned:\n${fleet.warnings()}`);
  });
}

/** Waits until the member serves a model of every record (one interval after the last contribution). */
async function converged(nodeRed: NodeRedProcess, who: string): Promise<ModelSummary> {
  let summary: ModelSummary | undefined;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    summary = await shuttleModel(nodeRed.url);
    if (summary && summary.recordsLearned >= RECORDS) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(summary, `${who} lists the model`);
  // Anything still on its way would have shown by now: nothing may be counted twice.
  await new Promise((r) => setTimeout(r, (INTERVAL_S + 1) * 1000));
  return (await shuttleModel(nodeRed.url))!;
}

/** Each record's first prediction by the members given (a replay's prediction is a repeat), by record id. */
function firstPredictions(predictions: Prediction[], members: string[]): Map<number, Prediction> {
  const first = new Map<number, Prediction>();
  for (const p of predictions) if (members.includes(p.member) && !first.has(p.id)) first.set(p.id, p);
  return first;
}

/** ROC-AUC of the predictions of these records. */
function aucOf(predictions: Map<number, Prediction>, ids: Iterable<number>): number {
  const scores: number[] = [];
  const labels: number[] = [];
  for (const id of ids) {
    const p = predictions.get(id)!;
    scores.push(p.score);
    labels.push(p.label);
  }
  return rocAuc(scores, labels);
}

const skip = shuttleMissing();

test('three members learn one exact model; a fourth that joins later starts from it', { skip }, async () => {
  const fleet = await startFleet();
  try {
    const members = ['gw-1', 'gw-2', 'gw-3'];
    for (const m of members) await fleet.start(m);
    // One model of the whole stream, read the same way (from Kafka, in its own group), scored the same way.
    await fleet.start('alone', true);
    const startedAt = Date.now();
    fleet.stream();
    await fleet.producing;
    await allPredicted(fleet, ['alone']);
    await allPredicted(fleet, members);
    const streamSeconds = (Date.now() - startedAt) / 1000;
    const reference = one();
    const byFleet = firstPredictions(fleet.predictions, members);
    const byOne = firstPredictions(fleet.predictions, ['alone']);
    const all = [...byOne.keys()];
    const fleetAuc = aucOf(byFleet, all);
    const oneAuc = aucOf(byOne, all);
    console.log(
      `ROC-AUC of the first predictions: one model ${oneAuc.toFixed(4)}, the fleet ${fleetAuc.toFixed(4)} ` +
        `(one model learning the records in id order: ${reference.rocAuc.toFixed(4)})`,
    );
    // One-sided, with room: members see each other's records up to an interval late, and the load of this shared
    // machine moves that; measured 0.003-0.004 below one model here, and within 0.005 either way in the engine-level
    // check (test/unit/engine/fleet.test.ts), where members exchange on a fixed schedule.
    assert.ok(fleetAuc >= oneAuc - 0.01, `the fleet's ROC-AUC ${fleetAuc} against one model's ${oneAuc}`);
    let own = 0;
    for (const m of members) {
      const summary = await converged(fleet.processes.get(m)!, m);
      assert.equal(summary.recordsLearned, RECORDS, `${m} serves every record`);
      assertSameStatistics(summary.statistics, reference.statistics, m);
      const fleetView = summary.fleet!;
      assert.deepEqual(fleetView.members.map((x) => x.member).sort(), members);
      assert.equal(fleetView.refused, 0);
      const mine = fleetView.members.find((x) => x.own)!.records;
      own += mine;
      // On the records this member scored: its scores against those of one model.
      const ids = all.filter((id) => byFleet.get(id)!.member === m);
      const auc = aucOf(byFleet, ids);
      const alone = aucOf(byOne, ids);
      console.log(
        `${m}: ${mine} own records, ROC-AUC ${auc.toFixed(4)} on the ${ids.length} records it scored (one model ` +
          `${alone.toFixed(4)} on them), ${fleetView.published} contributions of ` +
          `${(fleetView.lastContributionBytes / 1024).toFixed(1)} kB (last), ` +
          `${(fleetView.publishedBytes / 1024 / streamSeconds).toFixed(0)} kB/s over the stream`,
      );
      // A third of the records each: measured up to 0.008 below one model on the same records.
      assert.ok(auc >= alone - 0.015, `${m}: ROC-AUC ${auc} against one model's ${alone}`);
    }
    assert.equal(own, RECORDS, 'the members learned every record once between them');

    // A member joining after the stream: no records come to it, yet it serves the fleet's model at once.
    const joinedAt = Date.now();
    const late = await fleet.start('gw-4');
    let summary = await shuttleModel(late.url);
    // Its learner reads the model topic after Node-RED has started its flows.
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && summary?.recordsLearned !== RECORDS;) {
      await new Promise((r) => setTimeout(r, 100));
      summary = await shuttleModel(late.url);
    }
    console.log(
      `gw-4 joined: ${((Date.now() - joinedAt) / 1000).toFixed(1)} s from start to serving the fleet's model`,
    );
    assert.equal(summary?.recordsLearned, RECORDS, "a late member starts from the fleet's model");
    assertSameStatistics(summary!.statistics, reference.statistics, 'gw-4');
    assert.equal(summary!.fleet!.members.find((x) => x.own)!.records, 0);
  } finally {
    await fleet.close();
  }
});

test(
  'a member killed (SIGKILL) mid-stream: the others take its partitions, every record counted once',
  { skip },
  async () => {
    const fleet = await startFleet();
    try {
      const members = ['gw-1', 'gw-2', 'gw-3'];
      for (const m of members) await fleet.start(m);
      fleet.stream();
      const unique = (): number => new Set(fleet.predictions.map((p) => p.id)).size;
      const killAt = Math.floor(RECORDS * (0.25 + 0.4 * Math.random()));
      await waitFor(
        `${killAt} predictions before the kill, some by gw-3`,
        () => unique() >= killAt && fleet.predictions.some((p) => p.member === 'gw-3'),
        120_000,
      );
      await fleet.processes.get('gw-3')!.kill();
      await fleet.producing;
      await allPredicted(fleet, members);
      const reference = one();
      for (const m of ['gw-1', 'gw-2']) {
        const summary = await converged(fleet.processes.get(m)!, m);
        const view = summary.fleet!;
        const sum = view.members.reduce((total, x) => total + x.records, 0);
        console.log(
          `${m} after gw-3's SIGKILL at ${killAt}: members ${view.members.map((x) => `${x.member} ${x.records}`).join(', ')}`,
        );
        assert.equal(sum, RECORDS, `${m}: the members' records add up to the records in the stream`);
        assert.equal(summary.recordsLearned, RECORDS, `${m} serves every record once`);
        assertSameStatistics(summary.statistics, reference.statistics, m);
      }
    } finally {
      await fleet.close();
    }
  },
);

test('the broker killed (SIGKILL) mid-stream and restarted', async (t) => {
  if (skip) return t.skip(skip);
  const notRestartable = brokerNotRestartable();
  if (notRestartable) return t.skip(notRestartable);
  const fleet = await startFleet();
  try {
    const members = ['gw-1', 'gw-2', 'gw-3'];
    for (const m of members) await fleet.start(m);
    fleet.stream();
    const unique = (): number => new Set(fleet.predictions.map((p) => p.id)).size;
    const killAt = Math.floor(RECORDS * (0.25 + 0.4 * Math.random()));
    await waitFor(`${killAt} predictions before the kill`, () => unique() >= killAt, 120_000);
    const before = fleet.predictions.length;
    await killAndRestartBroker(fleet, 3_000);
    const back = Date.now();
    await fleet.producing;
    // The input holds each record once (else the fleet would rightly learn a duplicate twice).
    const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(fleet.input));
    assert.equal(
      offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0),
      RECORDS,
      'records in the input topic',
    );
    await allPredicted(fleet, members);
    const after = fleet.predictions.slice(before);
    const seenBefore = new Set(fleet.predictions.filter((p) => p.at < back).map((p) => p.id));
    const firstNew = after.find((p) => p.at >= back && !seenBefore.has(p.id));
    t.diagnostic(
      `broker SIGKILL at ${killAt} predictions, down 3 s: ${fleet.predictions.length - unique()} duplicated ` +
        `predictions (${fleet.predictions.filter((p) => p.replayed).length} marked anomaly.replayed), ` +
        `${firstNew ? ((firstNew.at - back) / 1000).toFixed(1) : '-'} s from the restart to the first new prediction`,
    );
    const reference = one();
    let own = 0;
    for (const m of members) {
      const summary = await converged(fleet.processes.get(m)!, m);
      const view = summary.fleet!;
      const mine = view.members.find((x) => x.own)!.records;
      own += mine;
      const afterRestart = after.filter((p) => p.member === m && p.at >= back).length;
      t.diagnostic(
        `${m}: ${mine} own records, ${afterRestart} predictions after the restart, members ` +
          `${view.members.map((x) => `${x.member} ${x.records}`).join(', ')}, ${view.published} contributions, ` +
          `${view.learnedTwiceForgotten} learned twice and forgotten`,
      );
      // Six partitions for three members, and thousands of records after the restart: each member reads again.
      assert.ok(afterRestart > 0, `${m} scores records again after the broker's restart`);
      assert.equal(summary.recordsLearned, RECORDS, `${m} serves every record once`);
      assertSameStatistics(summary.statistics, reference.statistics, m);
      assert.deepEqual(view.members.map((x) => x.member).sort(), members);
      assert.equal(view.refused, 0);
      assert.equal(
        view.members.reduce((total, x) => total + x.records, 0),
        RECORDS,
        `${m}: the members' records add up to the records in the stream`,
      );
    }
    assert.equal(own, RECORDS, 'the members learned every record once between them');
  } finally {
    await fleet.close();
  }
});
