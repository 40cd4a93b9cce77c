import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createDetector,
  detectorFromJSON,
  EcodDetector,
  GaussianDetector,
  HalfSpaceTrees,
  HistogramDetector,
  type Detector,
  type DetectorName,
} from '../../../src/engine';
import { normalSource, rocAuc } from './helpers';

/**
 * 3000 correlated normal records in 4 dimensions, with 8 gross outliers planted after the first 1000: two features
 * 8 to 9 standard deviations out (per-feature detectors such as ECOD and HBOS add surprises over features, so one
 * extreme feature among ordinary ones is diluted; they are tested on what they are built for).
 */
function plantedData(seed: number): { rows: number[][]; labels: number[] } {
  const normal = normalSource(seed);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const shared = normal();
    const row = [10 + shared, -5 + 2 * shared + 0.5 * normal(), 100 + 10 * normal(), 0.01 * normal()];
    let label = 0;
    if (i >= 1000 && i % 250 === 0) {
      // Far out in one or two features.
      const k = (i / 250) % 4;
      row[k] += [8, -16, 90, 0.09][k];
      row[(k + 1) % 4] += [8, -16, 90, 0.09][(k + 1) % 4];
      label = 1;
    }
    rows.push(row);
    labels.push(label);
  }
  return { rows, labels };
}

const NAMES: DetectorName[] = ['auto', 'gaussian', 'histogram', 'hst', 'ecod'];

function prequential(detector: Detector, rows: number[][]): number[] {
  return rows.map((r) => {
    const s = detector.scoreOne(r);
    detector.learnOne(r);
    return s;
  });
}

describe('detectors', () => {
  const { rows, labels } = plantedData(5);

  for (const name of NAMES) {
    it(`${name} finds the planted outliers, with scores in 0..1`, () => {
      const detector = createDetector(name, 4, { seed: 3 });
      const scores = prequential(detector, rows);
      const after = scores.slice(1000);
      assert.ok(after.every((s) => s >= 0 && s <= 1));
      const auc = rocAuc(after, labels.slice(1000));
      assert.ok(auc > 0.99, `${name}: AUC of planted outliers ${auc}`);
      // Every planted outlier scores above the 99th percentile of the normal records.
      const normal = after.filter((_, i) => labels[1000 + i] === 0).sort((a, b) => a - b);
      const q99 = normal[Math.floor(0.99 * normal.length)];
      after.forEach((s, i) => {
        if (labels[1000 + i] === 1) assert.ok(s > q99, `${name}: outlier at ${1000 + i} scored ${s} <= ${q99}`);
      });
    });

    it(`${name} restores from plain JSON and scores identically`, () => {
      const detector = createDetector(name, 4, { seed: 9 });
      prequential(detector, rows.slice(0, 700));
      const json = JSON.stringify(detector.toJSON());
      assert.doesNotMatch(json, /Float64Array/);
      const restored = detectorFromJSON(JSON.parse(json));
      assert.deepEqual(prequential(restored, rows.slice(700, 1500)), prequential(detector, rows.slice(700, 1500)));
      assert.deepEqual(restored.toJSON(), detector.toJSON());
    });
  }

  it('gaussian finds a record that breaks the correlation, which per-feature detectors cannot see', () => {
    const gaussian = new GaussianDetector(4);
    for (const r of rows.slice(0, 2000)) gaussian.learnOne(r);
    // Feature 1 follows 2 x feature 0: this record keeps both inside their ranges but breaks the relation.
    const broken = [11.5, -8, 100, 0];
    const typical = rows
      .slice(2000, 2200)
      .filter((_, i) => labels[2000 + i] === 0)
      .map((r) => gaussian.scoreOne(r));
    assert.ok(broken.every((v, j) => v > Math.min(...rows.map((r) => r[j])) && v < Math.max(...rows.map((r) => r[j]))));
    assert.ok(gaussian.scoreOne(broken) > Math.max(...typical));
    const parts = new Float64Array(4);
    gaussian.rawScore(broken, parts);
    assert.ok(parts[0] + parts[1] > parts[2] + parts[3], 'features 0 and 1 contribute most');
  });

  it('hst counts the same whether or not a record was scored before it is learned', () => {
    const scored = new HalfSpaceTrees(4, { seed: 6, windowSize: 100 });
    const unscored = new HalfSpaceTrees(4, { seed: 6, windowSize: 100 });
    rows.slice(0, 1000).forEach((r, i) => {
      scored.rawScore(r);
      if (i % 7 === 0) scored.rawScore(rows[(i * 13) % 3000]); // another record in between: no reuse
      scored.learnOne(r);
      unscored.learnOne(r);
    });
    assert.deepEqual(scored.toJSON(), unscored.toJSON());
  });

  it('hst gives the same scores for the same seed and different ones for another', () => {
    const a = prequential(new HalfSpaceTrees(4, { seed: 1 }), rows.slice(0, 800));
    const b = prequential(new HalfSpaceTrees(4, { seed: 1 }), rows.slice(0, 800));
    const c = prequential(new HalfSpaceTrees(4, { seed: 2 }), rows.slice(0, 800));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('gaussian and ecod merge into the detector that saw both streams', () => {
    const whole = new GaussianDetector(4);
    const first = new GaussianDetector(4);
    const second = new GaussianDetector(4);
    rows.forEach((r, i) => {
      whole.learnOne(r);
      (i < 1500 ? first : second).learnOne(r);
    });
    first.merge(second);
    whole.refresh();
    for (const r of rows.slice(0, 50)) {
      const a = first.rawScore(r);
      const b = whole.rawScore(r);
      assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, b), `${a} vs ${b}`);
    }
    // ECOD's sketches merge exactly when they share a geometry (here: the same first values), else to a bucket.
    const ecodWhole = new EcodDetector(4);
    const ecodFirst = new EcodDetector(4);
    const ecodSecond = new EcodDetector(4);
    rows.forEach((r, i) => {
      ecodWhole.learnOne(r);
      (i < 1500 ? ecodFirst : ecodSecond).learnOne(r);
    });
    ecodFirst.merge(ecodSecond);
    const merged = rows.slice(0, 200).map((r) => ecodFirst.scoreOne(r));
    const single = rows.slice(0, 200).map((r) => ecodWhole.scoreOne(r));
    const maxDifference = Math.max(...merged.map((m, i) => Math.abs(m - single[i])));
    assert.ok(maxDifference < 0.05, `ecod merged vs single pass: ${maxDifference}`);
  });

  it('histogram merges exactly into the detector that saw both streams when grids agree', () => {
    const whole = new HistogramDetector(4);
    const first = new HistogramDetector(4);
    const second = new HistogramDetector(4);
    rows.forEach((r, i) => {
      whole.learnOne(r);
      (i < 1500 ? first : second).learnOne(r);
    });
    first.merge(second);
    const merged = rows.slice(0, 300).map((r) => first.rawScore(r));
    const single = rows.slice(0, 300).map((r) => whole.rawScore(r));
    // Grids anchored at zero with power-of-two widths nest: after coarsening to the same width they agree.
    const sameWidths = JSON.stringify((first.toJSON().histograms as { exponent: number }[]).map((h) => h.exponent));
    const wholeWidths = JSON.stringify((whole.toJSON().histograms as { exponent: number }[]).map((h) => h.exponent));
    if (sameWidths === wholeWidths) assert.deepEqual(merged, single);
    else assert.ok(rocAuc(merged.concat(single), [...merged.map(() => 1), ...single.map(() => 0)]) > 0.3);
  });

  it('hst merges masses when both share trees (same seed and ranges), and refuses otherwise', () => {
    const base = new HalfSpaceTrees(4, { seed: 4, windowSize: 100 });
    for (const r of rows.slice(0, 100)) base.learnOne(r);
    const fork = HalfSpaceTrees.fromJSON(JSON.parse(JSON.stringify(base.toJSON())));
    for (const r of rows.slice(100, 150)) base.learnOne(r);
    for (const r of rows.slice(150, 200)) fork.learnOne(r);
    const before = base.rawScore(rows[500]);
    base.merge(fork);
    assert.notEqual(base.rawScore(rows[500]), before);
    const other = new HalfSpaceTrees(4, { seed: 5, windowSize: 100 });
    assert.throws(() => base.merge(other), /cannot be merged/);
  });

  it('refuses damaged snapshots with a clear error', () => {
    const detector = new EcodDetector(2);
    detector.learnOne([1, 2]);
    const snapshot = detector.toJSON() as Record<string, unknown>;
    assert.throws(() => detectorFromJSON({ ...snapshot, kind: 'magic' }), /unknown detector kind magic/);
    assert.throws(() => detectorFromJSON({ ...snapshot, statistics: { dimension: 2, mean: 'x' } }), /damaged/);
    assert.throws(() => HistogramDetector.fromJSON({ kind: 'histogram', dimension: 1, bins: 64 }), /damaged/);
  });
});
