// `npm run bench:keyed`: records per second through the anomaly scorer and online learner with "one model per key",
// with 1, 100 and 10,000 keys, per record and in batches, beside the same two nodes without keys in the same run
// (Node-RED embedded with RED.init, as bench/nodes.ts). The keys take turns (record i has key i mod K), the cap on
// live models is the default 100: with 10,000 keys every record meets an evicted key, which with the memory store
// means a new model and with a persistent store (localfilesystem, last row) a model written to its file and read
// back. The 10,000-key flows run in a runtime of their own, each group beside its own unkeyed flow: their thousands
// of models coming and going slow every flow of the process down (about 2x), the reference too. Then the memory one
// live model costs, by detector and number of attributes. Medians of several timed runs after a warm-up; figures
// only, nothing fails on time. Writes bench/results/keyed.json.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createModel, type DetectorName } from '../src/engine';
import { readShuttleRecords } from '../src/datasets/shuttle';
import { median, pump, startRuntime } from './embedded-node-red';
import { shuttleCsvPath } from './shuttle-csv';

const root = path.resolve(__dirname, '..', '..');
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    records: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '500' },
    out: { type: 'string', default: path.join(root, 'bench', 'results', 'keyed.json') },
    // Which flows to run in one runtime (a comma-separated list of 0, 1, 100, 10000, file); unset: both groups below.
    flows: { type: 'string' },
  },
});
const RUNS = Number(args.runs);
const BATCH = Number(args.batch);
const IN_FLIGHT = 1000;
// Each record of the file-store 10,000-key flow writes a model to disk (fsync) and reads one: fewer records.
const FILE_RECORDS = 2000;

const attributes = [
  ...Array.from({ length: 9 }, (_, i) => ({ name: `f${i + 1}`, type: 'C' })),
  { name: 'outlier', type: 'X', label: true },
  { name: 'machine', type: 'X' },
];

type FlowNode = { id: string; type: string; [key: string]: unknown };

interface Contender {
  label: string;
  keys: number | undefined;
  store: string;
  batch: boolean;
  records: number;
  rates: number[];
}

/** The scorer → learner → sink flow of a contender, model named after it. */
function flowOf(c: Contender, id: string): FlowNode[] {
  const keyed = c.keys === undefined ? {} : { keyed: true, keySource: 'record', keyProperty: 'machine' };
  return [
    {
      id: `${id}-first`,
      type: 'stream-ml-anomaly-scorer',
      z: 't',
      model: id,
      store: c.store,
      ...keyed,
      wires: [[`${id}-l`]],
    },
    {
      id: `${id}-l`,
      type: 'stream-ml-online-learner',
      z: 't',
      model: id,
      store: c.store,
      attributes,
      saveInterval: '3600',
      ...keyed,
      wires: [[`${id}-sink`], []],
    },
    { id: `${id}-sink`, type: 'bench-sink', z: 't' },
  ];
}

/** Live memory of one model (heap and array buffers), learned on `records` records: the mean over 200 models. */
function memoryPerModel(detector: DetectorName, features: number, records: Record<string, number>[]): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return NaN;
  const attrs = Array.from({ length: features }, (_, i) => ({ name: `f${i + 1}`, type: 'C' as const }));
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = used();
  const models = [];
  for (let k = 0; k < 200; k++) {
    const model = createModel({ attributes: attrs, detector });
    for (const r of records) {
      model.scoreOne(r, 3);
      model.learnOne(r);
    }
    models.push(model);
  }
  const bytes = (used() - before) / models.length;
  return models.length > 0 ? bytes : NaN;
}

const GROUPS = ['0,1,100', '0,10000,file'];

interface ThroughputRow {
  mode: string;
  flow: string;
  keys: number;
  store: string;
  records: number;
  recordsPerSecond: number;
  ratioToUnkeyed: number;
  timedRuns: number[];
}

/** One runtime with the flows of args.flows: prints its table and writes its rows to args.out. */
async function runGroup(): Promise<void> {
  const all = readShuttleRecords(await shuttleCsvPath());
  const contenders: Contender[] = [];
  for (const batch of [false, true]) {
    const wanted = new Set(args.flows!.split(','));
    const add = (name: string, label: string, keys: number | undefined, store = '', records = Number(args.records)) => {
      if (wanted.has(name)) contenders.push({ label, keys, store, batch, records, rates: [] });
    };
    add('0', 'no keys (reference)', undefined);
    add('1', '1 key', 1);
    add('100', '100 keys', 100);
    add('10000', '10,000 keys', 10_000);
    add('file', '10,000 keys, file store', 10_000, 'file', FILE_RECORDS);
  }
  const ids = contenders.map((_, i) => `c${i}`);
  const RED = await startRuntime([{ id: 't', type: 'tab' }, ...contenders.flatMap((c, i) => flowOf(c, ids[i]))], {
    userDirPrefix: 'stream-ml-bench-keyed-',
    contextStorage: { default: { module: 'memory' }, file: { module: 'localfilesystem' } },
    logLevel: 'error',
  });
  const payloadsOf = (c: Contender, from: number): unknown[] => {
    const records = all.slice(from, from + c.records).map((r, i) => ({
      ...r,
      machine: `m${(from + i) % (c.keys ?? 1)}`,
    }));
    if (!c.batch) return records;
    return Array.from({ length: Math.ceil(records.length / BATCH) }, (_, i) =>
      records.slice(i * BATCH, (i + 1) * BATCH),
    );
  };
  const perPayload = (c: Contender) => (c.batch ? BATCH : 1);
  // Warm-up: a first pass over other records, so every key's model exists and the code is compiled.
  for (const [i, c] of contenders.entries())
    await pump(RED, payloadsOf(c, 20_000), `${ids[i]}-first`, `${ids[i]}-sink`, IN_FLIGHT);
  // Timed runs alternate between the contenders, so a busy moment of the machine hits each of them alike.
  for (let run = 0; run < RUNS; run++)
    for (const [i, c] of contenders.entries()) {
      const payloads = payloadsOf(c, 0);
      c.rates.push((await pump(RED, payloads, `${ids[i]}-first`, `${ids[i]}-sink`, IN_FLIGHT)) * perPayload(c));
    }
  await RED.stop();

  const reference = (batch: boolean) =>
    median(contenders.find((c) => c.batch === batch && c.keys === undefined)!.rates);
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10);
  console.log(
    `runtime with flows ${args.flows}: Node-RED auto scorer + learner, Shuttle records, median of ${RUNS} runs (${process.version}); live cap 100`,
  );
  for (const c of contenders) {
    const rate = median(c.rates);
    console.log(
      `  ${(c.batch ? `batches of ${BATCH}` : 'per record').padEnd(16)} ${c.label.padEnd(26)} ${fmt(rate)} records/s   ${(rate / reference(c.batch)).toFixed(2)}x the unkeyed flow   (${c.records} records)`,
    );
  }
  const rows: ThroughputRow[] = contenders.map((c) => ({
    mode: c.batch ? 'batch' : 'record',
    flow: c.label,
    keys: c.keys ?? 0,
    store: c.store || 'memory',
    records: c.records,
    recordsPerSecond: median(c.rates),
    ratioToUnkeyed: median(c.rates) / reference(c.batch),
    timedRuns: c.rates,
  }));
  fs.writeFileSync(args.out!, JSON.stringify(rows) + '\n');
}

/** Each group in a process of its own, then the memory per model; everything into bench/results/keyed.json. */
async function main(): Promise<void> {
  if (args.flows !== undefined) return runGroup();
  const all = readShuttleRecords(await shuttleCsvPath());
  const throughput: (ThroughputRow & { runtime: number })[] = [];
  for (const [g, flows] of GROUPS.entries()) {
    const out = path.join(os.tmpdir(), `stream-ml-bench-keyed-${process.pid}-${g}.json`);
    const child = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        __filename,
        '--flows',
        flows,
        '--runs',
        String(RUNS),
        '--records',
        args.records!,
        '--batch',
        String(BATCH),
        '--out',
        out,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (child.status !== 0) throw new Error(`the group ${flows} failed`);
    for (const row of JSON.parse(fs.readFileSync(out, 'utf8')) as ThroughputRow[])
      throughput.push({ ...row, runtime: g + 1 });
    fs.rmSync(out, { force: true });
  }
  const memoryRecords = all.slice(0, 300);
  const memory: Record<string, number> = {};
  for (const detector of ['auto', 'gaussian', 'histogram', 'ecod', 'hst'] as DetectorName[])
    for (const features of [3, 9])
      memory[`${detector}, ${features} attributes`] = memoryPerModel(
        detector,
        features,
        memoryRecords.map((r) =>
          Object.fromEntries(Array.from({ length: features }, (_, k) => [`f${k + 1}`, r[`f${k + 1}`]])),
        ),
      );

  console.log('memory of one live model (heap and array buffers, learned on 300 records):');
  for (const [what, bytes] of Object.entries(memory))
    console.log(`  ${what.padEnd(26)} ${(bytes / 1024).toFixed(0).padStart(6)} KiB`);
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    detector: 'auto',
    batchSize: BATCH,
    runs: RUNS,
    liveCap: 100,
    throughput,
    memoryPerModelBytes: memory,
  };
  fs.mkdirSync(path.dirname(args.out!), { recursive: true });
  fs.writeFileSync(args.out!, JSON.stringify(result, null, 2) + '\n');
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
