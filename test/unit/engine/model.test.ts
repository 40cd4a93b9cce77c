import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createModel, modelFromJSON, type AttributeSpec, type DetectorName, type Model } from '../../../src/engine';
import { shuttleDir } from '../../support/env';
import { aucAndAp, close, normalSource } from './helpers';

const attributes: AttributeSpec[] = [
  { name: 'a', type: 'C' },
  { name: 'b', type: 'C' },
  { name: 'mode', type: 'T' },
  { name: 'door', type: 'B' },
  { name: 'label', type: 'B', role: 'label' },
];

/** Records with a category and a binary field; every 97th record after 500 is a planted anomaly in a. */
function records(n: number, seed: number): Record<string, unknown>[] {
  const normal = normalSource(seed);
  return Array.from({ length: n }, (_, i) => {
    const shared = normal();
    const anomaly = i > 500 && i % 97 === 0;
    return {
      a: 50 + 5 * shared + (anomaly ? 60 : 0),
      b: 3 * shared + normal(),
      mode: ['idle', 'run', 'RUN '][i % 3],
      door: i % 5 === 0,
      label: anomaly ? 1 : 0,
    };
  });
}

const DETECTORS: DetectorName[] = ['auto', 'gaussian', 'histogram', 'hst', 'ecod'];

function replay(model: Model, rs: Record<string, unknown>[]) {
  return rs.map((r) => {
    const s = model.scoreOne(r);
    model.learnOne(r);
    return s;
  });
}

describe('model', () => {
  const data = records(3000, 21);

  for (const detector of DETECTORS) {
    it(`${detector}: a snapshot restores exactly, also after a merge`, () => {
      const model = createModel({ attributes, detector, seed: 4, warmupRecords: 100 });
      replay(model, data.slice(0, 1200));
      const json = JSON.stringify(model.toJSON());
      const restored = modelFromJSON(JSON.parse(json));
      assert.deepEqual(replay(restored, data.slice(1200, 1800)), replay(model, data.slice(1200, 1800)));
      assert.deepEqual(restored.toJSON(), model.toJSON());

      // Merge a model that saw other records (hst needs the same trees: a copy of the same model).
      const other = detector === 'hst' ? modelFromJSON(json) : createModel({ attributes, detector, seed: 4 });
      replay(other, data.slice(1800, 2400));
      model.merge(other);
      const again = modelFromJSON(JSON.parse(JSON.stringify(model.toJSON())));
      assert.deepEqual(replay(again, data.slice(2400)), replay(model, data.slice(2400)));
    });
  }

  // The second stream meets "run" before "idle": merging reorders its category features first.
  it('merges into the statistics of one model that saw both streams', () => {
    const whole = createModel({ attributes });
    const first = createModel({ attributes });
    const second = createModel({ attributes });
    data.forEach((r, i) => {
      whole.learnOne(r);
      (i < 1000 ? first : second).learnOne(r);
    });
    first.merge(second);
    const a = first.statistics();
    const b = whole.statistics();
    assert.equal(a.records, b.records);
    assert.deepEqual(
      a.features.map((f) => f.name),
      b.features.map((f) => f.name),
    );
    a.features.forEach((f, j) => {
      for (const key of ['count', 'mean', 'variance', 'skewness', 'kurtosis', 'min', 'max'] as const) {
        assert.ok(
          close(f[key], b.features[j][key], 1e-9, 1e-9),
          `${f.name} ${key}: ${f[key]} vs ${b.features[j][key]}`,
        );
      }
    });
    a.pairs.forEach((p, k) => assert.ok(close(p.covariance, b.pairs[k].covariance, 1e-9, 1e-9)));
    assert.equal(first.recordsLearned, 3000);
  });

  it('forgetOne inverts learnOne; hst cannot forget and says so', () => {
    const model = createModel({ attributes });
    for (const r of data.slice(0, 1000)) model.learnOne(r);
    const before = model.statistics();
    for (const r of data.slice(1000, 1100)) model.learnOne(r);
    for (const r of data.slice(1000, 1100)) assert.equal(model.forgetOne(r).learned, true);
    const after = model.statistics();
    after.features.forEach((f, j) => assert.ok(close(f.variance, before.features[j].variance, 1e-9)));
    const hst = createModel({ attributes, detector: 'hst' });
    hst.learnOne(data[0]);
    assert.match(hst.forgetOne(data[0]).reason!, /cannot forget/);
  });

  it('warms up, then flags the planted anomalies, with contributions that name the attribute', () => {
    const model = createModel({ attributes, warmupRecords: 300 });
    const results = replay(model, data);
    assert.ok(results.slice(0, 300).every((r) => r.warmingUp && !r.isAnomaly));
    assert.ok(results.slice(300).every((r) => !r.warmingUp));
    const planted = results.filter((r) => r.label === 1);
    assert.ok(planted.length > 20);
    assert.ok(
      planted.every((r) => r.isAnomaly),
      'every planted anomaly is flagged',
    );
    const falseAlarms = results.slice(300).filter((r) => r.isAnomaly && r.label === 0).length;
    assert.ok(falseAlarms < 0.02 * 2700, `false alarms ${falseAlarms}`);
    for (const r of planted) {
      assert.equal(r.contributions[0].attribute, 'a');
      const sum = r.contributions.reduce((s, c) => s + c.share, 0);
      assert.ok(Math.abs(sum - 1) < 1e-9);
      for (let k = 1; k < r.contributions.length; k++)
        assert.ok(r.contributions[k - 1].share >= r.contributions[k].share);
    }
    assert.equal(results[0].detector, 'auto');
    assert.ok(results.every((r) => r.threshold > 0));
  });

  it('skipAnomalies keeps flagged records out of what the model learns', () => {
    const model = createModel({ attributes, warmupRecords: 300, skipAnomalies: true });
    const learned = data.map((r) => {
      model.scoreOne(r);
      return model.learnOne(r);
    });
    const skipped = learned.filter((l) => !l.learned);
    assert.ok(skipped.length >= 20);
    assert.ok(skipped.every((l) => l.reason === 'flagged as an anomaly'));
    assert.equal(model.recordsLearned, 3000 - skipped.length);
    // The planted values never reach the statistics: the maximum of a stays in the normal range.
    assert.ok(model.statistics().features[0].max < 90);
  });

  it('refuses snapshots of another version, of another kind, or damaged, with a clear error', () => {
    const model = createModel({ attributes });
    replay(model, data.slice(0, 300));
    const snapshot = model.toJSON();
    assert.equal(snapshot.version, 2);
    assert.throws(
      () => modelFromJSON({ ...snapshot, version: 1 }),
      /unsupported model snapshot version 1 \(this engine reads version 2\)/,
    );
    assert.throws(() => modelFromJSON({ ...snapshot, version: 3 }), /unsupported model snapshot version 3/);
    assert.throws(() => modelFromJSON({ hello: 1 }), /not a model snapshot/);
    assert.throws(() => modelFromJSON('{"broken'), /not valid JSON/);
    assert.throws(() => modelFromJSON({ ...snapshot, detector: null }), /damaged model snapshot/);
    const damaged = JSON.parse(JSON.stringify(snapshot));
    damaged.statistics.mean = [1, 2];
    assert.throws(() => modelFromJSON(damaged), /damaged model snapshot: damaged statistics: mean/);
    const wrongDetector = JSON.parse(JSON.stringify(snapshot));
    wrongDetector.detector.members = [];
    assert.throws(() => modelFromJSON(wrongDetector), /damaged model snapshot/);
    // A string holding the JSON works too.
    assert.equal(modelFromJSON(JSON.stringify(snapshot)).recordsLearned, 300);
  });

  it('refuses bad options', () => {
    assert.throws(() => createModel({ detector: 'magic' as DetectorName }), /unknown detector "magic"/);
    assert.throws(() => createModel({ threshold: { kind: 'quantile', q: 2 } }), /0 < q < 1/);
    assert.throws(() => createModel({ halfLife: -1 }), /halfLife/);
    assert.throws(
      () => createModel({ attributes, detector: 'ecod' }).merge(createModel({ attributes })),
      /different detectors/,
    );
  });
});

describe('model on Shuttle (prequential: score, then learn)', () => {
  const dir = shuttleDir();
  const lines = fs.readFileSync(path.join(dir, 'shuttle.csv'), 'utf8').trim().split('\n');
  const header = lines[0].split(',');
  const rows = lines.slice(1).map((l) => l.split(',').map(Number));
  const labels = rows.map((r) => r[9]);
  const shuttleAttributes: AttributeSpec[] = header.map((name) =>
    name === 'outlier' ? { name, type: 'C', role: 'label' } : { name, type: 'C' },
  );

  it('the default detector separates the outliers (ROC-AUC > 0.98, average precision > 0.85) in under 1 MB', () => {
    const model = createModel({ attributes: shuttleAttributes });
    const scores = rows.map((r) => {
      const s = model.scoreOne(r).score;
      model.learnOne(r);
      return s;
    });
    const { auc, ap } = aucAndAp(scores, labels);
    assert.ok(auc > 0.98, `ROC-AUC ${auc}`);
    assert.ok(ap > 0.85, `average precision ${ap}`);
    assert.ok(JSON.stringify(model.toJSON()).length < 1e6);
    assert.equal(model.statistics().features.length, 9);
  });
});

describe('model options', () => {
  const attributes: AttributeSpec[] = [
    { name: 'x', type: 'C' },
    { name: 'mode', type: 'T' },
  ];

  it('with a half-life, adapts to a new regime; without, keeps finding it unusual', () => {
    const normal = normalSource(31);
    const before = Array.from({ length: 3000 }, () => ({ x: normal(), mode: 'a' }));
    const after = Array.from({ length: 1500 }, () => ({ x: 10 + normal(), mode: 'a' }));
    // The gaussian detector scores on the statistics directly ('auto' ranks scores among past scores, which makes
    // a lasting new regime look ordinary after a while, with or without forgetting).
    const forgetting = createModel({ attributes, halfLife: 200, detector: 'gaussian' });
    const keeping = createModel({ attributes, detector: 'gaussian' });
    forgetting.learnMany(before.concat(after));
    keeping.learnMany(before.concat(after));
    const probe = after.slice(0, 200);
    const mean = (rs: { score: number }[]) => rs.reduce((s, r) => s + r.score, 0) / rs.length;
    assert.ok(mean(forgetting.scoreMany(probe)) < 0.5 * mean(keeping.scoreMany(probe)));
    const x = forgetting.statistics().features[0];
    assert.ok(Math.abs(x.mean - 10) < 0.3, `mean with forgetting ${x.mean}`);
    assert.ok(x.count < 300, `effective count ${x.count} (about halfLife / ln 2 = 289)`);
  });

  it('names a category attribute when its value is what is unusual', () => {
    const normal = normalSource(32);
    const model = createModel({ attributes, warmupRecords: 100 });
    model.learnMany(Array.from({ length: 2000 }, (_, i) => ({ x: normal(), mode: i % 500 === 0 ? 'rare' : 'usual' })));
    const result = model.scoreOne({ x: 0.1, mode: 'rare' });
    assert.equal(result.contributions[0].attribute, 'mode');
    const usual = model.scoreOne({ x: 0.1, mode: 'usual' });
    assert.ok(result.score > usual.score);
  });
});
