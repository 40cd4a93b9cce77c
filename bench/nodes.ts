// `npm run bench:nodes`: messages per second through the anomaly scorer and online learner in a real Node-RED
// runtime (embedded with RED.init; the test helper spies on every node call, which would skew the figures),
// beside references measured in the same run:
//   - per-record messages: the same two-node flow with pass-through nodes in their place (target >= 0.7x);
//   - batches of 500 records: the engine's own scoreMany + learnMany on the same batches (target >= 0.8x).
// A third per-record flow runs the same two nodes over a model that does no work, which splits the cost of the nodes
// themselves from the engine's.
// Medians of several timed runs after a warm-up; figures only, nothing fails on time. Writes
// bench/results/nodes.json (`-- --detector gaussian` etc.: nodes-gaussian.json).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createModel, type AttributeSpec, type DetectorName, type Model, type ScoreResult } from '../src/engine';
import { findModel } from '../src/node-red/model-registry';
import { readShuttleRecords } from '../src/datasets/shuttle';
import { median, pump, startRuntime, waitFor, type Runtime } from './embedded-node-red';
import { shuttleCsvPath } from './shuttle-csv';

const root = path.resolve(__dirname, '..', '..');
const { values: args } = parseArgs({
  options: {
    detector: { type: 'string', default: 'auto' },
    runs: { type: 'string', default: '5' },
    records: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '500' },
    out: { type: 'string' },
  },
});
const detector = args.detector as DetectorName;
// bench/results/nodes.json for the default detector, nodes-<detector>.json for the others.
const outFile =
  args.out ?? path.join(root, 'bench', 'results', detector === 'auto' ? 'nodes.json' : `nodes-${detector}.json`);
const RUNS = Number(args.runs);
const BATCH = Number(args.batch);
const IN_FLIGHT = 1000;

const attributes: { name: string; type: string; label?: boolean }[] = [
  ...Array.from({ length: 9 }, (_, i) => ({ name: `f${i + 1}`, type: 'C' })),
  { name: 'outlier', type: 'X', label: true },
];
const engineAttributes: AttributeSpec[] = attributes.map((a) =>
  a.label ? { name: a.name, type: 'X', role: 'label' } : { name: a.name, type: 'C' },
);

/** The model in place for the idle flow: scores without looking (a fresh result, as the engine gives) and learns
 * nothing; everything else is the real model's. */
function idleModel(real: Model): Model {
  const contributions = [{ attribute: 'f1', share: 1 }];
  return Object.assign(Object.create(real) as Model, {
    scoreOne: (): ScoreResult => ({
      score: 0.1,
      isAnomaly: false,
      threshold: 1,
      detector: 'idle',
      contributions,
      warmingUp: false,
    }),
    learnOne: () => ({ learned: true }),
  });
}

type FlowNode = { id: string; type: string; [key: string]: unknown };

interface Contender {
  first: string;
  sink: string;
  payloads: unknown[];
  recordsPerPayload: number;
  rates: number[];
}

/** Timed runs alternate between the contenders, so a busy moment of the machine hits each of them alike. */
async function race(RED: Runtime, contenders: Contender[], warm: (c: Contender) => unknown[]): Promise<void> {
  for (const c of contenders) await pump(RED, warm(c), c.first, c.sink, IN_FLIGHT);
  for (let run = 0; run < RUNS; run++) {
    for (const c of contenders)
      c.rates.push((await pump(RED, c.payloads, c.first, c.sink, IN_FLIGHT)) * c.recordsPerPayload);
  }
}

function engineBatchRate(batches: Record<string, number>[][], warm: Record<string, number>[][]): number[] {
  const model = createModel({ attributes: engineAttributes, detector });
  for (const b of warm) {
    model.scoreMany(b);
    model.learnMany(b);
  }
  const records = batches.reduce((s, b) => s + b.length, 0);
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint();
    for (const b of batches) {
      model.scoreMany(b);
      model.learnMany(b);
    }
    rates.push(records / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  return rates;
}

async function main(): Promise<void> {
  const all = readShuttleRecords(await shuttleCsvPath());
  const warm = all.slice(0, 5000);
  const stream = all.slice(5000, 5000 + Number(args.records));
  const tab: FlowNode = { id: 't', type: 'tab' };
  const mlFlow = (prefix: string): FlowNode[] => [
    { id: `${prefix}-first`, type: 'stream-ml-anomaly-scorer', z: 't', model: prefix, wires: [[`${prefix}-learner`]] },
    {
      id: `${prefix}-learner`,
      type: 'stream-ml-online-learner',
      z: 't',
      model: prefix,
      detector,
      attributes,
      wires: [[`${prefix}-sink`], []],
    },
    { id: `${prefix}-sink`, type: 'bench-sink', z: 't' },
  ];
  const passFlow: FlowNode[] = [
    { id: 'pass-first', type: 'bench-pass', z: 't', wires: [['pass-second']] },
    { id: 'pass-second', type: 'bench-pass', z: 't', wires: [['pass-sink']] },
    { id: 'pass-sink', type: 'bench-sink', z: 't' },
  ];
  const batchesOf = <T>(rs: T[]) =>
    Array.from({ length: Math.ceil(rs.length / BATCH) }, (_, i) => rs.slice(i * BATCH, (i + 1) * BATCH));
  const copy = (rs: Record<string, number>[]) => rs.map((r) => ({ ...r }));
  const RED = await startRuntime([tab, ...passFlow, ...mlFlow('record'), ...mlFlow('idle'), ...mlFlow('batch')], {
    userDirPrefix: 'stream-ml-bench-',
  });
  // The learner creates its model on start; once it has, the idle flow's is swapped for one that does no work.
  const idleEntry = await waitFor(() => (findModel('t//idle')?.model ? findModel('t//idle') : undefined));
  idleEntry.replace(idleModel(idleEntry.model!));
  const contender = (prefix: string, payloads: unknown[], recordsPerPayload: number): Contender => ({
    first: `${prefix}-first`,
    sink: `${prefix}-sink`,
    payloads,
    recordsPerPayload,
    rates: [],
  });
  const pass = contender('pass', copy(stream), 1);
  const perRecord = contender('record', copy(stream), 1);
  const idle = contender('idle', copy(stream), 1);
  const perBatch = contender('batch', batchesOf(copy(stream)), BATCH);
  await race(RED, [pass, perRecord, idle, perBatch], (c) => (c === perBatch ? batchesOf(copy(warm)) : copy(warm)));
  await RED.stop();
  const passRecord = pass.rates;
  const nodesRecord = perRecord.rates;
  const idleRecord = idle.rates;
  const nodesBatch = perBatch.rates;
  const engineBatch = engineBatchRate(batchesOf(stream), batchesOf(warm));

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    detector,
    records: stream.length,
    batchSize: BATCH,
    runs: RUNS,
    perRecord: {
      scorerLearnerMessagesPerSecond: median(nodesRecord),
      passThroughMessagesPerSecond: median(passRecord),
      ratio: median(nodesRecord) / median(passRecord),
      target: 0.7,
      idleModelMessagesPerSecond: median(idleRecord),
      idleModelRatio: median(idleRecord) / median(passRecord),
    },
    batch: {
      scorerLearnerRecordsPerSecond: median(nodesBatch),
      engineRecordsPerSecond: median(engineBatch),
      ratio: median(nodesBatch) / median(engineBatch),
      target: 0.8,
    },
    timedRuns: { passRecord, nodesRecord, idleRecord, nodesBatch, engineBatch },
  };
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(12);
  console.log(
    `Node-RED ${detector} scorer + learner, ${stream.length} Shuttle records, median of ${RUNS} runs (${process.version})`,
  );
  console.log(
    `  per record   scorer+learner ${fmt(result.perRecord.scorerLearnerMessagesPerSecond)} msg/s   pass-through ${fmt(result.perRecord.passThroughMessagesPerSecond)} msg/s   ratio ${result.perRecord.ratio.toFixed(2)} (target >= 0.7)`,
  );
  console.log(
    `  per record   same nodes, a model that does no work ${fmt(result.perRecord.idleModelMessagesPerSecond)} msg/s   ratio ${result.perRecord.idleModelRatio.toFixed(2)} to pass-through`,
  );
  console.log(
    `  batch of ${BATCH}  scorer+learner ${fmt(result.batch.scorerLearnerRecordsPerSecond)} rec/s   engine alone ${fmt(result.batch.engineRecordsPerSecond)} rec/s   ratio ${result.batch.ratio.toFixed(2)} (target >= 0.8)`,
  );
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
