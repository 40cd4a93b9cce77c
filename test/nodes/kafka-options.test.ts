// Consumer and producer options: start from latest, topic patterns, topic/partition/key from the message, bad
// input, and the status line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  collect,
  consumeRaw,
  createTopic,
  flowNode,
  loadFlow,
  logged,
  produceRaw,
  uniqueName,
  useTestRuntime,
  waitFor,
} from '../kafka/support';

useTestRuntime();

function statusTexts(id: string): string[] {
  const texts: string[] = [];
  flowNode(id).on('call:status', (call: never) =>
    texts.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  return texts;
}

test('start from latest skips what was there before the group joined; status shows rate and lag', async () => {
  const topic = await createTopic('latest');
  await produceRaw(topic, [{ value: '"old-1"' }, { value: '"old-2"' }]);
  await loadFlow([
    brokerNode(),
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: topic,
      groupId: uniqueName('latest'),
      fromBeginning: 'latest',
      valueEncoding: 'json',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ]);
  const statuses = statusTexts('consumer');
  const out = collect<{ payload: string }>('out');
  await waitFor('the group joined', () => statuses.some((s) => /rec\/s · lag \d+/.test(s)), 20_000);
  await produceRaw(topic, [{ value: '"new-1"' }, { value: '"new-2"' }]);
  await waitFor('the new records', () => out.length >= 2);
  await new Promise((r) => setTimeout(r, 300));
  await helper.unload();
  assert.deepEqual(
    out.map((m) => m.payload),
    ['new-1', 'new-2'],
  );
});

test('a topic pattern subscribes to every matching topic', async () => {
  const prefix = uniqueName('pattern');
  const topics = [`${prefix}-a`, `${prefix}-b`];
  for (const t of topics) await produceRaw(t, [{ value: JSON.stringify(t) }]);
  await loadFlow([
    brokerNode(),
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: `^${prefix}-[ab]$`,
      topicsAreRegex: true,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ]);
  const out = collect<{ payload: string; topic: string }>('out');
  await waitFor('a record from each topic', () => out.length >= 2);
  await helper.unload();
  assert.deepEqual(out.map((m) => m.topic).sort(), topics);
  assert.deepEqual(out.map((m) => m.payload).sort(), topics);
});

test('producer: msg.topic, msg.partition and msg.key are used; bad ones fail that message only', async () => {
  const topic = await createTopic('msg-fields', 3);
  await loadFlow([
    brokerNode(),
    { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic: '', valueEncoding: 'string' },
  ]);
  const errors: string[] = [];
  flowNode('producer').on('call:error', (call: never) => errors.push(String((call as { args: [unknown] }).args[0])));
  const producer = flowNode('producer');
  producer.receive({ topic, partition: 2, key: 'k-2', payload: 'to partition 2' });
  producer.receive({ topic, partition: 'x', payload: 'bad partition' });
  producer.receive({ payload: 'no topic' });
  producer.receive({ topic, partition: 0, payload: 'to partition 0', headers: { n: 1, b: Buffer.from('raw') } });
  await waitFor('two errors', () => errors.length >= 2);
  await helper.unload();
  const raw = await consumeRaw(topic, 2);
  const byPartition = new Map(raw.map((r) => [r.partition, r]));
  assert.equal(byPartition.get(2)?.value?.toString(), 'to partition 2');
  assert.equal(byPartition.get(2)?.key?.toString(), 'k-2');
  assert.equal(byPartition.get(0)?.value?.toString(), 'to partition 0');
  assert.equal(String(byPartition.get(0)?.headers.n), '1');
  assert.equal(String(byPartition.get(0)?.headers.b), 'raw');
  assert.equal(raw.length, 2);
  assert.ok(errors.some((e) => /msg.partition must be a partition number/.test(e)));
  assert.ok(errors.some((e) => /no topic/.test(e)));
});

test('producer: a compression it cannot write (zstd) is an error at the node, not a silent fallback', async () => {
  await loadFlow([
    brokerNode(),
    { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic: 't', compression: 'zstd' },
  ]);
  const errors = logged('producer', 'error');
  assert.ok(
    errors.some((e) => /compression "zstd" cannot be written; use none, gzip, snappy, lz4/.test(e)),
    errors.join('\n'),
  );
  await helper.unload();
});
