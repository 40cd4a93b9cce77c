// Quick check of the engine on Shuttle while developing: prequential ROC-AUC / AP and records/s per detector.
// Not the full benchmark (bench/engine.ts): no peers. Usage: npm run build && node dist/bench/engine-quick.js [detector...]
import fs from 'node:fs';
import path from 'node:path';
import { createModel, type DetectorName } from '../src/engine';

function shuttle(): { rows: number[][]; labels: number[] } {
  const dir = process.env.SHUTTLE_DATA_DIR ?? path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'shuttle');
  const lines = fs.readFileSync(path.join(dir, 'shuttle.csv'), 'utf8').trim().split('\n').slice(1);
  const rows = lines.map((l) => l.split(',').map(Number));
  return { rows, labels: rows.map((r) => r[9]) };
}

/** ROC-AUC with ties counted half, and average precision (ties broken pessimistically by sort order). */
export function rocAucAp(scores: number[], labels: number[]): { auc: number; ap: number } {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const positives = labels.filter((l) => l === 1).length;
  const negatives = labels.length - positives;
  let tp = 0;
  let fp = 0;
  let auc = 0;
  let ap = 0;
  for (let k = 0; k < order.length;) {
    let gTp = 0;
    let gFp = 0;
    const s = scores[order[k]];
    while (k < order.length && scores[order[k]] === s) {
      if (labels[order[k]] === 1) gTp++;
      else gFp++;
      k++;
    }
    auc += gFp * (tp + gTp / 2);
    tp += gTp;
    fp += gFp;
    if (gTp > 0) ap += (gTp / positives) * (tp / (tp + fp));
  }
  return { auc: auc / (positives * negatives), ap };
}

const attributes = [
  ...Array.from({ length: 9 }, (_, i) => ({ name: `f${i + 1}`, type: 'C' as const })),
  { name: 'outlier', type: 'C' as const, role: 'label' as const },
];

function run(detector: DetectorName, seed: number, rows: number[][]): { scores: number[]; seconds: number } {
  const model = createModel({ attributes, detector, seed });
  const scores = new Array<number>(rows.length);
  const start = process.hrtime.bigint();
  for (let i = 0; i < rows.length; i++) {
    scores[i] = model.scoreOne(rows[i]).score;
    model.learnOne(rows[i]);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (detector === 'auto' && seed === 1) {
    const json = JSON.stringify(model.toJSON());
    console.log(`snapshot bytes ${json.length}`);
  }
  return { scores, seconds };
}

const { rows, labels } = shuttle();
const detectors = (process.argv.slice(2) as DetectorName[]).length
  ? (process.argv.slice(2) as DetectorName[])
  : (['auto', 'ecod', 'histogram', 'gaussian', 'hst'] as DetectorName[]);
for (const detector of detectors) {
  const aucs: number[] = [];
  const aps: number[] = [];
  const speeds: number[] = [];
  for (let seed = 1; seed <= 5; seed++) {
    const { scores, seconds } = run(detector, seed, rows);
    const { auc, ap } = rocAucAp(scores, labels);
    aucs.push(auc);
    aps.push(ap);
    speeds.push(rows.length / seconds);
  }
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  speeds.sort((a, b) => a - b);
  console.log(
    `${detector.padEnd(10)} auc ${mean(aucs).toFixed(4)} (worst ${Math.min(...aucs).toFixed(4)})  ap ${mean(aps).toFixed(4)} (worst ${Math.min(...aps).toFixed(4)})  ${Math.round(speeds[2])} rec/s`,
  );
}
