import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  createModel,
  modelFromJSON,
  thresholdFromJSON,
  type AttributeSpec,
  type DetectorName,
  type Model,
} from '../../../src/engine';
import { shuttleDir, shuttleMissing } from '../../support/env';
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

  it('extra detectors: each scores as a model of its own would, with its own threshold, and survives a snapshot', () => {
    const options = { attributes, seed: 4, warmupRecords: 100 };
    const model = createModel({ ...options, extraDetectors: ['hst', 'gaussian', 'auto'] });
    assert.deepEqual(model.detectors, ['auto', 'hst', 'gaussian']);
    const alone = { auto: createModel(options), hst: createModel({ ...options, detector: 'hst' }) };
    const gaussian = createModel({ ...options, detector: 'gaussian' });
    data.slice(0, 1500).forEach((r) => {
      // Scored by the default, an extra one, or not at all before learning: the models learn the same.
      const i = data.indexOf(r);
      if (i % 3 === 0) assert.deepEqual(model.scoreOne(r, 2), alone.auto.scoreOne(r, 2));
      if (i % 3 === 1) assert.deepEqual(model.scoreOne(r, 2, 'hst'), alone.hst.scoreOne(r, 2));
      if (i % 3 === 2) assert.deepEqual(model.scoreOne(r, 2, 'gaussian'), gaussian.scoreOne(r, 2));
      model.learnOne(r);
      alone.auto.learnOne(r);
      alone.hst.learnOne(r);
      gaussian.learnOne(r);
    });
    const r = data[1501];
    assert.equal(model.scoreOne(r, 3, 'auto').detector, 'auto');
    assert.deepEqual(model.scoreOne(r, 3, 'hst'), alone.hst.scoreOne(r, 3));
    // Each threshold learned its own detector's scores.
    assert.equal(model.scoreOne(r, 3, 'gaussian').threshold, gaussian.scoreOne(r).threshold);
    assert.notEqual(model.scoreOne(r, 3, 'gaussian').threshold, model.scoreOne(r).threshold);
    assert.throws(
      () => model.scoreOne(r, 3, 'ecod'),
      /does not learn a "ecod" detector \(it learns auto, hst, gaussian\)/,
    );
    const restored = modelFromJSON(JSON.parse(JSON.stringify(model.toJSON())));
    assert.deepEqual(restored.detectors, model.detectors);
    for (const name of ['auto', 'hst', 'gaussian'] as const) {
      assert.deepEqual(restored.scoreOne(r, 3, name), model.scoreOne(r, 3, name));
    }
    assert.deepEqual(replay(restored, data.slice(1600, 1900)), replay(model, data.slice(1600, 1900)));
    assert.deepEqual(restored.toJSON(), model.toJSON());
    // hst among the detectors: the model cannot forget.
    assert.match(model.forgetOne(data[0]).reason!, /hst detector cannot forget/);
  });

  it('extra detectors merge and forget as models of their own do', () => {
    const extras = { attributes, extraDetectors: ['gaussian' as const, 'ecod' as const] };
    const first = createModel(extras);
    const second = createModel(extras);
    const alone = (['gaussian', 'ecod'] as const).map((detector) => ({
      detector,
      first: createModel({ attributes, detector }),
      second: createModel({ attributes, detector }),
    }));
    data.forEach((r, i) => {
      (i < 1000 ? first : second).learnOne(r);
      for (const a of alone) (i < 1000 ? a.first : a.second).learnOne(r);
    });
    first.merge(second);
    for (const a of alone) a.first.merge(a.second);
    const r = data[10];
    for (const a of alone) assert.deepEqual(first.scoreOne(r, 2, a.detector), a.first.scoreOne(r, 2), a.detector);
    for (const model of [first, ...alone.map((a) => a.first)]) {
      model.learnOne(data[20]);
      assert.equal(model.forgetOne(data[20]).learned, true);
    }
    for (const a of alone) assert.deepEqual(first.scoreOne(r, 2, a.detector), a.first.scoreOne(r, 2), a.detector);
  });

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

  it('learns records scored ahead (as behind a scorer node) with the scores they were given', () => {
    const options = { attributes, warmupRecords: 100, threshold: { kind: 'quantile' as const, q: 0.9 } };
    const ahead = createModel(options);
    const stepwise = createModel(options);
    replay(ahead, data.slice(0, 600));
    replay(stepwise, data.slice(0, 600));
    const expected = thresholdFromJSON(ahead.toJSON().threshold);
    // More records in flight than the ring first holds, as batches behind a scorer node can be.
    const batch = data.slice(600, 3000);
    const given = ahead.scoreMany(batch).map((r) => r.score);
    // Scores do not change the model: scoring the whole batch first gives what the first record would get.
    assert.equal(given[0], stepwise.scoreOne(batch[0]).score);
    ahead.learnMany(batch);
    for (const r of batch) stepwise.learnOne(r);
    assert.equal(ahead.recordsLearned, 3000);
    assert.deepEqual(ahead.statistics(), stepwise.statistics());
    // The threshold saw the scores given, every one of them, not fresh ones (which the stepwise model saw).
    for (const score of given) expected.observe(score);
    assert.deepEqual(ahead.toJSON().threshold, expected.toJSON());
    assert.notDeepEqual(ahead.toJSON().threshold, stepwise.toJSON().threshold);
  });

  it('a record edited between scoring and learning is learned as it is now, with a fresh score', () => {
    const edited = createModel({ attributes });
    const fresh = createModel({ attributes });
    replay(edited, data.slice(0, 600));
    replay(fresh, data.slice(0, 600));
    const record = { ...data[600] };
    edited.scoreOne(record);
    record.a = (record.a as number) + 40;
    edited.learnOne(record);
    fresh.learnOne({ ...record });
    assert.deepEqual(edited.toJSON(), fresh.toJSON());
    assert.deepEqual(replay(edited, data.slice(601, 700)), replay(fresh, data.slice(601, 700)));
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
    assert.equal(snapshot.version, 3);
    assert.throws(
      () => modelFromJSON({ ...snapshot, version: 1 }),
      /unsupported model snapshot version 1 \(this engine reads versions 2 and 3\)/,
    );
    assert.throws(() => modelFromJSON({ ...snapshot, version: 4 }), /unsupported model snapshot version 4/);
    // Version 2 had no extra detectors: its snapshots still load (saved in context before an upgrade).
    const { extraDetectors: _none, ...version2 } = snapshot;
    const old = modelFromJSON({ ...version2, version: 2, options: { ...snapshot.options, extraDetectors: undefined } });
    assert.deepEqual(old.detectors, ['auto']);
    assert.deepEqual(old.scoreOne(data[400]), model.scoreOne(data[400]));
    assert.throws(
      () => modelFromJSON({ ...snapshot, options: { ...snapshot.options, extraDetectors: ['hst'] } }),
      /^Error: damaged model snapshot: extraDetectors do not match the options$/,
    );
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
    assert.throws(() => createModel({ extraDetectors: ['magic' as DetectorName] }), /unknown detector "magic"/);
    assert.throws(
      () => createModel({ attributes, extraDetectors: ['hst'] }).merge(createModel({ attributes })),
      /different detectors/,
    );
    assert.throws(() => createModel({ threshold: { kind: 'quantile', q: 2 } }), /0 < q < 1/);
    assert.throws(() => createModel({ halfLife: -1 }), /halfLife/);
    assert.throws(
      () => createModel({ attributes, detector: 'ecod' }).merge(createModel({ attributes })),
      /different detectors/,
    );
  });
});

describe('model on Shuttle (prequential: score, then learn)', { skip: shuttleMissing() }, () => {
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
