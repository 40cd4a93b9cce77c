// Two consumer nodes in one group split a topic's partitions; a redeploy mid-stream loses nothing and leaves no
// partition stalled (every partition's committed offset reaches its end).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  client,
  collect,
  consumerNode,
  createTopic,
  flowNode,
  loadFlow,
  redeploy,
  type FlowNode,
  uniqueName,
  useTestRuntime,
  waitFor,
  withAdmin,
} from '../kafka/support';

useTestRuntime();

interface Rec {
  payload: number;
  kafka: { partition: number };
}

function consumer(id: string, topic: string, groupId: string, extra: Record<string, unknown> = {}): FlowNode {
  return consumerNode(topic, groupId, { id, sessionTimeout: 10_000, wires: [['out']], ...extra });
}

test('two consumer nodes in one group split the partitions between them', async () => {
  const topic = await createTopic('group', 4);
  const groupId = uniqueName('group');
  await loadFlow([
    brokerNode(),
    consumer('c1', topic, groupId, { wires: [['out1']] }),
    consumer('c2', topic, groupId, { wires: [['out2']] }),
    { id: 'out1', type: 'helper' },
    { id: 'out2', type: 'helper' },
  ]);
  const got1 = collect<Rec>('out1');
  const got2 = collect<Rec>('out2');
  const producer = client().producer();
  await producer.connect();
  const total = 400;
  // Both must have joined before the records flow, or the first one takes everything.
  await new Promise((r) => setTimeout(r, 3_000));
  for (let i = 0; i < total; i += 50) {
    await producer.send({
      topic,
      messages: Array.from({ length: 50 }, (_, j) => ({ partition: (i + j) % 4, value: JSON.stringify(i + j) })),
    });
  }
  await producer.disconnect();
  await waitFor('every record', () => got1.length + got2.length >= total);
  await helper.unload();
  const parts1 = new Set(got1.map((m) => m.kafka.partition));
  const parts2 = new Set(got2.map((m) => m.kafka.partition));
  assert.ok(got1.length > 0 && got2.length > 0, `split ${got1.length}/${got2.length}`);
  assert.equal([...parts1].filter((p) => parts2.has(p)).length, 0, 'a partition went to both');
  assert.equal(parts1.size + parts2.size, 4);
  assert.deepEqual(
    [...got1, ...got2].map((m) => m.payload).sort((a, b) => a - b),
    Array.from({ length: total }, (_, i) => i),
  );
});

test('redeploy mid-stream: no record lost, no partition stalled', async () => {
  const topic = await createTopic('redeploy', 3);
  const groupId = uniqueName('redeploy');
  const flow = (name: string): FlowNode[] => [
    brokerNode(),
    consumer('c1', topic, groupId, { name }),
    { id: 'out', type: 'helper' },
  ];
  await loadFlow(flow('first'));
  const seen: number[] = [];
  // A deploy may recreate the helper node: listen to each new one once.
  const listening = new Set<unknown>();
  const listen = (): void => {
    if (listening.has(flowNode('out'))) return;
    listening.add(flowNode('out'));
    flowNode('out').on('input', (msg: never) => seen.push((msg as Rec).payload));
  };
  listen();
  const producer = client().producer();
  await producer.connect();
  const total = 3_000;
  let sent = 0;
  const producing = (async () => {
    // Bounded: `total` records in batches of 50, a few ms apart.
    while (sent < total) {
      await producer.send({
        topic,
        messages: Array.from({ length: 50 }, (_, j) => ({ partition: (sent + j) % 3, value: String(sent + j) })),
      });
      sent += 50;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  for (let round = 0; round < 3; round++) {
    await waitFor('records flowing', () => seen.length > (round + 1) * 300);
    await redeploy(flow(`redeploy ${round}`));
    listen();
  }
  await producing;
  await producer.disconnect();
  await waitFor('every record', () => new Set(seen).size >= total, 60_000);
  const committedAll = async (): Promise<boolean> => {
    const [ends, committed] = await withAdmin(async (admin) => [
      await admin.fetchTopicOffsets(topic),
      (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions,
    ]);
    return ends.every((e) => committed.find((c) => c.partition === e.partition)?.offset === e.offset);
  };
  const deadline = Date.now() + 20_000;
  let allCommitted = false;
  while (!allCommitted && Date.now() < deadline) {
    allCommitted = await committedAll();
    if (!allCommitted) await new Promise((r) => setTimeout(r, 250));
  }
  await helper.unload();
  const duplicates = seen.length - new Set(seen).size;
  console.log(`redeploy: ${total} records, ${seen.length} deliveries, ${duplicates} duplicates over 3 redeploys`);
  assert.deepEqual(
    [...new Set(seen)].sort((a, b) => a - b),
    Array.from({ length: total }, (_, i) => i),
  );
  assert.ok(allCommitted, 'a partition was left behind: its committed offset never reached the end');
});
