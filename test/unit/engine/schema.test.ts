import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, guessSchema, modelFromJSON, RecordEncoder, type AttributeSpec } from '../../../src/engine';
import { isIdName } from '../../../src/engine/schema';

const schema: AttributeSpec[] = [
  { name: 'temp', type: 'C' },
  { name: 'door', type: 'B' },
  { name: 'mode', type: 'T' },
  { name: 'note', type: 'S' },
  { name: 'site', type: 'S', asCategory: true },
  { name: 'id', type: 'X' },
  { name: 'label', type: 'B', role: 'label' },
];

describe('RecordEncoder', () => {
  it('reads objects by name and arrays by position, one-hot encoding categories as values appear', () => {
    const encoder = new RecordEncoder(schema);
    assert.deepEqual(encoder.featureNames, ['temp', 'door']);
    const out = new Float64Array(8);
    assert.equal(
      encoder.encode({ temp: 21.5, door: true, mode: ' Auto ', note: 'x', site: 'A', id: 7, label: 1 }, out, true),
      0,
    );
    assert.deepEqual(encoder.featureNames, ['temp', 'door', 'mode=auto', 'site=a']);
    assert.deepEqual(Array.from(out.subarray(0, 4)), [21.5, 1, 1, 1]);
    assert.equal(encoder.label, 1);
    // Same value, other case and spacing: same feature. A new value adds a feature, the old one reads 0.
    assert.equal(encoder.encode([20, 0, 'AUTO', 'y', 'b', 8, 0], out, true), 0);
    assert.deepEqual(encoder.featureNames, ['temp', 'door', 'mode=auto', 'site=a', 'site=b']);
    assert.deepEqual(Array.from(out.subarray(0, 5)), [20, 0, 1, 0, 1]);
    assert.equal(encoder.label, 0);
    // Unseen values when not learning: every feature of the attribute is 0, nothing is added.
    assert.equal(encoder.encode({ temp: '19', door: 'false', mode: 'manual', site: 'a' }, out, false), 0);
    assert.equal(encoder.dimension, 5);
    assert.deepEqual(Array.from(out.subarray(0, 5)), [19, 0, 0, 1, 0]);
    assert.ok(Number.isNaN(encoder.label));
  });

  it('flags values that do not fit their type', () => {
    const encoder = new RecordEncoder(schema);
    const out = new Float64Array(4);
    const bad = encoder.encode({ temp: 'warm', door: 2, mode: '  ', site: null }, out, true);
    assert.equal(bad, 4);
    assert.deepEqual(Array.from(encoder.invalidFlags), [1, 1, 1, 0, 1, 0, 0]);
    assert.match(encoder.describeInvalid({ temp: 'warm', door: 2, mode: '  ', site: null }), /temp \(C\): "warm"/);
    for (const temp of [NaN, Infinity, undefined, true]) {
      encoder.encode({ temp, door: 1, mode: 'a', site: 'a' }, out, true);
      assert.equal(encoder.invalidFlags[0], 1, String(temp));
    }
  });

  it('reads records of continuous fields (objects and arrays) exactly as the general path does', () => {
    const numeric: AttributeSpec[] = [
      { name: 'a', type: 'C' },
      { name: 'skip "me"', type: 'X' },
      { name: 'b\u2028c', type: 'C' },
      { name: 'y', type: 'B', role: 'label' },
    ];
    // A binary attribute more keeps the reference encoder on the general path.
    const reference = new RecordEncoder([...numeric, { name: 'z', type: 'B' }]);
    const byName = new RecordEncoder(numeric);
    const byPosition = new RecordEncoder(numeric);
    const rows: unknown[][] = [
      [1.5, 'x', -2, 1],
      [NaN, 'x', 3, 0],
      [Infinity, null, 4, undefined],
      ['7', 'x', 8, true],
      [undefined, 'x', 9, 'false'],
      [1, 'x', '', 1],
    ];
    for (const row of rows) {
      const record = Object.fromEntries(numeric.map((a, i) => [a.name, row[i]]));
      const expected = new Float64Array(3);
      const bad = reference.encode([...row, 1], expected, true);
      for (const [encoder, value] of [
        [byName, record],
        [byPosition, row],
      ] as const) {
        const out = new Float64Array(2);
        assert.equal(encoder.encode(value, out, true), bad, JSON.stringify(row));
        assert.deepEqual(Array.from(out), Array.from(expected.subarray(0, 2)));
        assert.deepEqual(Array.from(encoder.invalidFlags), Array.from(reference.invalidFlags.subarray(0, 4)));
        assert.deepEqual(encoder.label, reference.label);
      }
    }
  });

  it('refuses a malformed schema', () => {
    assert.throws(() => new RecordEncoder([{ name: 'a', type: 'Q' as 'C' }]), /type must be one of/);
    assert.throws(
      () =>
        new RecordEncoder([
          { name: 'a', type: 'C' },
          { name: 'a', type: 'B' },
        ]),
      /duplicate/,
    );
    assert.throws(() => new RecordEncoder([{ name: 'a', type: 'C', asCategory: true }]), /asCategory/);
  });
});

describe('guessSchema', () => {
  it('guesses numbers C, 0/1 and booleans B, strings T, mostly-unique strings S, label names as the label', () => {
    const records = Array.from({ length: 10 }, (_, i) => ({
      f1: i * 1.5,
      flag: i % 2,
      ok: i % 3 === 0,
      zero: 0,
      mode: i % 2 ? 'on' : 'off',
      uid: `id-${i}`,
      nested: { a: 1 },
      outlier: i === 3 ? 1 : 0,
    }));
    assert.deepEqual(guessSchema(records), [
      { name: 'f1', type: 'C' },
      { name: 'flag', type: 'B' },
      { name: 'ok', type: 'B' },
      { name: 'zero', type: 'C' },
      { name: 'mode', type: 'T' },
      { name: 'uid', type: 'S' },
      { name: 'nested', type: 'X' },
      { name: 'outlier', type: 'B', role: 'label' },
    ]);
    assert.deepEqual(guessSchema([[1, 'a']]), [
      { name: '0', type: 'C' },
      { name: '1', type: 'T' },
    ]);
  });

  it('takes the fields named in labelFields as the label, whatever their name', () => {
    const records = Array.from({ length: 10 }, (_, i) => ({ x: i * 0.5, fault: i === 4 ? 1 : 0 }));
    assert.deepEqual(guessSchema(records)[1], { name: 'fault', type: 'B' });
    assert.deepEqual(guessSchema(records, ['fault'])[1], { name: 'fault', type: 'B', role: 'label' });
    assert.deepEqual(guessSchema(records, ['elsewhere']), guessSchema(records));
  });

  it('ignores (X) a field named like an id whose integers count up in every record, and nothing else', () => {
    const rows = (id: (i: number) => unknown, count = 20) =>
      Array.from({ length: count }, (_, i) => ({ id: id(i), x: Math.cos(i) }));
    const typeOfId = (records: Record<string, unknown>[]) => guessSchema(records)[0].type;
    assert.equal(typeOfId(rows((i) => 100 + i)), 'X', 'a counter');
    assert.equal(typeOfId(rows((i) => 3 * i)), 'X', 'gaps are fine');
    assert.equal(typeOfId(rows((i) => String(7 + i))), 'X', 'as text, as from a CSV');
    assert.equal(typeOfId(rows((i) => (i % 2 ? i : i + 2))), 'C', 'out of order: partitions interleaved');
    assert.equal(typeOfId(rows((i) => i % 5)), 'C', 'repeats');
    assert.equal(typeOfId(rows((i) => i + 0.5)), 'C', 'not integers');
    assert.equal(typeOfId(rows((i) => i, 7)), 'C', 'too few records to tell');
    const missing = rows((i) => i).map((r, i) => (i === 3 ? { x: r.x } : r));
    assert.equal(guessSchema(missing).find((a) => a.name === 'id')?.type, 'C', 'missing in a record');
    // The same counter under another name is a measurement as far as the guess can tell.
    assert.equal(guessSchema(rows((i) => i).map(({ id, x }) => ({ valid: id, x })))[0].type, 'C');
    for (const name of ['id', 'ID', '_id', 'idx', 'index', 'seq', 'row', 'record_id', 'event-id', 'recordId', 'msgID'])
      assert.ok(isIdName(name), name);
    for (const name of ['valid', 'paid', 'humid', 'identity', 'f1', 'rows']) assert.ok(!isIdName(name), name);
  });

  it('a model says whether its schema was guessed; label fields set before the guess apply, and survive a snapshot', () => {
    const given = createModel({ attributes: [{ name: 'x', type: 'C' }] });
    assert.equal(given.schemaGuessed, false);
    const model = createModel({ labelFields: ['fault'] });
    const record = (i: number) => ({ x: Math.sin(i), alarm: i % 9 === 0 ? 1 : 0, fault: i % 7 === 0 ? 1 : 0 });
    for (let i = 0; i < 10; i++) model.learnOne(record(i));
    assert.equal(model.schemaGuessed, false, 'still gathering records');
    // Through a snapshot while still guessing, then one more label field.
    const restored = modelFromJSON(JSON.parse(JSON.stringify(model)));
    restored.setLabelFields(['fault', 'alarm']);
    for (let i = 10; i < 80; i++) restored.learnOne(record(i));
    assert.equal(restored.schemaGuessed, true);
    assert.deepEqual(restored.schema, [
      { name: 'x', type: 'C' },
      { name: 'alarm', type: 'B', role: 'label' },
      { name: 'fault', type: 'B', role: 'label' },
    ]);
    assert.equal(modelFromJSON(JSON.parse(JSON.stringify(restored))).schemaGuessed, true);
    // Once the schema is known, label fields change nothing.
    restored.setLabelFields(['x']);
    assert.equal(restored.schema[0].role, undefined);
    assert.throws(() => createModel({ labelFields: 'fault' as never }), /labelFields must be an array/);
  });

  it('lets a model without attributes guess them from its first records and expose the guess', () => {
    const model = createModel({ warmupRecords: 0 });
    assert.deepEqual(model.schema, []);
    for (let i = 0; i < 80; i++) model.learnOne({ a: i, b: i % 2 === 0 ? 'x' : 'y', label: i === 5 ? 1 : 0 });
    assert.deepEqual(model.schema, [
      { name: 'a', type: 'C' },
      { name: 'b', type: 'T' },
      { name: 'label', type: 'B', role: 'label' },
    ]);
    assert.equal(model.recordsLearned, 80);
    const stats = model.statistics();
    assert.deepEqual(
      stats.features.map((f) => f.name),
      ['a', 'b=x', 'b=y'],
    );
    assert.equal(stats.features[0].mean, 39.5);
    assert.ok(Math.abs(stats.features[1].mean - 0.5) < 1e-12);
  });
});

describe('invalid values', () => {
  const attributes: AttributeSpec[] = [
    { name: 'x', type: 'C' },
    { name: 'y', type: 'C' },
    { name: 'label', type: 'B', role: 'label' },
  ];
  const good = Array.from({ length: 300 }, (_, i) => ({ x: Math.sin(i) * 10, y: i % 7, label: 0 }));
  const bad = [{ x: NaN, y: 1 }, { x: 'high', y: 1 }, { y: 2 }, { x: 1, y: Infinity }, { x: 1, y: null }];

  it('skip: bad records never reach the statistics, and each bad value is counted', () => {
    const clean = createModel({ attributes });
    const dirty = createModel({ attributes });
    good.forEach((r, i) => {
      clean.learnOne(r);
      dirty.learnOne(r);
      if (i % 60 === 0) for (const b of bad) assert.equal(dirty.learnOne(b).learned, false);
    });
    assert.deepEqual(dirty.statistics(), { ...clean.statistics(), features: dirty.statistics().features });
    const a = clean.statistics().features;
    const b = dirty.statistics().features;
    for (let j = 0; j < 2; j++) {
      assert.deepEqual({ ...b[j], missing: 0 }, a[j]);
    }
    assert.deepEqual(dirty.invalidCounts(), { x: 15, y: 10, label: 0 });
    assert.equal(b[0].missing, 15);
    assert.equal(dirty.recordsLearned, 300);
    const scored = dirty.scoreOne({ x: 'high', y: 1 });
    assert.equal(scored.score, 0);
    assert.match(scored.invalid!, /x \(C\): "high"/);
  });

  it('impute: bad values are replaced by the running mean', () => {
    const model = createModel({ attributes, invalidValues: 'impute' });
    for (const r of good) model.learnOne(r);
    const before = model.statistics().features[1].mean;
    assert.equal(model.learnOne({ x: 1, y: 'n/a' }).learned, true);
    const after = model.statistics().features[1];
    assert.ok(Math.abs(after.mean - before) < 1e-12);
    assert.equal(after.missing, 1);
  });

  it('error: a bad value throws with the reason', () => {
    const model = createModel({ attributes, invalidValues: 'error' });
    assert.throws(() => model.learnOne({ x: 1 }), /y \(C\): missing/);
    assert.throws(() => model.scoreOne({ x: 'a', y: 1 }), /x \(C\): "a"/);
  });

  it('never learns the label', () => {
    const model = createModel({ attributes, warmupRecords: 10 });
    for (const r of good) model.learnOne({ ...r, label: Math.random() > 0.5 ? 1 : 0 });
    assert.deepEqual(
      model.statistics().features.map((f) => f.name),
      ['x', 'y'],
    );
    assert.equal(model.scoreOne({ x: 1, y: 1, label: 1 }).label, 1);
  });
});
