// Backpressure from done(), pause/resume from the flow, commits only of finished records, and the producer's
// flush on close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  collect,
  consumerNode,
  consumeRaw,
  createTopic,
  flowNode,
  loadFlow,
  produceRaw,
  type FlowNode,
  uniqueName,
  useTestRuntime,
  waitFor,
} from '../kafka/support';

useTestRuntime();

function consumer(topic: string, groupId: string, extra: Record<string, unknown> = {}): FlowNode {
  return consumerNode(topic, groupId, { wires: [['slow']], ...extra });
}

const values = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ value: JSON.stringify(from + i) }));

test('backpressure: never more than maxInFlight messages in the flow, and all arrive', async () => {
  const topic = await createTopic('backpressure');
  await produceRaw(topic, values(200));
  await loadFlow([
    brokerNode(),
    consumer(topic, uniqueName('bp'), { maxInFlight: 10 }),
    { id: 'slow', type: 'helper' },
  ]);
  let open = 0;
  let most = 0;
  const seen: number[] = [];
  // A node that takes 5 ms per message and says so with done().
  flowNode('slow').on('input', ((msg: { payload: number }, _send: unknown, done: () => void) => {
    open++;
    most = Math.max(most, open);
    seen.push(msg.payload);
    setTimeout(() => {
      open--;
      done();
    }, 5);
  }) as never);
  await waitFor('200 records', () => seen.length >= 200);
  await helper.unload();
  assert.ok(most <= 10, `up to ${most} messages were in the flow at once`);
  assert.ok(most >= 5, `only ${most} at once: the limit was not what held it back`);
  assert.deepEqual(
    seen,
    Array.from({ length: 200 }, (_, i) => i),
  );
});

test('records go to the flow in short bursts: the first node never runs far ahead of the second', async () => {
  // A scorer before a learner judges each record with a model that has learned nearly all before it.
  const topic = await createTopic('bursts');
  await produceRaw(topic, values(3000));
  await loadFlow([
    brokerNode(),
    consumerNode(topic, uniqueName('bursts'), { wires: [['first']] }),
    { id: 'first', type: 'helper', wires: [['second']] },
    { id: 'second', type: 'helper' },
  ]);
  let atFirst = 0;
  let atSecond = 0;
  let mostAhead = 0;
  const seen: number[] = [];
  flowNode('first').on('input', ((msg: object, send: (m: object) => void, done: () => void) => {
    atFirst++;
    mostAhead = Math.max(mostAhead, atFirst - atSecond);
    send(msg);
    done();
  }) as never);
  flowNode('second').on('input', ((msg: { payload: number }, _send: unknown, done: () => void) => {
    atSecond++;
    seen.push(msg.payload);
    done();
  }) as never);
  await waitFor('3,000 records', () => seen.length >= 3000);
  await helper.unload();
  // The default Max in flow is 1,000: handed over at once, the first node would see up to 1,000 before the second.
  assert.ok(mostAhead <= 100, `the first node ran up to ${mostAhead} records ahead of the second`);
  assert.deepEqual(
    seen,
    Array.from({ length: 3000 }, (_, i) => i),
  );
});

test('msg.pause stops delivery, msg.resume continues where it stopped', async () => {
  const topic = await createTopic('pause');
  await loadFlow([
    brokerNode(),
    consumer(topic, uniqueName('pause'), { wires: [['out']] }),
    { id: 'out', type: 'helper' },
  ]);
  const out = collect<{ payload: number }>('out');
  await produceRaw(topic, values(5));
  await waitFor('the first records', () => out.length >= 5);
  flowNode('consumer').receive({ pause: true });
  await produceRaw(topic, values(5, 5));
  await new Promise((r) => setTimeout(r, 2_500));
  const whilePaused = out.length;
  flowNode('consumer').receive({ topic: 'resume' });
  await waitFor('the rest after resume', () => out.length >= 10);
  await helper.unload();
  assert.equal(whilePaused, 5, 'records arrived while paused');
  assert.deepEqual(
    out.map((m) => m.payload),
    Array.from({ length: 10 }, (_, i) => i),
  );
});

test('records the flow has not finished are not committed: the next consumer gets them again', async () => {
  const topic = await createTopic('uncommitted');
  const groupId = uniqueName('uncommitted');
  await produceRaw(topic, values(20));
  await loadFlow([brokerNode(), consumer(topic, groupId, { maxInFlight: 100 }), { id: 'slow', type: 'helper' }]);
  const first: number[] = [];
  // Finishes the first 10 records and holds the rest (done() never called for them).
  flowNode('slow').on('input', ((msg: { payload: number }, _send: unknown, done: () => void) => {
    first.push(msg.payload);
    if (msg.payload < 10) done();
  }) as never);
  await waitFor('all 20 handed over', () => first.length >= 20);
  await new Promise((r) => setTimeout(r, 600)); // a commit interval or two
  await helper.unload();

  await loadFlow([brokerNode(), consumer(topic, groupId, { wires: [['out']] }), { id: 'out', type: 'helper' }]);
  const second = collect<{ payload: number }>('out');
  await waitFor('the unfinished records again', () => second.length >= 10);
  await new Promise((r) => setTimeout(r, 500));
  await helper.unload();
  assert.deepEqual(
    second.map((m) => m.payload),
    Array.from({ length: 10 }, (_, i) => 10 + i),
  );
});

test('on close the producer sends what it has queued before it stops', async () => {
  const topic = await createTopic('flush');
  await loadFlow([
    brokerNode(),
    {
      id: 'producer',
      type: 'stream-ml-kafka-producer',
      broker: 'broker',
      topic,
      valueEncoding: 'json',
      lingerMs: 5_000,
      batchSize: 1_000,
    },
  ]);
  const errors: string[] = [];
  flowNode('producer').on('call:error', (call: never) => errors.push(String((call as { args: [unknown] }).args[0])));
  for (let i = 0; i < 100; i++) flowNode('producer').receive({ payload: i });
  // The linger would hold these 5 s; closing must not wait for it, nor drop them.
  const started = Date.now();
  await helper.unload();
  const closeMs = Date.now() - started;
  const raw = await consumeRaw(topic, 100);
  assert.equal(raw.length, 100);
  assert.deepEqual(errors, []);
  assert.ok(closeMs < 5_000, `close took ${closeMs} ms`);
});
