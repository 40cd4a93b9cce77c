import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QuantileSketch, RecordStatistics, RunningStatistics } from '../../../src/engine';
import { close, correlatedRows, normalSource, twoPass } from './helpers';

function learnAll(rows: number[][], options = {}): RunningStatistics {
  const stats = new RunningStatistics(rows[0].length, options);
  for (const r of rows) stats.learn(r);
  return stats;
}

function assertMatches(stats: RunningStatistics, reference: ReturnType<typeof twoPass>, rel: number): void {
  const d = reference.mean.length;
  assert.ok(close(stats.weight, reference.n, rel), `weight ${stats.weight} vs ${reference.n}`);
  for (let j = 0; j < d; j++) {
    assert.ok(close(stats.mean[j], reference.mean[j], rel), `mean ${j}: ${stats.mean[j]} vs ${reference.mean[j]}`);
    assert.ok(close(stats.variance(j), reference.variance[j], rel), `variance ${j}`);
    // Skewness and kurtosis are dimensionless: compared absolutely (the mean itself is only known to ~1e-9 of the
    // standard deviation when the data sit 1e6 standard deviations from zero).
    assert.ok(Math.abs(stats.skewness(j) - reference.skewness[j]) < 1e-6, `skewness ${j}`);
    assert.ok(Math.abs(stats.kurtosis(j) - reference.kurtosis[j]) < 1e-6, `kurtosis ${j}`);
    for (let i = 0; i < j; i++) {
      assert.ok(close(stats.covariance(i, j), reference.covariance(i, j), rel * 10), `covariance ${i},${j}`);
      assert.ok(close(stats.correlation(i, j), reference.correlation(i, j), rel * 10), `correlation ${i},${j}`);
    }
  }
}

describe('RunningStatistics', () => {
  const rows = correlatedRows(3000, 4, 7);

  it('matches two-pass moments, covariances and correlations on data far from zero', () => {
    const stats = learnAll(rows);
    assertMatches(stats, twoPass(rows), 1e-9);
    assert.equal(stats.records, 3000);
    assert.equal(stats.min[0], Math.min(...rows.map((r) => r[0])));
    assert.equal(stats.max[3], Math.max(...rows.map((r) => r[3])));
  });

  it('merges two halves into the statistics of one pass (within 1e-9)', () => {
    const whole = learnAll(rows);
    const a = learnAll(rows.slice(0, 1000));
    const b = learnAll(rows.slice(1000));
    a.merge(b);
    for (let j = 0; j < 4; j++) {
      assert.ok(close(a.mean[j], whole.mean[j], 1e-9));
      assert.ok(close(a.m2[j], whole.m2[j], 1e-9));
      assert.ok(close(a.m3[j], whole.m3[j], 1e-9, Math.abs(whole.m2[j])));
      assert.ok(close(a.m4[j], whole.m4[j], 1e-9));
    }
    for (let k = 0; k < whole.comoment.length; k++) assert.ok(close(a.comoment[k], whole.comoment[k], 1e-9));
    assertMatches(a, twoPass(rows), 1e-9);
    // Merging into an empty summary copies.
    const empty = new RunningStatistics(4);
    empty.merge(whole);
    assert.ok(close(empty.variance(2), whole.variance(2), 1e-12));
  });

  it('forget exactly inverts learn', () => {
    const first = rows.slice(0, 2000);
    const stats = learnAll(first);
    const before = JSON.parse(JSON.stringify(stats.toJSON()));
    for (const r of rows.slice(2000, 2500)) stats.learn(r);
    for (const r of rows.slice(2000, 2500).reverse()) stats.forget(r);
    assertMatches(stats, twoPass(first), 1e-9);
    assert.equal(stats.records, 2000);
    // The quantile sketches hold the same weights again.
    for (let j = 0; j < 4; j++) {
      assert.equal(stats.sketches[j]!.totalWeight, before.sketches[j].total);
      assert.equal(stats.quantile(j, 0.5), QuantileSketch.fromJSON(before.sketches[j]).quantile(0.5));
    }
  });

  it('forgets exponentially with a half-life: weights 2^(-age / halfLife)', () => {
    const halfLife = 50;
    const stats = learnAll(rows.slice(0, 400), { halfLife });
    const weights = rows.slice(0, 400).map((_, i) => Math.pow(2, -(399 - i) / halfLife));
    assertMatches(stats, twoPass(rows.slice(0, 400), weights), 1e-8);
    // A step from 0 to 1: after halfLife records of 1, the mean is half way (the old weight has halved).
    const step = new RunningStatistics(1, { halfLife: 100, quantiles: false });
    for (let i = 0; i < 5000; i++) step.learn([0]);
    for (let i = 0; i < 100; i++) step.learn([1]);
    const alpha = Math.pow(2, -1 / 100);
    const total = (1 - Math.pow(alpha, 5100)) / (1 - alpha);
    const ones = (1 - Math.pow(alpha, 100)) / (1 - alpha);
    assert.ok(close(step.mean[0], ones / total, 1e-9));
    assert.ok(Math.abs(step.mean[0] - 0.5) < 0.01);
  });

  it('estimates quantiles within the sketch accuracy', () => {
    const normal = normalSource(3);
    const values = Array.from({ length: 20000 }, () => Math.exp(normal()) * 1000 + 50);
    const stats = learnAll(values.map((v) => [v]));
    const sorted = values.slice().sort((a, b) => a - b);
    for (const q of [0.01, 0.1, 0.5, 0.9, 0.99]) {
      const exact = sorted[Math.floor(q * (sorted.length - 1))];
      const estimate = stats.quantile(0, q);
      // Buckets are at most about 3% of the distance to the pivot (near the median) wide.
      assert.ok(Math.abs(estimate - exact) <= 0.04 * Math.abs(exact), `q${q}: ${estimate} vs ${exact}`);
    }
  });

  it('reports plain JSON and restores exactly', () => {
    const stats = learnAll(rows.slice(0, 500), { halfLife: 300 });
    const json = JSON.parse(JSON.stringify(stats.toJSON()));
    const restored = RunningStatistics.fromJSON(json);
    assert.deepEqual(restored.toJSON(), stats.toJSON());
    for (const r of rows.slice(500, 600)) {
      stats.learn(r);
      restored.learn(r);
    }
    assert.deepEqual(restored.toJSON(), stats.toJSON());
    const report = stats.report(['a', 'b', 'c', 'd']);
    assert.equal(report.features.length, 4);
    assert.equal(report.pairs.length, 6);
    assert.equal(report.features[1].name, 'b');
    assert.ok(close(report.features[1].std, Math.sqrt(stats.variance(1)), 1e-15));
    assert.throws(() => RunningStatistics.fromJSON({ ...json, mean: [1] }), /damaged statistics: mean/);
  });
});

describe('QuantileSketch', () => {
  it('removes exactly what it added and merges like one sketch of both streams', () => {
    const normal = normalSource(11);
    const values = Array.from({ length: 5000 }, () => Math.round(normal() * 100));
    const one = new QuantileSketch();
    for (const v of values) one.add(v);
    // Two sketches that chose the same bucket geometry (same first values) merge exactly.
    const a = new QuantileSketch();
    const b = new QuantileSketch();
    for (const v of values.slice(0, 200)) a.add(v);
    for (const v of values.slice(0, 200)) b.add(v);
    values.slice(200).forEach((v, i) => (i % 2 === 0 ? a : b).add(v));
    for (const v of values.slice(0, 200)) b.remove(v);
    a.merge(b);
    // Sketches with different geometries merge approximately: each weight moves by at most a bucket.
    const c = new QuantileSketch();
    const e = new QuantileSketch();
    values.forEach((v, i) => (i < 2500 ? c : e).add(v));
    c.merge(e);
    for (const x of [-250, -100, -1, 0, 1, 37, 100, 300]) {
      assert.equal(a.weightAtMost(x), one.weightAtMost(x), `at most ${x}`);
      assert.equal(a.weightAtLeast(x), one.weightAtLeast(x), `at least ${x}`);
      assert.ok(Math.abs(c.weightAtMost(x) - one.weightAtMost(x)) <= 0.02 * 5000, `approximately at most ${x}`);
    }
    for (const v of values.slice(100)) one.remove(v);
    const first = new QuantileSketch();
    for (const v of values.slice(0, 100)) first.add(v);
    assert.equal(one.totalWeight, 100);
    for (const x of [-100, 0, 50]) assert.equal(one.weightAtMost(x), first.weightAtMost(x));
  });

  it('is exact while it still holds the first values', () => {
    const s = new QuantileSketch();
    for (const v of [5, 1, 3, 3, 2]) s.add(v);
    assert.ok(s.isBuffering);
    assert.equal(s.weightAtMost(3), 4);
    assert.equal(s.weightAtLeast(3), 3);
    assert.equal(s.quantile(0.5), 3);
    assert.equal(s.rank(3), 3); // 2 below, 2 equal counted half
  });
});

describe('RecordStatistics', () => {
  it('learns records (never the label), skips and counts bad ones, and restores from JSON', () => {
    const rows = correlatedRows(500, 2, 13, 10);
    const stats = new RecordStatistics({
      attributes: [
        { name: 'u', type: 'C' },
        { name: 'v', type: 'C' },
        { name: 'kind', type: 'T' },
        { name: 'y', type: 'B', role: 'label' },
      ],
    });
    rows.forEach((r, i) => stats.learnOne([r[0], r[1], i % 2 ? 'odd' : 'even', i % 3 === 0]));
    assert.equal(stats.learnOne([1, 'x', 'odd', 0]).learned, false);
    assert.deepEqual(stats.invalidCounts(), { u: 0, v: 1, kind: 0, y: 0 });
    const report = stats.statistics();
    assert.deepEqual(
      report.features.map((f) => f.name),
      ['u', 'v', 'kind=even', 'kind=odd'],
    );
    const reference = twoPass(rows);
    assert.ok(close(report.features[1].variance, reference.variance[1], 1e-9));
    assert.ok(close(report.pairs[0].correlation, reference.correlation(0, 1), 1e-9));
    assert.equal(report.features[3].mean, 0.5);
    const restored = RecordStatistics.fromJSON(JSON.parse(JSON.stringify(stats.toJSON())));
    assert.deepEqual(restored.statistics(), report);
    assert.throws(() => RecordStatistics.fromJSON({ format: 'stream-ml-statistics', version: 9 }), /version 9/);
  });
});
