// Test helpers: seeded data and independent two-pass statistics to compare the engine against.
import { SeededRandom } from '../../../src/engine';

export function normalSource(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => {
    // Box-Muller.
    const u = 1 - random.next();
    const v = random.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/** n rows of d correlated features far from zero (offset), so that naive power sums would lose precision. */
export function correlatedRows(n: number, d: number, seed: number, offset = 1e6): number[][] {
  const normal = normalSource(seed);
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const base = normal();
    const row: number[] = [];
    for (let j = 0; j < d; j++) {
      // Skewed and correlated: an exponential part and a shared part.
      const e = -Math.log(1 - ((normal() + 10) % 1) * 0.999);
      row.push(offset * (j + 1) + base * (j + 1) + normal() + (j % 2 === 0 ? e : 0));
    }
    rows.push(row);
  }
  return rows;
}

export interface TwoPass {
  n: number;
  mean: number[];
  variance: number[];
  skewness: number[];
  kurtosis: number[];
  covariance: (i: number, j: number) => number;
  correlation: (i: number, j: number) => number;
}

/** Textbook two-pass statistics (population moments), optionally weighted. */
export function twoPass(rows: number[][], weights?: number[]): TwoPass {
  const d = rows[0].length;
  const w = weights ?? rows.map(() => 1);
  const n = w.reduce((s, v) => s + v, 0);
  const mean = Array.from({ length: d }, (_, j) => rows.reduce((s, r, i) => s + w[i] * r[j], 0) / n);
  const central = (j: number, p: number) => rows.reduce((s, r, i) => s + w[i] * Math.pow(r[j] - mean[j], p), 0) / n;
  const variance = mean.map((_, j) => central(j, 2));
  const skewness = mean.map((_, j) => central(j, 3) / Math.pow(variance[j], 1.5));
  const kurtosis = mean.map((_, j) => central(j, 4) / (variance[j] * variance[j]) - 3);
  const covariance = (a: number, b: number) =>
    rows.reduce((s, r, i) => s + w[i] * (r[a] - mean[a]) * (r[b] - mean[b]), 0) / n;
  const correlation = (a: number, b: number) => covariance(a, b) / Math.sqrt(variance[a] * variance[b]);
  return { n, mean, variance, skewness, kurtosis, covariance, correlation };
}

/** |a - b| within rel relative to max(|a|, |b|, floor). */
export function close(a: number, b: number, rel: number, floor = 1e-12): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), floor);
}

/** ROC-AUC by counting pairs (ties half), for small test sets. */
export function rocAuc(scores: number[], labels: number[]): number {
  let pairs = 0;
  let wins = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let k = 0; k < scores.length; k++) {
      if (labels[k] !== 0) continue;
      pairs++;
      if (scores[i] > scores[k]) wins++;
      else if (scores[i] === scores[k]) wins += 0.5;
    }
  }
  return wins / pairs;
}

/** ROC-AUC (ties half) and average precision by sorting, for whole streams. */
export function aucAndAp(scores: number[], labels: number[]): { auc: number; ap: number } {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const positives = labels.filter((l) => l === 1).length;
  const negatives = labels.length - positives;
  let tp = 0;
  let fp = 0;
  let auc = 0;
  let ap = 0;
  for (let k = 0; k < order.length;) {
    let groupTp = 0;
    let groupFp = 0;
    const s = scores[order[k]];
    while (k < order.length && scores[order[k]] === s) {
      if (labels[order[k]] === 1) groupTp++;
      else groupFp++;
      k++;
    }
    auc += groupFp * (tp + groupTp / 2);
    tp += groupTp;
    fp += groupFp;
    if (groupTp > 0) ap += (groupTp / positives) * (tp / (tp + fp));
  }
  return { auc: auc / (positives * negatives), ap };
}
