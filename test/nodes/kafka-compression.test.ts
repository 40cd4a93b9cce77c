// Compressed batches: snappy written by the producer node, and batches the broker itself recompressed with Java's
// gzip and snappy (topic compression.type), read by the consumer node. A codec we lack (lz4) is reported, not a
// crash.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import { nodeRedPath } from '../support/env';
import { brokerNode, collect, flowNode, loadFlow, produceRaw, uniqueName, waitFor, withAdmin } from '../kafka/support';

helper.init(nodeRedPath());

before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));

async function topicWithCompression(type: string): Promise<string> {
  const topic = uniqueName(`compressed-${type}`);
  await withAdmin((admin) =>
    admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'compression.type', value: type }] }],
      waitForLeaders: true,
    }),
  );
  return topic;
}

const records = Array.from({ length: 300 }, (_, i) => ({ i, text: `reading ${i % 10} `.repeat(10) }));

function consumerFlow(topic: string) {
  return [
    brokerNode(),
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: topic,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ];
}

test('snappy batches from the producer node round-trip', async () => {
  const topic = await topicWithCompression('producer'); // the broker keeps the producer's compression
  await loadFlow([
    ...consumerFlow(topic),
    { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic, compression: 'snappy', lingerMs: 20 },
  ]);
  const out = collect<{ payload: unknown }>('out');
  for (const payload of records) flowNode('producer').receive({ payload });
  await waitFor('every record', () => out.length >= records.length);
  await helper.unload();
  assert.deepEqual(
    out.map((m) => m.payload),
    records,
  );
});

for (const type of ['gzip', 'snappy']) {
  test(`batches the broker recompressed with Java's ${type} are read`, async () => {
    const topic = await topicWithCompression(type);
    await produceRaw(
      topic,
      records.map((r) => ({ value: JSON.stringify(r) })),
    );
    await loadFlow(consumerFlow(topic));
    const out = collect<{ payload: unknown }>('out');
    await waitFor('every record', () => out.length >= records.length);
    await helper.unload();
    assert.deepEqual(
      out.map((m) => m.payload),
      records,
    );
  });
}

test('an lz4 topic is reported on the consumer, and nothing crashes', async () => {
  const topic = await topicWithCompression('lz4');
  await produceRaw(topic, [{ value: '{"a":1}' }]);
  await loadFlow(consumerFlow(topic));
  const warnings: string[] = [];
  flowNode('consumer').on('call:warn', (call: never) => warnings.push(String((call as { args: [unknown] }).args[0])));
  await waitFor('a warning naming the codec', () => warnings.some((w) => /LZ4/i.test(w)), 30_000);
  await helper.unload();
  assert.match(warnings.find((w) => /LZ4/i.test(w)) ?? '', /consumer stopped: .*LZ4.*retrying/i);
});
