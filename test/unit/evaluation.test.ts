import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StreamingEvaluator, averagePrecision, rocAuc } from '../../src/engine/evaluation';

// Independent references, by definition and brute force.
function bruteAuc(scores: number[], labels: number[]): number {
  let good = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i] > scores[j]) good += 1;
      else if (scores[i] === scores[j]) good += 0.5;
    }
  }
  return good / pairs;
}

// AP as the mean, over the anomalies, of the precision among all records scoring at least as high.
function bruteAp(scores: number[], labels: number[]): number {
  let sum = 0;
  let positives = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    positives++;
    let above = 0;
    let posAbove = 0;
    for (let j = 0; j < scores.length; j++) {
      if (scores[j] >= scores[i]) {
        above++;
        if (labels[j] === 1) posAbove++;
      }
    }
    sum += posAbove / above;
  }
  return sum / positives;
}

// Small seeded generator so every run tests the same data.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function stream(seed: number, n: number, quantum = 0): { scores: number[]; labels: number[] } {
  const r = rng(seed);
  const scores: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = r() < 0.2 ? 1 : 0;
    // Anomalies score higher on average, with overlap; optional rounding makes ties.
    let s = Math.min(1, Math.max(0, 0.35 * r() + (y ? 0.4 : 0.2) + 0.3 * r()));
    if (quantum > 0) s = Math.round(s / quantum) * quantum;
    scores.push(s);
    labels.push(y);
  }
  return { scores, labels };
}

describe('rocAuc and averagePrecision (exact)', () => {
  it('match the worked example of scikit-learn (0.75 and 0.8333...)', () => {
    // y = [0, 0, 1, 1], scores = [0.1, 0.4, 0.35, 0.8]: pairs (0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4) -> 3/4;
    // AP: the anomaly at 0.8 has precision 1/1, the one at 0.35 has 2/3 -> (1 + 2/3) / 2.
    assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    assert.ok(Math.abs(averagePrecision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) - 5 / 6) < 1e-15);
  });

  it('count ties as one half (AUC) and as one threshold (AP)', () => {
    assert.equal(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
    assert.equal(averagePrecision([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
    // One anomaly tied with one normal above another normal: pairs 0.5 + 1 of 2.
    assert.equal(rocAuc([0.9, 0.9, 0.1], [1, 0, 0]), 0.75);
    assert.equal(averagePrecision([0.9, 0.9, 0.1], [1, 0, 0]), 0.5);
  });

  it('equal brute force on random streams with and without ties', () => {
    for (const [seed, quantum] of [
      [1, 0],
      [2, 0.05],
      [3, 0.2],
      [4, 0],
    ]) {
      const { scores, labels } = stream(seed, 400, quantum);
      assert.ok(Math.abs(rocAuc(scores, labels) - bruteAuc(scores, labels)) < 1e-12);
      assert.ok(Math.abs(averagePrecision(scores, labels) - bruteAp(scores, labels)) < 1e-12);
    }
  });

  it('give 1 for a perfect ranking, 0 AUC for a reversed one, NaN with one class', () => {
    assert.equal(rocAuc([0.9, 0.8, 0.1], [1, true, false]), 1);
    assert.equal(averagePrecision([0.9, 0.8, 0.1], [1, 1, 0]), 1);
    assert.equal(rocAuc([0.1, 0.2, 0.9], [1, 1, 0]), 0);
    // Reversed: the anomalies are 2nd and 3rd -> (1/2 + 2/3) / 2.
    assert.ok(Math.abs(averagePrecision([0.1, 0.2, 0.9], [1, 1, 0]) - 7 / 12) < 1e-15);
    assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [0, 0])));
    assert.ok(Number.isNaN(averagePrecision([0.1, 0.2], [0, 0])));
  });

  it('sort infinite scores and refuse NaN scores, bad labels and unequal lengths', () => {
    assert.equal(rocAuc([Infinity, -Infinity, 3], [1, 0, 0]), 1);
    assert.throws(() => rocAuc([NaN, 1], [0, 1]), /NaN/);
    assert.throws(() => rocAuc([0, 1], [0, null]), /label 1/);
    assert.throws(() => rocAuc([0, 1], [0]), /differ in length/);
  });
});

describe('StreamingEvaluator', () => {
  it('equals the exact metrics when scores sit on its bucket grid', () => {
    const B = 64;
    // Scores at bucket midpoints: bucketing loses nothing, so the results must be exact.
    const { scores, labels } = stream(7, 1000, 1 / B);
    const grid = scores.map((s) => (Math.min(B - 1, Math.floor(s * B)) + 0.5) / B);
    const ev = new StreamingEvaluator({ buckets: B });
    grid.forEach((s, i) => ev.add(s, labels[i]));
    assert.ok(Math.abs(ev.rocAuc() - bruteAuc(grid, labels)) < 1e-12);
    assert.ok(Math.abs(ev.averagePrecision() - bruteAp(grid, labels)) < 1e-12);
    assert.equal(ev.records, 1000);
  });

  it('keeps ROC-AUC within the error bound it reports, which is small at the default resolution', () => {
    const { scores, labels } = stream(11, 3000);
    const exact = rocAuc(scores, labels);
    const coarse = new StreamingEvaluator({ buckets: 16 });
    const fine = new StreamingEvaluator();
    scores.forEach((s, i) => {
      coarse.add(s, labels[i]);
      fine.add(s, labels[i]);
    });
    assert.ok(Math.abs(coarse.rocAuc() - exact) <= coarse.aucErrorBound() + 1e-12);
    assert.ok(Math.abs(fine.rocAuc() - exact) <= fine.aucErrorBound() + 1e-12);
    // About 1 / (2 * 4096) times the pair density here; far below what anyone reads off an AUC.
    assert.ok(fine.aucErrorBound() < 1e-3, `bound ${fine.aucErrorBound()}`);
    assert.ok(Math.abs(fine.averagePrecision() - averagePrecision(scores, labels)) < 2e-3);
  });

  it('is right after every single record, not only at the end', () => {
    const { scores, labels } = stream(5, 120, 1 / 8);
    const ev = new StreamingEvaluator({ buckets: 8 });
    for (let i = 0; i < scores.length; i++) {
      ev.add(scores[i] === 1 ? 0.875 : scores[i], labels[i]);
      const s = scores.slice(0, i + 1).map((v) => (v === 1 ? 0.875 : v));
      const y = labels.slice(0, i + 1);
      const hasBoth = y.includes(1) && y.includes(0);
      if (hasBoth) assert.ok(Math.abs(ev.rocAuc() - bruteAuc(s, y)) < 1e-12, `after ${i + 1}`);
      else assert.ok(Number.isNaN(ev.rocAuc()));
      if (y.includes(1)) assert.ok(Math.abs(ev.averagePrecision() - bruteAp(s, y)) < 1e-12, `AP after ${i + 1}`);
    }
  });

  it('counts the confusion matrix at its threshold, or from the decisions passed in', () => {
    const { scores, labels } = stream(3, 500);
    const fixed = new StreamingEvaluator({ threshold: 0.6 });
    const decided = new StreamingEvaluator();
    const expected = { tp: 0, fp: 0, tn: 0, fn: 0 };
    const flags = { tp: 0, fp: 0, tn: 0, fn: 0 };
    scores.forEach((s, i) => {
      fixed.add(s, labels[i]);
      const flaggedAt06 = s >= 0.6;
      if (labels[i]) expected[flaggedAt06 ? 'tp' : 'fn']++;
      else expected[flaggedAt06 ? 'fp' : 'tn']++;
      // A moving threshold, as a running quantile would give.
      const flagged = s >= 0.4 + (i / scores.length) * 0.4;
      decided.add(s, labels[i] === 1, flagged);
      if (labels[i]) flags[flagged ? 'tp' : 'fn']++;
      else flags[flagged ? 'fp' : 'tn']++;
    });
    assert.deepEqual(fixed.confusionCounts(), expected);
    assert.deepEqual(decided.confusionCounts(), flags);
    const m = fixed.metrics();
    const p = expected.tp / (expected.tp + expected.fp);
    const r = expected.tp / (expected.tp + expected.fn);
    assert.ok(Math.abs(m.precision - p) < 1e-15);
    assert.ok(Math.abs(m.recall - r) < 1e-15);
    assert.ok(Math.abs(m.f1 - (2 * p * r) / (p + r)) < 1e-15);
    // metricsAt on a bucket edge (0.6 is not one of 1/4096ths, 0.625 is) matches a direct count.
    const at = fixed.metricsAt(0.625);
    assert.equal(at.tp, scores.filter((s, i) => s >= 0.625 && labels[i] === 1).length);
    assert.equal(at.fp, scores.filter((s, i) => s >= 0.625 && labels[i] === 0).length);
    assert.equal(at.tp + at.fn, labels.filter((y) => y === 1).length);
  });

  it('gives zero precision, recall and F1 rather than dividing by zero', () => {
    const ev = new StreamingEvaluator({ threshold: 0.9 });
    ev.add(0.1, 0);
    ev.add(0.2, 0);
    assert.deepEqual(ev.metrics(), { tp: 0, fp: 0, tn: 2, fn: 0, precision: 0, recall: 0, f1: 0 });
    assert.ok(Number.isNaN(ev.averagePrecision()));
  });

  it('skips NaN scores and unusable labels, and clamps scores outside [0, 1]', () => {
    const ev = new StreamingEvaluator({ buckets: 10 });
    assert.equal(ev.add(NaN, 1), false);
    assert.equal(ev.add(0.5, undefined), false);
    assert.equal(ev.add(0.5, Number.NaN), false);
    assert.equal(ev.add(7, 1), true);
    assert.equal(ev.add(-3, 0), true);
    assert.equal(ev.skipped, 3);
    assert.equal(ev.records, 2);
    assert.equal(ev.rocAuc(), 1);
    assert.equal(ev.bucketOf(1), 9);
    assert.equal(ev.bucketOf(0.999), 9);
    assert.equal(ev.bucketOf(0.1), 1);
  });

  it('round-trips through JSON exactly and goes on as if never stopped', () => {
    const { scores, labels } = stream(9, 800);
    const a = new StreamingEvaluator({ buckets: 512, threshold: 0.55 });
    for (let i = 0; i < 500; i++) a.add(scores[i], labels[i]);
    a.add(NaN, 1);
    const json = JSON.parse(JSON.stringify(a.toJSON()));
    const b = StreamingEvaluator.fromJSON(json);
    assert.deepEqual(b.summary(), a.summary());
    assert.deepEqual(b.toJSON(), a.toJSON());
    for (let i = 500; i < 800; i++) {
      a.add(scores[i], labels[i]);
      b.add(scores[i], labels[i]);
    }
    assert.deepEqual(b.summary(), a.summary());
    // Only the non-empty buckets are stored.
    assert.ok(json.positives.length < 2 * 512);
  });

  it('refuses damaged snapshots and unknown versions with a clear error', () => {
    const good = new StreamingEvaluator({ buckets: 8 });
    good.add(0.3, 1);
    const snap = good.toJSON();
    assert.throws(() => StreamingEvaluator.fromJSON(null), /not an object/);
    assert.throws(() => StreamingEvaluator.fromJSON({ ...snap, version: 2 }), /version 2 is not supported/);
    assert.throws(() => StreamingEvaluator.fromJSON({ ...snap, format: 'x' }), /format/);
    assert.throws(() => StreamingEvaluator.fromJSON({ ...snap, positives: [2] }), /index, count pairs/);
    assert.throws(() => StreamingEvaluator.fromJSON({ ...snap, positives: [8, 1] }), /out of range/);
    assert.throws(() => StreamingEvaluator.fromJSON({ ...snap, tp: -1 }), /tp is not a count/);
    assert.throws(() => new StreamingEvaluator({ buckets: 1 }), /buckets/);
  });
});
