// What the commit barrier costs: records/s through consumer node → scorer → learner → counting node in a real
// Node-RED runtime, with the model in the memory store (no checkpoints: commits as before) and in the
// localfilesystem store (a durable checkpoint before the consumer may commit), per record and batch output.
//   npm run bench:exactly-once     BENCH_RECORDS=50000 BENCH_RUNS=3 to change the size
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { nodeRedPath, projectRoot } from '../test/support/env';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const STORES = ['memory', 'localfilesystem'] as const;

function value(i: number): string {
  // Deterministic, varied numbers: a schema of five continuous features is guessed from them.
  const x = Math.sin(i * 12.9898) * 43758.5453;
  const u = x - Math.floor(x);
  return JSON.stringify({ f1: u, f2: u * u, f3: (i % 97) / 97, f4: Math.cos(i), f5: (i * 7) % 13 });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One store, in its own process (a Node-RED runtime is initialised once per process). */
async function measure(store: string, topic: string, brokers: string): Promise<Record<string, number[]>> {
  let count = 0;
  let first = 0;
  let last = 0;
  let resolve: (() => void) | undefined;
  (global as unknown as { streamMlBenchTally: (n: number) => void }).streamMlBenchTally = (n) => {
    const now = performance.now();
    if (count === 0) first = now;
    count += n;
    if (count >= RECORDS && resolve) {
      last = now;
      resolve();
      resolve = undefined;
    }
  };
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-bench-eo-'));
  const nodesDir = path.join(userDir, 'bench-nodes');
  fs.mkdirSync(nodesDir);
  fs.writeFileSync(
    path.join(nodesDir, 'bench-counter.js'),
    `module.exports = function (RED) {
      RED.nodes.registerType('bench-counter', function (config) {
        RED.nodes.createNode(this, config);
        this.on('input', (msg, send, done) => { global.streamMlBenchTally(Array.isArray(msg.payload) ? msg.payload.length : 1); done(); });
      });
    };\n`,
  );
  fs.writeFileSync(path.join(nodesDir, 'bench-counter.html'), '<script type="text/javascript"></script>\n');
  const RED = require(nodeRedPath()) as {
    init(server: http.Server, settings: object): void;
    start(): Promise<void>;
    stop(): Promise<void>;
    runtime: { flows: { setFlows(opts: object): Promise<unknown> } };
  };
  RED.init(http.createServer(), {
    userDir,
    nodesDir: [path.join(projectRoot, 'dist', 'nodes'), nodesDir],
    httpAdminRoot: false,
    httpNodeRoot: false,
    credentialSecret: false,
    logging: { console: { level: 'warn' } },
    contextStorage: { default: { module: store } },
  });
  await RED.start();
  const deploy = (flows: object[]): Promise<unknown> =>
    RED.runtime.flows.setFlows({ flows: { flows }, deploymentType: 'full' });
  const results: Record<string, number[]> = { record: [], batch: [] };
  let group = 0;
  for (let run = 0; run < RUNS + 1; run++) {
    for (const output of ['record', 'batch'] as const) {
      count = 0;
      const done = new Promise<void>((r) => (resolve = r));
      await deploy([
        { id: 'f1', type: 'tab' },
        { id: 'broker', type: 'stream-ml-kafka-broker', brokers, clientId: 'bench' },
        {
          id: 'consumer',
          type: 'stream-ml-kafka-consumer',
          z: 'f1',
          broker: 'broker',
          topics: topic,
          groupId: `bench-eo-${store}-${process.pid}-${group++}`,
          fromBeginning: 'earliest',
          valueEncoding: 'json',
          output,
          batchSize: 500,
          wires: [['scorer']],
        },
        // A model of its own per run: the learner's checkpoints grow with nothing but the model.
        { id: 'scorer', type: 'stream-ml-anomaly-scorer', z: 'f1', model: `m${group}`, wires: [['learner']] },
        { id: 'learner', type: 'stream-ml-online-learner', z: 'f1', model: `m${group}`, wires: [['count'], []] },
        { id: 'count', type: 'bench-counter', z: 'f1', wires: [] },
      ]);
      await done;
      // The first run of each output warms up.
      if (run > 0) results[output].push((count - 1) / ((last - first) / 1000));
      await deploy([]);
    }
  }
  await RED.stop();
  fs.rmSync(userDir, { recursive: true, force: true });
  return results;
}

async function main(): Promise<void> {
  const [, , store, topicArg] = process.argv;
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set (npm run kafka:start prints it)');
  if (store) {
    process.stdout.write(`${JSON.stringify(await measure(store, topicArg, brokers))}\n`);
    process.exit(0);
  }
  const kafka = new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const topic = `bench-eo-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < RECORDS; i += 500) {
    const messages = Array.from({ length: Math.min(500, RECORDS - i) }, (_, j) => ({ value: value(i + j) }));
    await producer.sendBatch({ topicMessages: [{ topic, messages }], acks: -1 });
  }
  await producer.disconnect();
  const rows: { store: string; output: string; recordsPerSecond: number; runs: number[] }[] = [];
  for (const store of STORES) {
    const child = spawnSync(process.execPath, [__filename, store, topic], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (child.status !== 0) throw new Error(`the ${store} run failed`);
    const results = JSON.parse(child.stdout.trim().split('\n').pop()!) as Record<string, number[]>;
    for (const [output, runs] of Object.entries(results))
      rows.push({ store, output, recordsPerSecond: Math.round(median(runs)), runs: runs.map(Math.round) });
  }
  console.log(`\nconsumer → scorer → learner, ${RECORDS} records, median of ${RUNS} runs (records/s)`);
  for (const output of ['record', 'batch']) {
    const [memory, file] = STORES.map((s) => rows.find((r) => r.store === s && r.output === output)!);
    console.log(
      `${output.padEnd(8)} memory store ${String(memory.recordsPerSecond).padStart(7)}   localfilesystem (checkpoints) ` +
        `${String(file.recordsPerSecond).padStart(7)}   ratio ${(file.recordsPerSecond / memory.recordsPerSecond).toFixed(2)}`,
    );
  }
  fs.mkdirSync(path.join(projectRoot, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(projectRoot, 'bench', 'results', 'exactly-once.json'),
    `${JSON.stringify({ date: new Date().toISOString(), records: RECORDS, runs: RUNS, node: process.version, rows }, null, 2)}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
