// The pure parts of "one model per key": what a key is, where it is read, file names, and the LRU collection with
// its cap, eviction to files (persistent store) or forgetting (memory store).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createModel } from '../../src/engine';
import {
  KeyedModels,
  KeyReader,
  keyOf,
  keyOfFile,
  parseKeySource,
  parseMaxLive,
  parseNoKeyPolicy,
} from '../../src/node-red/keyed-models';
import { safeName } from '../../src/node-red/checkpoint';
import type { FlowContext } from '../../src/node-red/model-registry';

const context = (): FlowContext & { values: Map<string, unknown> } => {
  const values = new Map<string, unknown>();
  return {
    values,
    get: (key, _store, callback) => callback(null, values.get(key)),
    set: (key, value, _store, callback) => {
      values.set(key, value);
      callback();
    },
  };
};
const ATTRIBUTES = [{ name: 'a', type: 'C' as const }];

test('a key is a non-empty string, a number or a boolean as text, a Buffer as UTF-8; missing is none', () => {
  assert.equal(keyOf('pump-1'), 'pump-1');
  assert.equal(keyOf(42), '42');
  assert.equal(keyOf(true), 'true');
  assert.equal(keyOf(Buffer.from('m7')), 'm7');
  for (const none of [undefined, null, '']) assert.equal(keyOf(none), undefined);
  assert.throws(() => keyOf({ id: 1 }), /string or a number, not object/);
  assert.throws(() => keyOf(NaN), /not number/);
  assert.throws(() => keyOf('x'.repeat(201)), /longer than 200/);
});

test('a message key is shared by a batch unless it is an array with one key per record; a record field per record', () => {
  const fromMsg = new KeyReader('msg', (m) => (m as { keys: unknown }).keys, 'msg.keys');
  assert.equal(fromMsg.keyAt('a', {}, 3, 5), 'a');
  assert.equal(fromMsg.keyAt(['a', 'b'], {}, 1, 2), 'b');
  assert.throws(() => fromMsg.keyAt(['a', 'b'], {}, 0, 3), /2 keys for a batch of 3/);
  assert.throws(() => fromMsg.keyAt(['a', 'b'], {}, 0, 1), /an array, not a key/);
  const fromRecord = new KeyReader('record', (r) => (r as { machine: unknown }).machine, 'machine');
  assert.equal(fromRecord.ofMessage({ keys: 'x' }), undefined);
  assert.equal(fromRecord.keyAt(undefined, { machine: 'm2' }, 0, 1), 'm2');
});

test('file names give back their key; the default key has a name no key can have', () => {
  for (const key of ['m1', 'a.b/c', 'ü €', "it's (x)*~", '..']) assert.equal(keyOfFile(`${safeName(key)}.json`), key);
  assert.equal(keyOfFile('=default.json'), '');
  assert.equal(keyOfFile('m1.json.123.0.tmp'), undefined);
});

test('dialog values: policies, key sources and the live cap', () => {
  assert.equal(parseNoKeyPolicy(''), 'error');
  assert.equal(parseNoKeyPolicy('default'), 'default');
  assert.throws(() => parseNoKeyPolicy('drop'), /unknown/);
  assert.equal(parseKeySource(undefined), 'msg');
  assert.equal(parseKeySource('record'), 'record');
  assert.equal(parseKeySource('jsonata'), 'jsonata');
  assert.throws(() => parseKeySource('env'), /unknown; use msg, record or jsonata/);
  assert.equal(parseMaxLive(''), 100);
  assert.equal(parseMaxLive('5'), 5);
  assert.throws(() => parseMaxLive('0'), /whole number/);
  assert.throws(() => parseMaxLive('2.5'), /whole number/);
});

test('memory store: past the cap the least recently used model is forgotten', async () => {
  const models = new KeyedModels('t', 'f', 'm', undefined, context(), undefined);
  models.maxLive = 2;
  models.factory = () => createModel({ attributes: ATTRIBUTES });
  await models.load();
  models.slot('a', true)!.model.learnOne({ a: 1 });
  models.slot('b', true);
  models.slot('a', true); // a is now the most recent
  models.slot('c', true);
  assert.deepEqual(models.keys(), ['a', 'c']);
  assert.equal(models.forgotten, 1);
  assert.equal(models.slot('b', false), undefined, 'a forgotten key has no model until one is made');
  assert.equal(models.slot('a', false)!.model.recordsLearned, 1);
});

test('memory store: the live models are left in context and found again (a redeploy)', async () => {
  const shared = context();
  const first = new KeyedModels('t', 'f', 'm.x', undefined, shared, undefined);
  first.factory = () => createModel({ attributes: ATTRIBUTES });
  await first.load();
  first.slot('a', true)!.model.learnOne({ a: 1 });
  await first.save();
  const second = new KeyedModels('t', 'f', 'm.x', undefined, shared, undefined);
  await second.load();
  assert.equal(second.slot('a', false)!.model.recordsLearned, 1);
});

test('persistent store: evicted models go to their files and come back whole; delete removes the file', async () => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-keyed-unit-'));
  try {
    const models = new KeyedModels('t', 'f', 'm', 'file', context(), folder);
    models.maxLive = 1;
    models.factory = () => createModel({ attributes: ATTRIBUTES });
    await models.load();
    for (let i = 0; i < 10; i++) models.slot('a', true)!.model.learnOne({ a: i });
    models.slot('b', true);
    assert.equal(models.storedCount, 1);
    assert.deepEqual(fs.readdirSync(folder), ['a.json']);
    const back = models.slot('a', false)!;
    assert.equal(back.model.recordsLearned, 10);
    assert.equal(back.dirty, false);
    assert.equal(models.reloaded, 1);
    // A new collection over the same folder finds both keys.
    await models.save();
    const again = new KeyedModels('t', 'f', 'm', 'file', context(), folder);
    await again.load();
    assert.deepEqual(again.keys().sort(), ['a', 'b']);
    again.delete('a');
    assert.deepEqual(fs.readdirSync(folder), ['b.json']);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
