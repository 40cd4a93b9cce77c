// KafkaProducerWorker against the test broker: a large batch size never makes a request over MAX_REQUEST_BYTES,
// so big records queued together go out in several requests, in order, none refused as too large by the broker
// (whose default limit for one partition's batch is 1 MB).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Producer, ProducerBatch } from 'kafkajs';
import { createEncoder } from '../../src/kafka/codecs';
import { KafkaConnection } from '../../src/kafka/connection';
import { KafkaProducerWorker, MAX_REQUEST_BYTES } from '../../src/kafka/producer';
import { kafkaBrokers } from '../support/env';
import { consumeRaw, createTopic } from './support';

test('records queued together beyond MAX_REQUEST_BYTES go out in several requests, in order', async () => {
  const topic = await createTopic('request-size');
  const connection = new KafkaConnection({ brokers: kafkaBrokers(), clientId: 'request-size' });
  const worker = new KafkaProducerWorker(connection, {
    acks: -1,
    compression: 'none',
    lingerMs: 200, // all 40 records are queued before the first request
    batchSize: 500,
    maxQueued: 10_000,
    ackTimeoutMs: 30_000,
    key: createEncoder({ encoding: 'string', part: 'key' }),
    value: createEncoder({ encoding: 'string', part: 'value' }),
  });
  // Spy on the real kafkajs producer: the bytes of each request.
  const requests: number[] = [];
  const producer: Producer = await connection.producerReady();
  const sendBatch = producer.sendBatch.bind(producer);
  producer.sendBatch = (batch: ProducerBatch) => {
    let bytes = 0;
    for (const t of batch.topicMessages ?? []) for (const m of t.messages) bytes += String(m.value).length;
    requests.push(bytes);
    return sendBatch(batch);
  };
  worker.start();
  const value = (n: number): string => `${n}:`.padEnd(100_000, 'x'); // 100 kB each, 4 MB in all
  const outcomes: (Error | undefined)[] = [];
  try {
    for (let n = 0; n < 40; n++) worker.send({ topic, value: value(n) }, (error) => outcomes.push(error));
    const result = await worker.close(30_000);
    assert.deepEqual(result, { notSent: 0 });
  } finally {
    await connection.close();
  }
  assert.deepEqual(
    outcomes.filter((e) => e !== undefined),
    [],
  );
  assert.equal(outcomes.length, 40);
  assert.ok(requests.length >= 5, `${requests.length} requests: ${requests.join(', ')}`);
  for (const bytes of requests) assert.ok(bytes <= MAX_REQUEST_BYTES, `a request of ${bytes} bytes`);
  assert.equal(
    requests.reduce((a, b) => a + b, 0),
    40 * 100_000,
    'each record sent once: none resent one by one after a refusal',
  );
  const raw = await consumeRaw(topic, 40);
  assert.deepEqual(
    raw.map((r) => Number(String(r.value).split(':')[0])),
    Array.from({ length: 40 }, (_, n) => n),
  );
});
