// Quick check of the engine on Shuttle while developing (the full table with peers is bench/engine.ts).
// Prequential: each record is scored, then learned; nothing about the data is given in advance.
//
//   npm run build && node --expose-gc dist/bench/engine-quick.js [detector ...]
//
// Prints per detector ROC-AUC and average precision (mean and worst of seeds 0..4, as bench/engine.ts), records per second (median of
// the 5 runs, wall clock and CPU time of this process, which a busy machine disturbs less), then the speed of the
// statistics alone and the memory of a default model.
import fs from 'node:fs';
import { averagePrecision, rocAuc } from '../src/engine/evaluation';
import { createModel, RecordStatistics, RunningStatistics, type DetectorName } from '../src/engine';
import { findShuttleCsv } from './shuttle-csv';

function shuttle(): { rows: number[][]; labels: number[] } {
  const csv = findShuttleCsv();
  if (!csv) throw new Error('no shuttle.csv yet: `npm run bench:engine` or `npm test` downloads it once');
  const lines = fs.readFileSync(csv, 'utf8').trim().split('\n').slice(1);
  const rows = lines.map((l) => l.split(',').map(Number));
  return { rows, labels: rows.map((r) => r[9]) };
}

const attributes = [
  ...Array.from({ length: 9 }, (_, i) => ({ name: `f${i + 1}`, type: 'C' as const })),
  { name: 'outlier', type: 'C' as const, role: 'label' as const },
];

function run(detector: DetectorName, seed: number, rows: number[][]) {
  const model = createModel({ attributes, detector, seed });
  const scores = new Array<number>(rows.length);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < rows.length; i++) {
    scores[i] = model.scoreOne(rows[i]).score;
    model.learnOne(rows[i]);
  }
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  for (const s of scores) if (!(s >= 0 && s <= 1)) throw new Error(`score out of 0..1: ${s}`);
  return { scores, wall, cpuSeconds: (used.user + used.system) / 1e6, model };
}

const median = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

const { rows, labels } = shuttle();
const detectors = (process.argv.slice(2) as DetectorName[]).length
  ? (process.argv.slice(2) as DetectorName[])
  : (['auto', 'ecod', 'histogram', 'gaussian', 'hst'] as DetectorName[]);
run('auto', 1, rows); // warm-up of the JIT
console.log('detector    ROC-AUC mean (worst)   AP mean (worst)     rec/s wall   rec/s cpu   snapshot bytes');
for (const detector of detectors) {
  const aucs: number[] = [];
  const aps: number[] = [];
  const wall: number[] = [];
  const cpu: number[] = [];
  let bytes = 0;
  for (let seed = 0; seed < 5; seed++) {
    const r = run(detector, seed, rows);
    const auc = rocAuc(r.scores, labels);
    const ap = averagePrecision(r.scores, labels);
    aucs.push(auc);
    aps.push(ap);
    wall.push(rows.length / r.wall);
    cpu.push(rows.length / r.cpuSeconds);
    bytes = JSON.stringify(r.model.toJSON()).length;
  }
  console.log(
    `${detector.padEnd(10)}  ${mean(aucs).toFixed(4)} (${Math.min(...aucs).toFixed(4)})       ` +
      `${mean(aps).toFixed(4)} (${Math.min(...aps).toFixed(4)})    ${String(Math.round(median(wall))).padStart(9)}   ` +
      `${String(Math.round(median(cpu))).padStart(9)}   ${bytes}`,
  );
}

// Statistics alone, learn only (moments, comoments, quantile sketches).
const vectors = rows.map((r) => Float64Array.from(r.slice(0, 9)));
const statsSpeed: number[] = [];
for (let i = 0; i < 7; i++) {
  const stats = new RunningStatistics(9);
  const cpu = process.cpuUsage();
  for (const v of vectors) stats.learn(v);
  const used = process.cpuUsage(cpu);
  statsSpeed.push(vectors.length / ((used.user + used.system) / 1e6));
}
const recordSpeed: number[] = [];
for (let i = 0; i < 7; i++) {
  const stats = new RecordStatistics({ attributes });
  const cpu = process.cpuUsage();
  for (const r of rows) stats.learnOne(r);
  const used = process.cpuUsage(cpu);
  recordSpeed.push(rows.length / ((used.user + used.system) / 1e6));
}
console.log(
  `statistics learn only: ${Math.round(median(statsSpeed))} rec/s on vectors, ` +
    `${Math.round(median(recordSpeed))} rec/s on records (RecordStatistics) (cpu, median of 7)`,
);

// Memory of a default model after the whole stream: heap plus typed-array buffers, per model, from the growth
// between 3 and 8 models kept alive (needs --expose-gc).
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const kept: unknown[] = [];
  const points: number[] = [];
  for (let k = 0; k <= 8; k++) {
    if (k === 3 || k === 8) points.push(used());
    const model = createModel({ attributes });
    for (const r of rows) {
      model.scoreOne(r);
      model.learnOne(r);
    }
    kept.push(model);
  }
  console.log(`default model in memory: ${Math.round((points[1] - points[0]) / 5)} bytes`);
} else {
  console.log('default model in memory: run with node --expose-gc to measure');
}
