// The reference of `npm run bench:e2e`: a plain kafkajs consume → produce pipe written as its users would write a
// fast one, run in a process of its own so that its memory and CPU time are measured as the Node-RED process's are.
// Per fetched batch: each value JSON-decoded and encoded again (as the flow's nodes do), one sendBatch with acks all,
// then kafkajs resolves and auto-commits the batch's offsets. Partitions are handled concurrently, so produce
// requests of several partitions are under way at once.
//   node dist/bench/e2e-pipe.js <brokers> <input topic> <output topic> <group id> <partitions>
import { Kafka, logLevel } from 'kafkajs';

async function main(): Promise<void> {
  const [brokers, input, output, groupId, partitions] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'bench-e2e-pipe', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 1_000 });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [input], fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: Number(partitions) || 1,
    eachBatch: async ({ batch }) => {
      const messages = batch.messages.map((m) => ({
        key: m.key,
        value: JSON.stringify(JSON.parse(String(m.value))),
      }));
      await producer.sendBatch({ topicMessages: [{ topic: output, messages }], acks: -1 });
    },
  });
  const stop = (): void => {
    void Promise.allSettled([consumer.disconnect(), producer.disconnect()]).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
