// The pure part of fleet learning per key (KeyedFleet, without the topic): members that each learn part of every
// key's records, behind a KeyedModels whose live cap keeps evicting keys, and exchange their contributions as the
// compacted model topic would, serve per key the model of that key's records alone; a restarted member takes its
// own per key from the topic; a new member skips the positions the others' contributions cover.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createModel, type DataRecord, type Model, type ModelOptions } from '../../src/engine';
import { RecentSources } from '../../src/node-red/fleet-sharing';
import { KeyedFleet, parseTopicKey, topicKeyOf } from '../../src/node-red/keyed-fleet-sharing';
import { KeyedModels } from '../../src/node-red/keyed-models';
import type { FlowContext } from '../../src/node-red/model-registry';
import { assertSameStatistics } from '../support/same-statistics';

const OPTIONS: ModelOptions = {
  attributes: [
    { name: 'a', type: 'C' },
    { name: 'b', type: 'C' },
  ],
};
const KEYS = ['k1', 'k2', 'k3', 'k4'];
const context: FlowContext = {
  get: (_key, _store, callback) => callback(null, undefined),
  set: (_key, _value, _store, callback) => callback(),
};

interface Record_ {
  key: string;
  source: string;
  position: number;
  record: DataRecord;
}

/** Deterministic records of every key in runs of 10, spread over three sources (partitions), positions in order. */
function stream(n: number): Record_[] {
  let s = 5;
  const next = (): number => (s = (s * 16807) % 2147483647) / 2147483647;
  const positions = [0, 0, 0];
  let k = 0;
  return Array.from({ length: n }, (_, i) => {
    if (i % 10 === 0) k = Math.floor(next() * KEYS.length);
    const p = Math.floor(next() * 3);
    return {
      key: KEYS[k],
      source: `in/${p}`,
      position: positions[p]++,
      record: { a: k * 10 + next(), b: k - next() * 2 },
    };
  });
}

/** A member: its KeyedFleet behind a KeyedModels with a live cap of `maxLive`, as the keyed learner has them. */
function member(name: string, maxLive: number): { fleet: KeyedFleet; models: KeyedModels; warnings: string[] } {
  const warnings: string[] = [];
  const fleet = new KeyedFleet({ modelName: 'm', member: name, warn: (w) => warnings.push(w) });
  const models = new KeyedModels(`test/${name}`, 'flow', 'm', undefined, context, undefined);
  models.maxLive = maxLive;
  models.factory = () => createModel(OPTIONS);
  models.backing = fleet;
  fleet.markStarted();
  return { fleet, models, warnings };
}

/** The compacted topic: the latest value per record key, in the order written. */
class Topic {
  readonly latest = new Map<string, Buffer>();
  readers: KeyedFleet[] = [];
  publish(from: KeyedFleet): number {
    const outgoing = from.outgoing();
    if (!outgoing) return 0;
    for (const m of outgoing.messages) {
      this.latest.delete(m.key);
      this.latest.set(m.key, m.value);
      for (const reader of this.readers) reader.receive(m.key, m.value);
    }
    outgoing.published();
    return outgoing.messages.length;
  }
}

/** Learns one record as the keyed learner does: the key's slot, then through its fleet model. */
function learn(m: ReturnType<typeof member>, r: Record_): boolean {
  m.models.slot(r.key, true);
  const fleet = m.fleet.fleetOf(r.key)!;
  if (fleet.covers(r.source, r.position)) return false;
  fleet.advance(r.source, r.position);
  fleet.learnOne({ ...r.record });
  return true;
}

function reference(records: Record_[], key: string): Model {
  const model = createModel(OPTIONS);
  for (const r of records) if (r.key === key) model.learnOne({ ...r.record });
  return model;
}

function ownRecords(m: ReturnType<typeof member>, key: string): number {
  const view = m.fleet.describe(key) as { members: { own: boolean; records: number }[] };
  return view.members.find((x) => x.own)!.records;
}

test('record keys of per-key contributions; unkeyed contributions and other models are not taken', () => {
  const key = topicKeyOf('m', 'gw-1', 'pump "7"');
  assert.deepEqual(parseTopicKey(key, 'm'), ['gw-1', 'pump "7"']);
  assert.equal(parseTopicKey(key, 'other'), undefined);
  assert.equal(parseTopicKey(JSON.stringify(['m', 'gw-1']), 'm'), undefined);
  assert.equal(parseTopicKey('not json', 'm'), undefined);
});

test('three members with a live cap of 1 serve each key exactly; own records add up; changed keys only', () => {
  const records = stream(1_500);
  const topic = new Topic();
  const members = ['gw-1', 'gw-2', 'gw-3'].map((name) => member(name, 1));
  topic.readers = members.map((m) => m.fleet);
  // Each member learns a partition: every key's records are spread over all three.
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const m = members[Number(r.source.slice(3))];
    assert.ok(learn(m, r));
    if (i % 97 === 0) for (const x of members) topic.publish(x.fleet);
    if (i % 193 === 0) for (const x of members) x.fleet.merge((key, model) => x.models.replaceLive(key, model));
  }
  for (const x of members) topic.publish(x.fleet);
  // Nothing changed since: nothing to publish.
  for (const x of members) assert.equal(topic.publish(x.fleet), 0);
  for (const x of members) x.fleet.merge((key, model) => x.models.replaceLive(key, model));
  for (const key of KEYS) {
    const expected = reference(records, key);
    let own = 0;
    for (const [i, x] of members.entries()) {
      assert.ok(x.models.liveCount <= 1);
      const served = x.models.modelOf(key)!;
      assert.equal(served.recordsLearned, expected.recordsLearned, `gw-${i + 1} ${key}`);
      assertSameStatistics(served.statistics(), expected.statistics(), `gw-${i + 1} ${key}`);
      own += ownRecords(x, key);
    }
    assert.equal(own, expected.recordsLearned, `${key}: own records add up`);
  }
  const counts = members[0].fleet.counts();
  assert.equal(counts.keys, KEYS.length);
  // Others' contributions of every key, and own of the keys not live.
  assert.equal(counts.heldContributions, KEYS.length * 3 - counts.liveKeys);
  assert.ok(counts.heldBytes > 0);
  assert.deepEqual(counts.members.sort(), ['gw-1', 'gw-2', 'gw-3']);
});

test('a restarted member takes its own per key from the topic; a new member skips what the others learned', () => {
  const records = stream(1_200);
  const topic = new Topic();
  const a = member('gw-1', 2);
  const b = member('gw-2', 2);
  topic.readers = [a.fleet, b.fleet];
  for (const r of records) learn(r.source === 'in/0' ? a : b, r);
  topic.publish(a.fleet);
  topic.publish(b.fleet);
  const before = KEYS.map((key) => ownRecords(a, key));

  // gw-1 again, reading the topic from its start: its own per key, and gw-2's.
  const again = member('gw-1', 2);
  const fresh = new KeyedFleet({ modelName: 'm', member: 'gw-1', warn: () => undefined });
  for (const [key, value] of topic.latest) fresh.receive(key, value);
  fresh.markStarted();
  again.models.backing = fresh;
  const restarted = { ...again, fleet: fresh };
  assert.deepEqual(
    KEYS.map((key) => ownRecords(restarted, key)),
    before,
  );
  // A replay of gw-1's records is skipped per key, and gw-2's partitions' records are covered too.
  for (const r of records) assert.equal(learn(restarted, r), false, `${r.key} ${r.source}:${r.position}`);
  for (const key of KEYS)
    assertSameStatistics(
      restarted.models.modelOf(key)!.statistics(),
      reference(records, key).statistics(),
      `restarted ${key}`,
    );
});

test('a contribution with another attribute table is refused, counted, and warned about once', () => {
  const a = member('gw-1', 4);
  const other = new KeyedFleet({ modelName: 'm', member: 'gw-9', warn: () => undefined });
  const otherModels = new KeyedModels('test/gw-9', 'flow', 'm', undefined, context, undefined);
  otherModels.factory = () => createModel({ attributes: [{ name: 'z', type: 'C' }] });
  otherModels.backing = other;
  other.markStarted();
  for (const key of KEYS) {
    otherModels.slot(key, true);
    const fleet = other.fleetOf(key)!;
    fleet.advance('in/0', 1);
    fleet.learnOne({ z: 1 });
  }
  for (const m of other.outgoing()!.messages) a.fleet.receive(m.key, m.value);
  for (const key of KEYS) a.models.slot(key, true);
  a.fleet.merge(() => undefined);
  const counts = a.fleet.counts();
  assert.equal(counts.refused, KEYS.length);
  assert.match(counts.lastRefusal ?? '', /another attribute schema/);
  assert.equal(a.warnings.length, 1);
  for (const key of KEYS) assert.equal(a.models.modelOf(key)!.recordsLearned, 0);
});

test('many keys: the live cap holds, every key not live is held deflated, each still exact', () => {
  const KEY_COUNT = 200;
  const topic = new Topic();
  const a = member('gw-1', 10);
  const b = member('gw-2', 10);
  topic.readers = [a.fleet, b.fleet];
  const all: Record_[] = [];
  for (let i = 0; i < KEY_COUNT * 10; i++) {
    const key = `m${i % KEY_COUNT}`;
    const r: Record_ = {
      key,
      source: `in/${Math.floor(i / KEY_COUNT) % 2}`,
      position: i,
      record: { a: (i % KEY_COUNT) + (i % 7) / 7, b: i % 3 },
    };
    all.push(r);
    learn(r.source === 'in/0' ? a : b, r);
    if (i % 500 === 499) {
      topic.publish(a.fleet);
      topic.publish(b.fleet);
    }
  }
  topic.publish(a.fleet);
  topic.publish(b.fleet);
  for (const m of [a, b]) {
    m.fleet.merge((key, model) => m.models.replaceLive(key, model));
    assert.ok(m.models.liveCount <= 10);
    const counts = m.fleet.counts();
    assert.equal(counts.keys, KEY_COUNT);
    // The other's contribution of every key, and own of every key not live.
    assert.equal(counts.heldContributions, 2 * KEY_COUNT - counts.liveKeys);
    console.log(
      `${counts.heldContributions} contributions held in ${(counts.heldBytes / 1024).toFixed(0)} KiB: ` +
        `${(counts.heldBytes / counts.heldContributions / 1024).toFixed(1)} KiB each (auto, 2 attributes, 10 records a key)`,
    );
  }
  for (const key of ['m0', 'm17', `m${KEY_COUNT - 1}`]) {
    const expected = createModel(OPTIONS);
    for (const r of all) if (r.key === key) expected.learnOne({ ...r.record });
    for (const m of [a, b]) assertSameStatistics(m.models.modelOf(key)!.statistics(), expected.statistics(), key);
  }
});

test('a source counts as read recently for a second after each read, per source', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const recent = new RecentSources();
  assert.equal(recent.readRecently('t/0'), false, 'never read: sync first');
  assert.equal(recent.readRecently('t/0'), true);
  assert.equal(recent.readRecently('t/1'), false, 'another partition has its own time');
  t.mock.timers.tick(999);
  assert.equal(recent.readRecently('t/0'), true);
  t.mock.timers.tick(1_000);
  assert.equal(recent.readRecently('t/0'), false, 'not read for a second: it may have been another member’s');
});
