// How the learner and scorer read records: a value nested deeper than the limit (or one that contains itself) is
// refused with a clear error before anything walks it recursively, and null is named as null.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBatch, MAX_RECORD_DEPTH, nestedDeeperThan, recordOf, recordsOf } from '../../src/node-red/records';

const arrays = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));
const objects = (depth: number): object => JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as object;

test('nesting is counted from the value itself (level 1), without recursion', () => {
  assert.equal(nestedDeeperThan({ a: 1, b: 'x' }, 1), false);
  assert.equal(nestedDeeperThan({ a: [1] }, 1), true);
  assert.equal(nestedDeeperThan({ a: [1] }, 2), false);
  assert.equal(nestedDeeperThan(objects(64), 64), false);
  assert.equal(nestedDeeperThan(objects(65), 64), true);
  assert.equal(nestedDeeperThan(arrays(10_000) as object, 64), true);
  assert.equal(nestedDeeperThan(objects(1_000_000), 64), true);
  // Buffers and typed arrays are values, not containers to walk byte by byte.
  assert.equal(nestedDeeperThan({ raw: Buffer.alloc(1_000_000) }, 1), false);
  // Many side by side is wide, not deep.
  assert.equal(nestedDeeperThan({ list: Array.from({ length: 50_000 }, (_, i) => ({ i })) }, 3), false);
});

test('a value that contains itself is too deep, and shared values cannot make the walk explode', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  assert.equal(nestedDeeperThan(cyclic, 64), true);
  // 60 levels, each referring twice to the next: 2^60 paths, 60 distinct objects.
  let shared: object = { leaf: true };
  for (let i = 0; i < 60; i++) shared = { left: shared, right: shared };
  assert.equal(nestedDeeperThan(shared, 64), false);
  assert.equal(nestedDeeperThan(shared, 60), true);
});

test('recordOf and recordsOf refuse a record nested 10,000 levels deep with a clear error, not a RangeError', () => {
  const message = `the record is nested more than ${MAX_RECORD_DEPTH} levels deep (or refers to itself)`;
  for (const deep of [arrays(10_000), objects(10_000), { a: objects(MAX_RECORD_DEPTH) }]) {
    assert.throws(
      () => recordOf(deep),
      (e: unknown) => e instanceof Error && !(e instanceof RangeError) && e.message === message,
    );
    assert.throws(() => recordsOf(deep), { message });
  }
  assert.deepEqual(recordOf(objects(MAX_RECORD_DEPTH)), objects(MAX_RECORD_DEPTH));
  // A batch is one level more: its records may each nest up to the limit.
  const batch = [objects(MAX_RECORD_DEPTH), { b: 2 }];
  assert.equal(isBatch(batch), true);
  assert.equal(recordsOf(batch).length, 2);
  const tooDeep = [objects(MAX_RECORD_DEPTH + 1), { b: 2 }];
  assert.equal(isBatch(tooDeep), false);
  assert.throws(() => recordsOf(tooDeep), { message });
});

test('a null record (a Kafka tombstone) is called null, not object', () => {
  assert.throws(() => recordOf(null), { message: 'the record must be an object or an array, not null' });
  assert.throws(() => recordOf(undefined), { message: 'the record must be an object or an array, not missing' });
  assert.throws(() => recordOf(3), { message: 'the record must be an object or an array, not number' });
});
