// FleetModel: members that each learn part of a stream and exchange contributions serve the model of the whole
// stream; contributions with another schema or other options are refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createModel,
  FleetModel,
  isFleetMerge,
  rocAuc,
  type DataRecord,
  type ModelOptions,
  type StatisticsReport,
} from '../../../src/engine';

import { parseAttributeTable } from '../../../src/node-red/model-config';
import { readShuttle, SHUTTLE_ATTRIBUTES, shuttleMissing } from '../../support/shuttle';

const options: ModelOptions = {
  attributes: [
    { name: 'a', type: 'C' },
    { name: 'b', type: 'C' },
    { name: 'mode', type: 'T' },
  ],
};

function records(n: number, seed = 1): DataRecord[] {
  let s = seed;
  const next = (): number => (s = (s * 16807) % 2147483647) / 2147483647;
  return Array.from({ length: n }, (_, i) => ({
    a: next() * 10,
    b: next() * 3 + i / n,
    mode: next() < 0.3 ? 'x' : 'y',
  }));
}

function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

/** The same moments feature by feature and pair by pair (category features may come in another order). */
function sameMoments(actual: StatisticsReport, expected: StatisticsReport): void {
  assert.equal(actual.records, expected.records);
  assert.equal(actual.features.length, expected.features.length);
  for (const e of expected.features) {
    const a = actual.features.find((f) => f.name === e.name);
    assert.ok(a, `feature ${e.name}`);
    for (const key of ['count', 'mean', 'variance', 'min', 'max'] as const) near(a[key], e[key], `${e.name} ${key}`);
  }
  for (const e of expected.pairs) {
    const a = actual.pairs.find((p) => (p.a === e.a && p.b === e.b) || (p.a === e.b && p.b === e.a));
    assert.ok(a, `pair ${e.a}×${e.b}`);
    near(a.covariance, e.covariance, `${e.a}×${e.b}`);
  }
}

test('three members exchanging contributions serve the statistics of one model of the whole stream', () => {
  const all = records(3_000);
  const whole = createModel(options);
  for (const r of all) whole.learnOne(r);
  const members = ['m0', 'm1', 'm2'].map((name) => new FleetModel(name, createModel(options)));
  const exchange = (): void => {
    const contributions = members.map((m) => m.own.toJSON());
    members.forEach((m) => {
      contributions.forEach((c, j) => m.accept(`m${j}`, JSON.parse(JSON.stringify(c)), Date.now()));
      m.rebuild();
    });
  };
  all.forEach((r, i) => {
    const m = members[i % 3];
    m.advance('t/0', i);
    m.learnOne(r);
    if (i % 500 === 499) exchange();
  });
  exchange();
  for (const m of members) {
    assert.equal(m.own.recordsLearned, 1_000, `${m.member} learned its own third`);
    assert.equal(m.serving.recordsLearned, 3_000, `${m.member} serves the whole stream`);
    sameMoments(m.serving.statistics(), whole.statistics());
    assert.deepEqual(
      m.members().map((x) => [x.member, x.records, x.own]),
      [[m.member, 1_000, true], ...members.filter((o) => o !== m).map((o) => [o.member, 1_000, false])],
    );
  }
  // Positions learned by any member are known to every member (a partition moving between them is not relearned).
  assert.equal(members[0].covers('t/0', 2_999), true);
  assert.equal(members[0].covers('t/0', 3_000), false);
});

test('learning between exchanges goes into own and the serving model alike', () => {
  const a = new FleetModel('a', createModel(options));
  const b = createModel(options);
  const data = records(400, 7);
  for (const r of data.slice(0, 200)) b.learnOne(r);
  a.accept('b', b.toJSON(), 1);
  assert.equal(a.isStale, true);
  a.rebuild();
  for (const r of data.slice(200)) a.learnOne(r);
  assert.equal(a.own.recordsLearned, 200);
  assert.equal(a.serving.recordsLearned, 400);
  // The merge is marked, so a learner redeployed never adopts it as its own contribution.
  assert.equal(isFleetMerge(a.serving), true);
  assert.equal(isFleetMerge(a.own), false);
  const whole = createModel(options);
  for (const r of data) whole.learnOne(r);
  sameMoments(a.serving.statistics(), whole.statistics());
});

test('a later contribution replaces the earlier one; an older one arriving late is ignored; a tombstone drops it', () => {
  const a = new FleetModel('a', createModel(options));
  const b = createModel(options);
  const data = records(300, 3);
  for (const r of data.slice(0, 100)) b.learnOne(r);
  const early = b.toJSON();
  for (const r of data.slice(100)) b.learnOne(r);
  a.accept('b', b.toJSON(), 2);
  a.accept('b', early, 1);
  a.rebuild();
  assert.equal(a.serving.recordsLearned, 300);
  a.drop('b');
  a.rebuild();
  assert.equal(a.serving.recordsLearned, 0);
  assert.equal(a.serving, a.own);
});

test('contributions of another schema, other detectors or options, or damaged ones are refused and counted', () => {
  const a = new FleetModel('a', createModel(options));
  const other = createModel({ attributes: [{ name: 'a', type: 'C' }] });
  assert.match(a.accept('x', other.toJSON(), 1)!, /another attribute schema/);
  assert.match(a.accept('y', createModel({ ...options, detector: 'gaussian' }).toJSON(), 1)!, /other detectors/);
  assert.match(a.accept('z', createModel({ ...options, halfLife: 100 }).toJSON(), 1)!, /half-life/);
  assert.match(a.accept('w', { format: 'nonsense' }, 1)!, /damaged/);
  assert.equal(a.refused, 4);
  assert.equal(a.isStale, false);
  assert.equal(a.members().length, 1);
  // Its own contribution read back from the topic is not merged into itself.
  assert.equal(a.accept('a', a.own.toJSON(), 1), undefined);
  assert.equal(a.members().length, 1);
});

test('a reset of own keeps the others in the merge', () => {
  const a = new FleetModel('a', createModel(options));
  const b = createModel(options);
  for (const r of records(50, 5)) b.learnOne(r);
  for (const r of records(70, 9)) a.learnOne(r);
  a.accept('b', b.toJSON(), 1);
  a.rebuild();
  assert.equal(a.serving.recordsLearned, 120);
  const before = a.version;
  a.replaceOwn(createModel(options));
  assert.ok(a.version > before, 'a reset is a change to publish');
  assert.equal(a.serving.recordsLearned, 50);
});

test('records two members learned (a rebalance) are forgotten by the member whose name sorts last', () => {
  const data = records(1_000, 11);
  const whole = createModel(options);
  for (const r of data) whole.learnOne(r);
  const a = new FleetModel('gw-a', createModel(options));
  const b = new FleetModel('gw-b', createModel(options));
  // gw-a learns positions 0..599 of the partition; gw-b takes it over at 500 (gw-a had not published 500..599).
  data.forEach((r, i) => {
    if (i < 600) {
      a.advance('t/0', i);
      a.learnOne(r);
    }
    if (i >= 500) {
      b.advance('t/0', i);
      b.learnOne(r);
    }
  });
  const exchange = (): void => {
    const fromA = { snapshot: a.own.toJSON(), ranges: a.ownRanges() };
    const fromB = { snapshot: b.own.toJSON(), ranges: b.ownRanges() };
    a.accept('gw-b', fromB.snapshot, 1, 1, fromB.ranges);
    b.accept('gw-a', fromA.snapshot, 1, 1, fromA.ranges);
    a.rebuild();
    b.rebuild();
  };
  exchange();
  assert.equal(b.forgottenTwice, 100, 'gw-b forgot the 100 records gw-a had learned too');
  assert.equal(a.forgottenTwice, 0);
  assert.equal(a.own.recordsLearned + b.own.recordsLearned, 1_000);
  exchange(); // gw-b's new contribution reaches gw-a
  for (const m of [a, b]) {
    assert.equal(m.serving.recordsLearned, 1_000);
    sameMoments(m.serving.statistics(), whole.statistics());
  }
  // A partition that moved without overlap forgets nothing: gw-a's ranges stop where gw-b's begin.
  const c = new FleetModel('gw-c', createModel(options));
  c.advance('t/1', 10);
  c.learnOne(data[0]);
  c.accept('gw-a', a.own.toJSON(), 2, 2, { 't/1': [[0, 9]] });
  c.rebuild();
  assert.equal(c.forgottenTwice, 0);
});

test(
  'on Shuttle, three members exchanging every 500 records score as one model does (ROC-AUC within 0.005)',
  {
    skip: shuttleMissing(),
  },
  () => {
    const shuttle = readShuttle().records.slice(0, 20_000);
    const shuttleOptions = { attributes: parseAttributeTable(SHUTTLE_ATTRIBUTES) };
    const one = createModel(shuttleOptions);
    const members = [0, 1, 2].map((i) => new FleetModel(`m${i}`, createModel(shuttleOptions)));
    const labels: number[] = [];
    const alone: number[] = [];
    const fleet: number[] = [];
    shuttle.forEach((record, i) => {
      labels.push(record.outlier ? 1 : 0);
      alone.push(one.scoreOne(record).score);
      one.learnOne(record);
      const m = members[i % 3];
      fleet.push(m.serving.scoreOne(record).score);
      m.advance('shuttle/0', i);
      m.learnOne(record);
      if (i % 500 === 499) {
        const contributions = members.map((x) => ({ snapshot: x.own.toJSON(), ranges: x.ownRanges() }));
        members.forEach((x) => {
          contributions.forEach((c, j) => x.accept(`m${j}`, c.snapshot, i, i, c.ranges));
          x.rebuild();
        });
      }
    });
    const a = rocAuc(alone, labels);
    const f = rocAuc(fleet, labels);
    assert.ok(Math.abs(a - f) <= 0.005, `fleet ROC-AUC ${f} against one model's ${a}`);
  },
);
