// A kafkajs produce/consume round trip through the broker that `npm test` started.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaBrokers } from '../support/env';

test('kafkajs round trip through the test broker', async () => {
  const kafka = new Kafka({ clientId: 'round-trip-test', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const topic = `round-trip-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const cluster = await admin.describeCluster();
  assert.equal(cluster.brokers.length, 1);

  const producer = kafka.producer();
  await producer.connect();
  const sent = Array.from({ length: 20 }, (_, i) => ({ key: `k${i % 4}`, value: `value-${i}` }));
  await producer.send({ topic, messages: sent });

  const consumer = kafka.consumer({ groupId: `round-trip-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received: string[] = [];
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        received.push(String(message.value));
        if (received.length === sent.length) resolve();
      },
    });
  });
  await Promise.all([consumer.disconnect(), producer.disconnect(), admin.disconnect()]);
  assert.deepEqual(received.sort(), sent.map((m) => m.value).sort());
});
