import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, LearnedPositions, modelFromJSON, type AttributeSpec } from '../../../src/engine';

const attributes: AttributeSpec[] = [
  { name: 'a', type: 'C' },
  { name: 'b', type: 'C' },
];

describe('LearnedPositions', () => {
  it('covers a position at or below the last one advanced, per source', () => {
    const p = new LearnedPositions();
    assert.equal(p.covers('t/0', 0), false);
    p.advance('t/0', 5);
    assert.equal(p.covers('t/0', 4), true);
    assert.equal(p.covers('t/0', 5), true);
    assert.equal(p.covers('t/0', 6), false);
    assert.equal(p.covers('t/1', 0), false);
    p.advance('t/0', 3); // never back
    assert.equal(p.lastOf('t/0'), 5);
  });

  it('merges to the furthest position of each source', () => {
    const a = new LearnedPositions();
    a.advance('t/0', 10);
    a.advance('t/1', 2);
    const b = new LearnedPositions();
    b.advance('t/0', 4);
    b.advance('t/1', 7);
    b.advance('u/0', 1);
    a.merge(b);
    assert.deepEqual(a.toJSON(), { 't/0': 10, 't/1': 7, 'u/0': 1 });
  });

  it('round-trips through JSON and refuses what is not positions', () => {
    const a = new LearnedPositions();
    a.advance('t/0', 42);
    assert.deepEqual(LearnedPositions.fromJSON(JSON.parse(JSON.stringify(a))).toJSON(), { 't/0': 42 });
    assert.throws(() => LearnedPositions.fromJSON([1]), /must be an object/);
    assert.throws(() => LearnedPositions.fromJSON(null), /must be an object/);
    assert.throws(() => LearnedPositions.fromJSON({ 't/0': '3' }), /"t\/0" must be a finite number/);
  });
});

describe('a model keeps its learned positions', () => {
  it('in its snapshot; an older snapshot without them loads with none', () => {
    const model = createModel({ attributes });
    model.learnOne({ a: 1, b: 2 });
    model.positions.advance('t/0', 0);
    const snapshot = JSON.parse(JSON.stringify(model.toJSON()));
    assert.deepEqual(snapshot.positions, { 't/0': 0 });
    assert.equal(modelFromJSON(snapshot).positions.covers('t/0', 0), true);
    delete snapshot.positions;
    assert.equal(modelFromJSON(snapshot).positions.size, 0);
    assert.throws(() => modelFromJSON({ ...snapshot, positions: { 't/0': null } }), /damaged model snapshot/);
  });

  it('through merge (the furthest of both), also when one model still guesses its schema', () => {
    const a = createModel({ attributes });
    a.learnOne({ a: 1, b: 2 });
    a.positions.advance('t/0', 9);
    const b = createModel({ attributes });
    b.learnOne({ a: 2, b: 3 });
    b.positions.advance('t/0', 3);
    b.positions.advance('t/1', 4);
    a.merge(b);
    assert.deepEqual(a.positions.toJSON(), { 't/0': 9, 't/1': 4 });
    const guessing = createModel();
    guessing.learnOne({ a: 1, b: 2 });
    guessing.positions.advance('u/0', 1);
    guessing.merge(a);
    assert.deepEqual(guessing.positions.toJSON(), { 't/0': 9, 't/1': 4, 'u/0': 1 });
  });

  it('a new model has none', () => {
    assert.equal(createModel({ attributes }).positions.size, 0);
    assert.equal(createModel({ attributes }).toJSON().positions, undefined);
  });
});
