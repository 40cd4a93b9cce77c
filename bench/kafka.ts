// Throughput of the Kafka nodes beside plain kafkajs on the same topic and broker, in the same run:
//   consumer node (one message per record) → counting node   vs   kafkajs consumer, eachMessage + JSON.parse
//                                                                  (and, for reference, eachBatch + JSON.parse)
//   consumer node (batch output)           → counting node   vs   kafkajs consumer, eachBatch + JSON.parse
//   producer node (acks all, batches)                         vs   kafkajs producer.sendBatch (acks all, batches)
// Median of several runs after a warm-up. Uses KAFKA_BROKERS, or starts the local broker (and stops it after).
//   npm run bench:kafka            BENCH_RECORDS=100000 BENCH_RUNS=5 to change the size
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { nodeRedPath, projectRoot } from '../test/support/env';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const BATCH = 500;

type Counter = { count: number; first: number; last: number; target: number; resolve?: () => void };
const counter: Counter = { count: 0, first: 0, last: 0, target: 0 };

function arm(target: number): Promise<void> {
  Object.assign(counter, { count: 0, first: 0, last: 0, target });
  return new Promise((resolve) => (counter.resolve = resolve));
}

function tally(n: number): void {
  const now = performance.now();
  if (counter.count === 0) counter.first = now;
  counter.count += n;
  if (counter.count >= counter.target && counter.resolve) {
    counter.last = now;
    const resolve = counter.resolve;
    counter.resolve = undefined;
    resolve();
  }
}

// Records per second from the first record to the last: excludes group join, which both sides pay alike.
const rate = (): number => (counter.count - 1) / ((counter.last - counter.first) / 1000);

function value(i: number): string {
  return JSON.stringify({
    id: i,
    sensor: `s${i % 16}`,
    t: 1_700_000_000_000 + i,
    f1: i * 0.5,
    f2: -i,
    f3: i % 7 === 0,
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function withTimeout<T>(what: string, promise: Promise<T>, ms = 120_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000}s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  let stopBroker: (() => Promise<unknown>) | undefined;
  if (!process.env.KAFKA_BROKERS) {
    // scripts/kafka.mjs is an ES module; this file compiles to CommonJS, whose require() cannot load it on Node 20.
    const importModule = new Function('p', 'return import(p)') as (p: string) => Promise<Record<string, unknown>>;
    const kafkaScript = await importModule(path.join(projectRoot, 'scripts', 'kafka.mjs'));
    const state = (await (kafkaScript.startKafka as () => Promise<{ brokers: string; reused?: boolean }>)()) ?? {};
    process.env.KAFKA_BROKERS = state.brokers;
    if (!state.reused) stopBroker = kafkaScript.stopKafka as () => Promise<unknown>;
  }
  const brokers = (process.env.KAFKA_BROKERS ?? '').split(',');
  const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  const topic = `bench-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();

  // Fill the topic for the consumer runs (this also is the plain producer's first, warm-up, pass).
  const producer = kafka.producer();
  await producer.connect();
  const plainProduce = async (target: string): Promise<number> => {
    const start = performance.now();
    for (let i = 0; i < RECORDS; i += BATCH) {
      const messages = Array.from({ length: Math.min(BATCH, RECORDS - i) }, (_, j) => ({ value: value(i + j) }));
      await producer.sendBatch({ topicMessages: [{ topic: target, messages }], acks: -1 });
    }
    return RECORDS / ((performance.now() - start) / 1000);
  };
  await plainProduce(topic);

  let group = 0;
  // The plain consumer as its users write it: one handler call per record (eachMessage), or per fetched batch.
  const plainConsume = async (mode: 'eachMessage' | 'eachBatch'): Promise<number> => {
    const consumer = kafka.consumer({ groupId: `bench-plain-${group++}`, maxWaitTimeInMs: 1000 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = arm(RECORDS);
    if (mode === 'eachMessage') {
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (JSON.parse(String(message.value)) !== undefined) tally(1);
        },
      });
    } else {
      await consumer.run({
        eachBatch: async ({ batch }) => {
          const values = batch.messages.map((m) => JSON.parse(String(m.value)) as unknown);
          tally(values.length);
        },
      });
    }
    await withTimeout(`plain consumer (${mode})`, done);
    const r = rate();
    await consumer.disconnect();
    return r;
  };

  // A real Node-RED runtime (not the test helper, whose spies record every call), with the built nodes and a
  // counting node loaded from nodesDir, as a user's Node-RED would load them.
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-bench-'));
  const counterDir = path.join(userDir, 'bench-nodes');
  fs.mkdirSync(counterDir);
  fs.writeFileSync(
    path.join(counterDir, 'bench-counter.js'),
    `module.exports = function (RED) {
      RED.nodes.registerType('bench-counter', function (config) {
        RED.nodes.createNode(this, config);
        this.on('input', (msg, send, done) => { global.streamMlBenchTally(Array.isArray(msg.payload) ? msg.payload.length : 1); done(); });
      });
      // Sends pre-decoded records as fast as a flow takes them: Node-RED's own per-message cost, without Kafka.
      RED.nodes.registerType('bench-source', function (config) {
        RED.nodes.createNode(this, config);
        const node = this;
        global.streamMlBenchSource = (values) => {
          let i = 0;
          const chunk = () => {
            const end = Math.min(values.length, i + 1000);
            for (; i < end; i++) node.send({ topic: 't', payload: JSON.parse(values[i]), key: null, kafka: { partition: 0, offset: String(i) } });
            if (i < values.length) setImmediate(chunk);
          };
          chunk();
        };
      });
    };\n`,
  );
  fs.writeFileSync(path.join(counterDir, 'bench-counter.html'), '<script type="text/javascript"></script>\n');
  (global as unknown as { streamMlBenchTally: (n: number) => void }).streamMlBenchTally = tally;
  const RED = require(nodeRedPath()) as {
    init(server: http.Server, settings: object): void;
    start(): Promise<void>;
    stop(): Promise<void>;
    hooks: { add(name: string, fn: (e: unknown) => void): void; remove(name: string): void };
    nodes: { getNode(id: string): { receive(msg: object): void } | null };
    runtime: { flows: { setFlows(opts: object): Promise<unknown> } };
  };
  const server = http.createServer();
  RED.init(server, {
    userDir,
    nodesDir: [path.join(projectRoot, 'dist', 'nodes'), counterDir],
    httpAdminRoot: false,
    httpNodeRoot: false,
    credentialSecret: false,
    logging: { console: { level: 'warn' } },
  });
  await RED.start();
  const deploy = (flows: object[]): Promise<unknown> =>
    RED.runtime.flows.setFlows({ flows: { flows }, deploymentType: 'full' });
  const runtimeHooks = RED.hooks;
  const brokerNode = { id: 'broker', type: 'stream-ml-kafka-broker', brokers: brokers.join(','), clientId: 'bench' };

  const nodeConsume = async (output: 'record' | 'batch'): Promise<number> => {
    const done = arm(RECORDS);
    await deploy([
      { id: 'f1', type: 'tab' },
      brokerNode,
      {
        id: 'consumer',
        type: 'stream-ml-kafka-consumer',
        z: 'f1',
        x: 1,
        y: 1,
        broker: 'broker',
        topics: topic,
        groupId: `bench-node-${group++}`,
        fromBeginning: 'earliest',
        valueEncoding: 'json',
        output,
        batchSize: BATCH,
        ...(process.env.BENCH_MAX_IN_FLIGHT ? { maxInFlight: Number(process.env.BENCH_MAX_IN_FLIGHT) } : {}),
        wires: [['count']],
      },
      { id: 'count', type: 'bench-counter', z: 'f1', x: 1, y: 1, wires: [] },
    ]);
    await withTimeout(`consumer node (${output})`, done);
    const r = rate();
    await deploy([]);
    return r;
  };

  const passThrough = async (): Promise<number> => {
    const values = Array.from({ length: RECORDS }, (_, i) => value(i));
    await deploy([
      { id: 'f1', type: 'tab' },
      { id: 'source', type: 'bench-source', z: 'f1', x: 1, y: 1, wires: [['count']] },
      { id: 'count', type: 'bench-counter', z: 'f1', x: 1, y: 1, wires: [] },
    ]);
    const g = global as unknown as { streamMlBenchSource?: (values: string[]) => void };
    for (let i = 0; i < 100 && !g.streamMlBenchSource; i++) await new Promise((r) => setTimeout(r, 50));
    const done = arm(RECORDS);
    g.streamMlBenchSource?.(values);
    await withTimeout('pass-through flow', done);
    const r = rate();
    await deploy([]);
    g.streamMlBenchSource = undefined;
    return r;
  };

  const nodeProduce = async (): Promise<number> => {
    const target = `${topic}-out-${group++}`;
    await deploy([
      { id: 'f1', type: 'tab' },
      brokerNode,
      {
        id: 'producer',
        type: 'stream-ml-kafka-producer',
        z: 'f1',
        x: 1,
        y: 1,
        broker: 'broker',
        topic: target,
        valueEncoding: 'string',
        acks: 'all',
        batchSize: BATCH,
        queueSize: RECORDS,
        wires: [],
      },
    ]);
    let node = RED.nodes.getNode('producer');
    // Bounded: the deploy starts nodes asynchronously, within a few ms.
    for (let i = 0; i < 100 && !node; i++) {
      await new Promise((r) => setTimeout(r, 50));
      node = RED.nodes.getNode('producer');
    }
    if (!node) throw new Error('the producer node did not start');
    const done = arm(RECORDS);
    runtimeHooks.add('onComplete.bench', (event) => {
      if ((event as { node: { id: string } }).node.id === 'producer') tally(1);
    });
    // Messages arrive in chunks, as from a flow, not all in one tick.
    for (let i = 0; i < RECORDS; i += BATCH) {
      for (let j = i; j < Math.min(RECORDS, i + BATCH); j++) node.receive({ payload: value(j) });
      await new Promise((r) => setImmediate(r));
    }
    await withTimeout('producer node', done);
    runtimeHooks.remove('*.bench');
    const r = (RECORDS - 1) / ((counter.last - counter.first) / 1000);
    await deploy([]);
    return r;
  };

  // Each case: the node's rate, and the plain kafkajs rate it is compared with (measured right after it).
  const results: Record<string, { reference: string; node: number[]; plain: number[] }> = {
    // Not Kafka: a source node sending decoded records into the same counting node, i.e. what one message per
    // record costs in Node-RED itself, beside the per-record kafkajs consumer.
    'Node-RED pass-through': { reference: 'eachMessage', node: [], plain: [] },
    'consumer, per record': { reference: 'eachMessage', node: [], plain: [] },
    // The strictest reference for per-record output: kafkajs handing whole batches to one handler call.
    'consumer, per record ': { reference: 'eachBatch', node: [], plain: [] },
    'consumer, batch': { reference: 'eachBatch', node: [], plain: [] },
    producer: { reference: 'sendBatch', node: [], plain: [] },
  };
  // Warm-up of each side, then alternate node and plain so drift on a shared machine hits both.
  await nodeConsume('record');
  await plainConsume('eachMessage');
  await plainConsume('eachBatch');
  // BENCH_ONLY=record|batch|producer runs one case (for profiling).
  const only = process.env.BENCH_ONLY;
  for (const name of Object.keys(results)) if (only && !name.includes(only)) delete results[name];
  for (let run = 0; run < RUNS; run++) {
    if (results['Node-RED pass-through']) {
      results['Node-RED pass-through'].node.push(await passThrough());
      results['Node-RED pass-through'].plain.push(await plainConsume('eachMessage'));
    }
    if (results['consumer, per record']) {
      const node = await nodeConsume('record');
      results['consumer, per record'].node.push(node);
      results['consumer, per record'].plain.push(await plainConsume('eachMessage'));
      results['consumer, per record '].node.push(node);
      results['consumer, per record '].plain.push(await plainConsume('eachBatch'));
    }
    if (results['consumer, batch']) {
      results['consumer, batch'].node.push(await nodeConsume('batch'));
      results['consumer, batch'].plain.push(await plainConsume('eachBatch'));
    }
    if (results.producer) {
      results.producer.node.push(await nodeProduce());
      results.producer.plain.push(await plainProduce(`${topic}-plain-${run}`));
    }
    process.stderr.write(`run ${run + 1}/${RUNS} done\n`);
  }
  await producer.disconnect();
  await RED.stop();
  fs.rmSync(userDir, { recursive: true, force: true });

  const rows = Object.entries(results).map(([name, r]) => {
    const node = median(r.node);
    const plain = median(r.plain);
    return {
      name: name.trim(),
      reference: `kafkajs ${r.reference}`,
      nodeRecordsPerSecond: Math.round(node),
      plainRecordsPerSecond: Math.round(plain),
      ratio: node / plain,
    };
  });
  console.log(
    `\nKafka nodes vs plain kafkajs, ${RECORDS} records of ~${value(RECORDS).length} bytes, median of ${RUNS} runs`,
  );
  console.log(
    `${'case'.padEnd(24)}${'node rec/s'.padStart(12)}${'reference'.padStart(20)}${'rec/s'.padStart(10)}${'ratio'.padStart(8)}`,
  );
  for (const row of rows)
    console.log(
      `${row.name.padEnd(24)}${String(row.nodeRecordsPerSecond).padStart(12)}${row.reference.padStart(20)}${String(row.plainRecordsPerSecond).padStart(10)}${row.ratio.toFixed(2).padStart(8)}`,
    );
  const out = {
    date: new Date().toISOString(),
    records: RECORDS,
    runs: RUNS,
    node: process.version,
    results: rows,
    raw: results,
  };
  fs.mkdirSync(path.join(projectRoot, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(projectRoot, 'bench', 'results', 'kafka.json'), `${JSON.stringify(out, null, 2)}\n`);
  if (stopBroker) await stopBroker();
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
