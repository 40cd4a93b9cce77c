import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkpointFileFor, isPersistentStore } from '../../src/node-red/checkpoint';
import { CheckpointBarrier } from '../../src/node-red/checkpoint-barrier';
import { readFileIfPresent, writeFileDurably } from '../../src/node-red/durable-file';

describe('which context store is persistent', () => {
  it('resolves the store as Node-RED does', () => {
    assert.equal(isPersistentStore(undefined, undefined), false);
    assert.equal(isPersistentStore({}, undefined), false);
    assert.equal(isPersistentStore({ default: { module: 'memory' } }, undefined), false);
    assert.equal(isPersistentStore({ default: { module: 'localfilesystem' } }, undefined), true);
    const two = { default: { module: 'memory' }, file: { module: 'localfilesystem' } };
    assert.equal(isPersistentStore(two, 'file'), true);
    assert.equal(isPersistentStore(two, undefined), false);
    // An unknown store falls back to the default one.
    assert.equal(isPersistentStore(two, 'nope'), false);
    // "default" naming another store; no default: the first one listed.
    assert.equal(isPersistentStore({ default: 'file', file: { module: 'localfilesystem' } }, undefined), true);
    assert.equal(
      isPersistentStore({ file: { module: 'localfilesystem' }, mem: { module: 'memory' } }, undefined),
      true,
    );
    // A custom module (an object) is taken as persistent.
    assert.equal(isPersistentStore({ default: { module: { get() {} } } }, undefined), true);
  });

  it('names one file per flow, store and model under the user folder, only for a persistent store', () => {
    const settings = { userDir: '/data', contextStorage: { default: { module: 'localfilesystem' } } };
    assert.equal(
      checkpointFileFor(settings, 'tab1', undefined, 'shuttle'),
      path.join('/data', 'stream-ml', 'checkpoints', 'tab1-default-shuttle.json'),
    );
    const odd = checkpointFileFor(settings, 'tab1', undefined, '../a b/c.d')!;
    assert.equal(path.dirname(odd), path.join('/data', 'stream-ml', 'checkpoints'));
    assert.notEqual(odd, checkpointFileFor(settings, 'tab1', undefined, '../a b/c_d'));
    assert.equal(checkpointFileFor({ ...settings, contextStorage: undefined }, 'tab1', undefined, 'x'), undefined);
    assert.equal(checkpointFileFor({ contextStorage: settings.contextStorage }, 'tab1', undefined, 'x'), undefined);
  });
});

describe('writeFileDurably', () => {
  it('replaces a file whole and leaves no temp file', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-durable-'));
    const file = path.join(folder, 'deeper', 'model.json');
    assert.equal(await readFileIfPresent(file), undefined);
    await writeFileDurably(file, 'one');
    await writeFileDurably(file, 'two');
    assert.equal(await readFileIfPresent(file), 'two');
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['model.json']);
    fs.rmSync(folder, { recursive: true, force: true });
  });
});

describe('CheckpointBarrier', () => {
  function controlledSave() {
    const calls: { resolve: () => void; reject: (e: Error) => void }[] = [];
    const save = () => new Promise<void>((resolve, reject) => calls.push({ resolve, reject }));
    return { calls, save };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  it('calls each done() only after a checkpoint taken after it was held, one checkpoint at a time', async () => {
    const { calls, save } = controlledSave();
    const barrier = new CheckpointBarrier({ save, onError: assert.fail, delayMs: 1, eagerRecords: 3 });
    const done: number[] = [];
    barrier.hold(() => done.push(1), 1);
    barrier.hold(() => done.push(2), 1);
    barrier.hold(() => done.push(3), 1); // 3 records: at once
    assert.equal(calls.length, 1);
    barrier.hold(() => done.push(4), 5); // during the checkpoint: waits for the next
    assert.equal(calls.length, 1);
    assert.deepEqual(done, []);
    calls[0].resolve();
    await tick();
    await tick();
    assert.deepEqual(done, [1, 2, 3]);
    assert.equal(calls.length, 2);
    calls[1].resolve();
    await tick();
    await tick();
    assert.deepEqual(done, [1, 2, 3, 4]);
    assert.equal(barrier.checkpoints, 2);
  });

  it('keeps holding after a failed checkpoint, tries again, and releases all on close', async () => {
    const { calls, save } = controlledSave();
    const errors: string[] = [];
    const barrier = new CheckpointBarrier({
      save,
      onError: (e) => errors.push(e.message),
      delayMs: 1,
      eagerRecords: 1,
      retryMs: 30,
      quietMs: 0,
    });
    const done: number[] = [];
    const durable: boolean[] = [];
    barrier.hold((d) => (done.push(1), durable.push(d)), 1);
    calls[0].reject(new Error('disk full'));
    await tick();
    await tick();
    assert.deepEqual(errors, ['disk full']);
    assert.equal(done.length, 0);
    assert.equal(barrier.waiting, 1);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(calls.length, 2, 'tried again');
    const closing = barrier.close();
    calls[1].reject(new Error('still full'));
    await tick();
    await tick();
    calls[2].reject(new Error('closing'));
    await assert.rejects(closing, /closing/);
    assert.deepEqual(done, [1], 'released on close even so');
    assert.deepEqual(durable, [false], 'and said not to be durable');
    barrier.hold((d) => (done.push(2), durable.push(d)), 1); // after close: at once, and not durable
    assert.deepEqual(done, [1, 2]);
    assert.deepEqual(durable, [false, false]);
  });

  it('on close, waits for messages still on their way, then writes one last checkpoint for them', async () => {
    const saves: number[] = [];
    const barrier = new CheckpointBarrier({
      save: async () => {
        saves.push(Date.now());
      },
      onError: assert.fail,
      delayMs: 10_000, // no checkpoint but the last one
      quietMs: 40,
    });
    const done: number[] = [];
    const durable: boolean[] = [];
    barrier.hold((d) => (done.push(1), durable.push(d)), 1);
    const closing = barrier.close();
    await new Promise((r) => setTimeout(r, 10));
    barrier.hold((d) => (done.push(2), durable.push(d)), 1); // arrives while closing
    await closing;
    assert.deepEqual(done, [1, 2]);
    assert.deepEqual(durable, [true, true]);
    assert.equal(saves.length, 1);
  });
});
