// Fleet learning at full speed: records/s of three `node-red` processes sharing one model over a model topic against
// one process learning alone and one sharing alone, on a six-partition topic filled with the Shuttle records
// beforehand; and what the model topic costs (contributions, bytes) and how long a member joining later takes to
// serve the fleet's model. The broker and every process share this machine's cores: say so beside the figures.
//   npm run bench:fleet      BENCH_RECORDS=100000 BENCH_OUTPUT=batch to change the size or the consumer output
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { readShuttleRecords } from '../src/datasets/shuttle';
import { projectRoot } from '../test/support/env';
import {
  modelSummaries,
  PERSISTENT_SETTINGS,
  prepareUserFolder,
  startNodeRed,
  type NodeRedProcess,
} from '../test/support/node-red-process';
import { shuttleCsvPath } from './shuttle-csv';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 98_194);
const OUTPUT = process.env.BENCH_OUTPUT === 'batch' ? 'batch' : 'record';
const PARTITIONS = 6;
const ATTRIBUTES = [
  ...Array.from({ length: 9 }, (_, i) => ({ name: `f${i + 1}`, type: 'C' })),
  { name: 'outlier', type: 'X', label: true },
];

interface Summary {
  name: string;
  recordsLearned: number;
  fleet?: {
    members: { member: string; records: number; own: boolean }[];
    published: number;
    publishedBytes: number;
    lastContributionBytes: number;
  };
}

function flows(brokers: string, topic: string, group: string, member: string, modelTopic?: string): unknown[] {
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    { id: 'broker', type: 'stream-ml-kafka-broker', brokers, clientId: `bench-${member}` },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      z: 'tab',
      broker: 'broker',
      topics: topic,
      groupId: group,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      output: OUTPUT,
      batchSize: 500,
      wires: [['scorer']],
    },
    { id: 'scorer', type: 'stream-ml-anomaly-scorer', z: 'tab', model: 'shuttle', wires: [['learner']] },
    {
      id: 'learner',
      type: 'stream-ml-online-learner',
      z: 'tab',
      model: 'shuttle',
      attributes: ATTRIBUTES,
      share: modelTopic !== undefined,
      shareBroker: 'broker',
      shareTopic: modelTopic ?? '',
      shareInterval: 1,
      shareMember: member,
      wires: [[], []],
    },
  ];
}

async function summary(nodeRed: NodeRedProcess): Promise<Summary | undefined> {
  const all = await modelSummaries<Summary>(nodeRed.url).catch(() => undefined);
  return all?.find((m) => m.name === 'shuttle');
}

/** Records learned by the processes themselves (in a fleet, each one's own), polled every 50 ms. */
async function ownRecords(processes: NodeRedProcess[]): Promise<number> {
  const all = await Promise.all(processes.map(summary));
  return all.reduce(
    (sum, s) => sum + (s?.fleet ? s.fleet.members.find((m) => m.own)!.records : (s?.recordsLearned ?? 0)),
    0,
  );
}

interface Run {
  variant: string;
  processes: number;
  recordsPerSecond: number;
  seconds: number;
  contributions?: number;
  contributionKiB?: number;
  modelTopicKiBPerSecond?: number;
  joinSeconds?: number;
}

async function run(
  variant: string,
  members: number,
  shared: boolean,
  brokers: string,
  topic: string,
  join: boolean,
): Promise<Run> {
  const name = variant.replace(/\W+/g, '-');
  const group = `bench-fleet-${name}-${Date.now()}`;
  const modelTopic = shared ? `bench-fleet-models-${name}-${Date.now()}` : undefined;
  const dirs: string[] = [];
  const processes: NodeRedProcess[] = [];
  const start = async (member: string): Promise<NodeRedProcess> => {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), `stream-ml-bench-fleet-${member}-`));
    dirs.push(userDir);
    prepareUserFolder(userDir, PERSISTENT_SETTINGS, flows(brokers, topic, group, member, modelTopic));
    return startNodeRed(userDir);
  };
  try {
    processes.push(...(await Promise.all(Array.from({ length: members }, (_, i) => start(`gw-${i + 1}`)))));
    let first = 0;
    let last = 0;
    for (const deadline = Date.now() + 600_000; Date.now() < deadline;) {
      const learned = await ownRecords(processes);
      const now = performance.now();
      if (learned > 0 && first === 0) first = now;
      if (learned >= RECORDS) {
        last = now;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (last === 0) {
      const outputs = processes.map((p) =>
        p
          .output()
          .split('\n')
          .filter((l) => /\[(warn|error)\]/.test(l))
          .slice(-5),
      );
      throw new Error(
        `${variant}: ${await ownRecords(processes)} of ${RECORDS} records learned in 10 minutes; ${JSON.stringify(outputs)}`,
      );
    }
    const seconds = (last - first) / 1000;
    const out: Run = { variant, processes: members, recordsPerSecond: Math.round(RECORDS / seconds), seconds };
    if (shared) {
      const views = (await Promise.all(processes.map(summary))).map((s) => s!.fleet!);
      out.contributions = views.reduce((sum, v) => sum + v.published, 0);
      out.contributionKiB = views.reduce((sum, v) => sum + v.lastContributionBytes, 0) / views.length / 1024;
      out.modelTopicKiBPerSecond = views.reduce((sum, v) => sum + v.publishedBytes, 0) / 1024 / seconds;
    }
    if (join) {
      const joinedAt = performance.now();
      const late = await start('gw-late');
      processes.push(late);
      while ((await summary(late))?.recordsLearned !== RECORDS) await new Promise((r) => setTimeout(r, 20));
      out.joinSeconds = (performance.now() - joinedAt) / 1000;
    }
    return out;
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set (npm run kafka:start prints it)');
  const shuttle = readShuttleRecords(await shuttleCsvPath()).map((r) => JSON.stringify(r));
  const kafka = new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const topic = `bench-fleet-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < RECORDS; i += 1000) {
    const messages = Array.from({ length: Math.min(1000, RECORDS - i) }, (_, j) => ({
      key: String(i + j),
      value: shuttle[(i + j) % shuttle.length],
    }));
    await producer.send({ topic, messages, acks: -1 });
  }
  await producer.disconnect();
  // BENCH_VARIANTS=alone,sharing,three picks some.
  const only = process.env.BENCH_VARIANTS?.split(',');
  const wanted = (name: string): boolean => !only || only.includes(name);
  const runs: Run[] = [];
  if (wanted('alone')) runs.push(await run('one alone', 1, false, brokers, topic, false));
  if (wanted('sharing')) runs.push(await run('one sharing', 1, true, brokers, topic, false));
  if (wanted('three')) runs.push(await run('three sharing', 3, true, brokers, topic, true));
  console.log(
    `\n${RECORDS} Shuttle records in ${PARTITIONS} partitions, consumer output ${OUTPUT}; the broker and every ` +
      `node-red process share this machine's ${os.cpus().length} cores`,
  );
  for (const r of runs)
    console.log(
      `${r.variant.padEnd(14)} ${String(r.recordsPerSecond).padStart(7)} records/s  ` +
        `(${(r.recordsPerSecond / runs[0].recordsPerSecond).toFixed(2)}x of one alone)` +
        (r.contributions !== undefined
          ? `  ${r.contributions} contributions of ${r.contributionKiB!.toFixed(1)} KiB, ` +
            `${r.modelTopicKiBPerSecond!.toFixed(0)} KiB/s on the model topic`
          : '') +
        (r.joinSeconds !== undefined
          ? `  a late member served the fleet's model ${r.joinSeconds.toFixed(1)} s after its start`
          : ''),
    );
  fs.mkdirSync(path.join(projectRoot, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(projectRoot, 'bench', 'results', 'fleet.json'),
    `${JSON.stringify({ date: new Date().toISOString(), records: RECORDS, output: OUTPUT, cores: os.cpus().length, node: process.version, runs }, null, 2)}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
