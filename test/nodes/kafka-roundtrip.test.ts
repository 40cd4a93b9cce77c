// Producer node → real broker → consumer node, for every encoding, in per-record and batch output.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import { brokerNode, collect, createTopic, flowNode, loadFlow, useTestRuntime, waitFor } from '../kafka/support';

useTestRuntime();

const AVRO_SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Reading',
  fields: [
    { name: 'sensor', type: 'string' },
    { name: 'value', type: 'double' },
    { name: 'ok', type: 'boolean' },
  ],
});

interface Received {
  payload: unknown;
  topic: string;
  key: unknown;
  kafka: { partition: number; offset: string; timestamp: number; headers: Record<string, string> };
}

async function roundTrip(
  encoding: string,
  values: unknown[],
  extra: Record<string, unknown> = {},
): Promise<{ received: Received[]; topic: string }> {
  const topic = await createTopic(`rt-${encoding}`);
  const common = { broker: 'broker', valueEncoding: encoding, valueSchema: AVRO_SCHEMA, keyEncoding: 'string' };
  await loadFlow([
    brokerNode(),
    { id: 'producer', type: 'stream-ml-kafka-producer', topic, ...common, lingerMs: 2, ...extra, wires: [] },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      topics: topic,
      fromBeginning: 'earliest',
      ...common,
      malformed: 'catch',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ]);
  try {
    const received = collect<Received>('out');
    const producer = flowNode('producer');
    values.forEach((payload, i) =>
      producer.receive({
        payload,
        key: `k${i}`,
        headers: { seq: i, source: 'test' },
        timestamp: 1_700_000_000_000 + i,
      }),
    );
    await waitFor(`${values.length} records back`, () => received.length >= values.length);
    return { received, topic };
  } finally {
    await helper.unload();
  }
}

describe('round trip through the broker', () => {
  test('string', async () => {
    const values = ['alpha', 'βeta ünïcode', '', '{"not":"parsed"}'];
    const { received, topic } = await roundTrip('string', values);
    assert.deepEqual(
      received.map((m) => m.payload),
      values,
    );
    assert.deepEqual(
      received.map((m) => m.key),
      values.map((_, i) => `k${i}`),
    );
    assert.equal(received[0].topic, topic);
    assert.equal(received[1].kafka.headers.seq, '1');
    assert.equal(received[1].kafka.headers.source, 'test');
    assert.equal(received[2].kafka.timestamp, 1_700_000_000_002);
    assert.equal(received[3].kafka.offset, '3');
    assert.equal(received[0].kafka.partition, 0);
  });

  test('JSON', async () => {
    const values = [{ a: 1, b: [1, 2, { c: 'x' }] }, 42, 'text', [true, false, null]];
    const { received } = await roundTrip('json', values);
    assert.deepEqual(
      received.map((m) => m.payload),
      values,
    );
  });

  test('Buffer', async () => {
    const values = [Buffer.from([0, 1, 2, 255, 254]), Buffer.alloc(0), Buffer.from('plain')];
    const { received } = await roundTrip('buffer', values);
    for (const [i, m] of received.entries()) {
      assert.ok(Buffer.isBuffer(m.payload));
      assert.deepEqual(m.payload, values[i]);
    }
  });

  test('Avro with the schema in the node', async () => {
    const values = [
      { sensor: 's1', value: 1.5, ok: true },
      { sensor: 's2', value: -0.25, ok: false },
    ];
    const { received } = await roundTrip('avro', values);
    assert.deepEqual(
      received.map((m) => ({ ...(m.payload as object) })),
      values,
    );
  });

  test('gzip-compressed batches', async () => {
    const values = Array.from({ length: 300 }, (_, i) => ({ i, text: 'repetitive '.repeat(20) }));
    const { received } = await roundTrip('json', values, { compression: 'gzip', lingerMs: 50, batchSize: 100 });
    assert.deepEqual(
      received.map((m) => m.payload),
      values,
    );
  });
});

test('batch output gives arrays of at most batchSize records with their offsets', async () => {
  const topic = await createTopic('rt-batch');
  await loadFlow([
    brokerNode(),
    { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic, valueEncoding: 'json', wires: [] },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: topic,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      output: 'batch',
      batchSize: 7,
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ]);
  const chunks = collect<{ payload: number[]; kafka: { offsets: string[]; count: number } }>('out');
  for (let i = 0; i < 50; i++) flowNode('producer').receive({ payload: i });
  await waitFor('50 records in chunks', () => chunks.reduce((n, c) => n + c.payload.length, 0) >= 50);
  await helper.unload();
  assert.ok(chunks.every((c) => c.payload.length <= 7 && c.payload.length === c.kafka.count));
  assert.deepEqual(
    chunks.flatMap((c) => c.payload),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.deepEqual(
    chunks.flatMap((c) => c.kafka.offsets),
    Array.from({ length: 50 }, (_, i) => String(i)),
  );
});

test('array payload, one record per element: a batch comes back as its records, keys per element, in order', async () => {
  const input = await createTopic('rt-each-in');
  const output = await createTopic('rt-each-out');
  await loadFlow([
    brokerNode(),
    { id: 'source', type: 'stream-ml-kafka-producer', broker: 'broker', topic: input, valueEncoding: 'json' },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: input,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      output: 'batch',
      batchSize: 7,
      wires: [['keys']],
    },
    // The chunk's keys as msg.key: one per element.
    { id: 'keys', type: 'helper', wires: [['producer']] },
    {
      id: 'producer',
      type: 'stream-ml-kafka-producer',
      broker: 'broker',
      topic: output,
      valueEncoding: 'json',
      arrays: 'each',
    },
    {
      id: 'reader',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: output,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ]);
  const keys = flowNode('keys') as unknown as {
    on(event: 'input', fn: (msg: { kafka: { keys: unknown[] }; key?: unknown }) => void): void;
    send(msg: unknown): void;
  };
  keys.on('input', (msg) => keys.send({ ...msg, key: msg.kafka.keys }));
  const received = collect<{ payload: { n: number }; key: string }>('out');
  for (let n = 0; n < 50; n++) flowNode('source').receive({ payload: { n }, key: `k${n}` });
  await waitFor('50 records out', () => received.length >= 50);
  await new Promise((r) => setTimeout(r, 300)); // none more
  await helper.unload();
  assert.equal(received.length, 50);
  assert.deepEqual(
    received.map((r) => r.payload.n),
    Array.from({ length: 50 }, (_, n) => n),
  );
  assert.deepEqual(
    received.map((r) => r.key),
    Array.from({ length: 50 }, (_, n) => `k${n}`),
  );
});
