// KafkaProducerWorker's close against the test broker: records that arrive while it flushes are sent with the
// rest, a batch waiting out a long linger goes at once, and a record after the close is refused with a
// ProducerClosedError and counted, its callback called once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEncoder } from '../../src/kafka/codecs';
import { KafkaConnection } from '../../src/kafka/connection';
import { KafkaProducerWorker, ProducerClosedError, type ProducerOptions } from '../../src/kafka/producer';
import { kafkaBrokers } from '../support/env';
import { consumeRaw, createTopic } from './support';

function options(extra: Partial<ProducerOptions> = {}): ProducerOptions {
  return {
    acks: -1,
    compression: 'none',
    lingerMs: 5,
    batchSize: 500,
    maxQueued: 10_000,
    ackTimeoutMs: 30_000,
    key: createEncoder({ encoding: 'string', part: 'key' }),
    value: createEncoder({ encoding: 'json', part: 'value' }),
    ...extra,
  };
}

test('close: records sent while it flushes go out with the queue, and a long linger does not hold them', async () => {
  const topic = await createTopic('worker-close');
  const connection = new KafkaConnection({ brokers: kafkaBrokers(), clientId: 'worker-close' });
  const worker = new KafkaProducerWorker(connection, options({ lingerMs: 60_000, batchSize: 100_000 }));
  worker.start();
  const outcomes: (Error | undefined)[] = [];
  const send = (n: number): void => worker.send({ topic, value: { n } }, (error) => outcomes.push(error));
  try {
    for (let i = 0; i < 100; i++) send(i);
    const closing = worker.close(10_000);
    for (let i = 100; i < 150; i++) send(i);
    const result = await closing;
    assert.deepEqual(result, { notSent: 0 });
    assert.equal(outcomes.length, 150);
    assert.deepEqual(
      outcomes.filter((e) => e !== undefined),
      [],
    );

    // After the close: refused, counted, each callback called once.
    send(150);
    assert.equal(outcomes.length, 151);
    const late = outcomes[150];
    assert.ok(late instanceof ProducerClosedError, String(late));
    assert.match(late.reason, /arrived after the producer had closed/);
    assert.equal(worker.stats.sent, 150);
  } finally {
    await connection.close();
  }
  const raw = await consumeRaw(topic, 150);
  assert.deepEqual(
    raw.map((r) => (JSON.parse(String(r.value)) as { n: number }).n),
    Array.from({ length: 150 }, (_, i) => i),
  );
});

test('close with the connection already closed: every queued record is counted as not sent, with the reason', async () => {
  const topic = await createTopic('worker-close-gone');
  const connection = new KafkaConnection({ brokers: kafkaBrokers(), clientId: 'worker-close-gone' });
  const worker = new KafkaProducerWorker(connection, options({ lingerMs: 60_000, batchSize: 100_000 }));
  worker.start();
  const outcomes: (Error | undefined)[] = [];
  for (let i = 0; i < 10; i++) worker.send({ topic, value: i }, (error) => outcomes.push(error));
  await connection.close();
  const result = await worker.close(5_000);
  assert.equal(result.notSent, 10);
  assert.match(result.reason ?? '', /the Kafka connection was closed/);
  assert.equal(outcomes.length, 10);
  for (const error of outcomes) assert.ok(error instanceof ProducerClosedError, String(error));
});
