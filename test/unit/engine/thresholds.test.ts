import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createThreshold,
  FixedThreshold,
  QuantileThreshold,
  SeededRandom,
  SpotThreshold,
  thresholdFromJSON,
} from '../../../src/engine';

function exponentials(n: number, seed: number): number[] {
  const random = new SeededRandom(seed);
  return Array.from({ length: n }, () => -Math.log(1 - random.next()));
}

describe('thresholds', () => {
  it('fixed stays where it is put', () => {
    const t = new FixedThreshold(0.8);
    t.observe();
    assert.equal(t.value, 0.8);
    assert.throws(() => new FixedThreshold(NaN), /finite/);
  });

  it('quantile follows the q-quantile of the scores', () => {
    const t = new QuantileThreshold(0.95);
    assert.equal(t.value, Infinity);
    const scores = exponentials(20000, 1);
    for (const s of scores) t.observe(s);
    const exact = -Math.log(0.05); // the 95% quantile of Exp(1)
    assert.ok(Math.abs(t.value - exact) < 0.05 * exact, `${t.value} vs ${exact}`);
    const restored = thresholdFromJSON(JSON.parse(JSON.stringify(t.toJSON())));
    assert.equal(restored.value, t.value);
  });

  it('SPOT sets z_q so that about a share risk of normal scores exceed it (exponential tail: gamma near 0)', () => {
    const risk = 1e-3;
    const t = new SpotThreshold({ risk, initialScores: 2000 });
    const train = exponentials(50000, 2);
    for (const s of train) t.observe(s);
    const { gamma, sigma } = t.gpd;
    // Excesses of Exp(1) over any threshold are Exp(1): GPD with gamma 0, sigma 1. The method of moments on a tail
    // whose alarms are censored leans to a shorter tail (gamma below 0); z_q still lands near the exact quantile.
    assert.ok(gamma > -0.35 && gamma < 0.1, `gamma ${gamma}`);
    assert.ok(sigma > 0.7 && sigma < 1.3, `sigma ${sigma}`);
    const exact = -Math.log(risk);
    assert.ok(Math.abs(t.value - exact) < 0.15 * exact, `z ${t.value} vs ${exact}`);
    const fresh = exponentials(200000, 3);
    const rate = fresh.filter((s) => s > t.value).length / fresh.length;
    assert.ok(rate > risk / 2 && rate < risk * 3, `false alarm rate ${rate}`);
  });

  it('SPOT keeps alarm values out of its fit, so a burst of anomalies does not lift the threshold', () => {
    const t = new SpotThreshold({ risk: 1e-3, initialScores: 1000 });
    for (const s of exponentials(20000, 4)) t.observe(s);
    const before = t.value;
    for (let i = 0; i < 500; i++) t.observe(before + 5 + i * 100);
    assert.ok(t.value <= before * 1.02, `${t.value} after the burst, ${before} before`);
  });

  it('SPOT handles bounded scores (uniform on 0..1: gamma -1)', () => {
    const random = new SeededRandom(8);
    const t = new SpotThreshold({ risk: 1e-3, initialScores: 1000 });
    for (let i = 0; i < 50000; i++) t.observe(random.next());
    assert.ok(Math.abs(t.gpd.gamma + 1) < 0.15, `gamma ${t.gpd.gamma}`);
    assert.ok(Math.abs(t.value - 0.999) < 0.0005, `z ${t.value}`);
  });

  it('SPOT restores from JSON and merges', () => {
    const a = createThreshold({ kind: 'spot', risk: 0.01 }, 256);
    const b = createThreshold({ kind: 'spot', risk: 0.01 }, 256);
    exponentials(3000, 5).forEach((s, i) => (i % 2 ? a : b).observe(s));
    const restored = thresholdFromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    assert.equal(restored.value, a.value);
    a.merge(b);
    assert.ok(Math.abs(a.value - -Math.log(0.01)) < 0.15 * -Math.log(0.01), `merged z ${a.value}`);
    assert.throws(() => thresholdFromJSON({ kind: 'nope' }), /unknown kind nope/);
    assert.throws(() => createThreshold({ kind: 'spot', risk: 2 }), /risk/);
  });
});
