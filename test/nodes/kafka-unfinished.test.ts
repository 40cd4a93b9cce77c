// A producer that closes with records it could not send must not let the consumer upstream commit them: under
// every failure policy they are delivered again, on the next start or, if the consumer runs on, a second later.
// The producer's broker is unreachable, so every record waits in its queue until the close fails it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  catchNodeModule,
  collect,
  consumerNode,
  committedOffsets,
  consumeRaw,
  createTopic,
  flowNode,
  type FlowNode,
  loadFlow,
  produceRaw,
  redeploy,
  uniqueName,
  useTestRuntime,
  waitFor,
} from '../kafka/support';
import { freePort } from '../support/node-red-process';

useTestRuntime();
// The producer flushes within the close timeout less 3 s (at least 500 ms): a short one keeps the test short.
helper.settings({ nodeCloseTimeout: 3_000 } as never);

const RECORDS = 40;

async function inputTopic(prefix: string): Promise<string> {
  const topic = await createTopic(prefix);
  await produceRaw(
    topic,
    Array.from({ length: RECORDS }, (_, n) => ({ value: JSON.stringify({ n }) })),
  );
  return topic;
}

function consumer(topic: string, groupId: string, extra: Record<string, unknown> = {}): FlowNode {
  return consumerNode(topic, groupId, { sessionTimeout: 6_000, commitInterval: 100, wires: [['producer']], ...extra });
}

async function unreachableBroker(): Promise<FlowNode> {
  const port = await freePort(); // nothing listens there
  return brokerNode('nowhere', { brokers: `127.0.0.1:${port}`, connectionTimeout: 500, reconnectMaxDelay: 500 });
}

function producerNode(broker: string, topic: string): FlowNode {
  return { id: 'producer', type: 'stream-ml-kafka-producer', broker, topic, valueEncoding: 'json' };
}

const numbers = (records: { value: Buffer | null }[]): number[] =>
  records.map((r) => (JSON.parse(String(r.value)) as { n: number }).n).sort((a, b) => a - b);

for (const policy of ['commit', 'retry', 'pause'] as const) {
  test(`on failure "${policy}": records a closing producer did not send are not committed, and come again`, async (t) => {
    const input = await inputTopic(`unfinished-${policy}`);
    const output = await createTopic(`unfinished-${policy}-out`);
    const groupId = uniqueName('unfinished');
    const options = policy === 'retry' ? { onFailure: 'retry', retries: 1, deadLetterTopic: `${output}-dlt` } : {};
    await loadFlow([
      brokerNode(),
      await unreachableBroker(),
      consumer(input, groupId, { onFailure: policy, ...options }),
      producerNode('nowhere', output),
    ]);
    let reached = 0;
    flowNode('producer').on('input', () => reached++);
    await waitFor('every record at the producer', () => reached === RECORDS);
    await new Promise((r) => setTimeout(r, 300)); // a few commit intervals
    await redeploy([]); // stops both nodes, the producer with its whole queue unsent
    await helper.unload();
    const committed = await committedOffsets(groupId, input);
    t.diagnostic(`committed after the close: ${JSON.stringify(committed)}`);
    assert.ok(Number(committed[0] ?? -1) <= 0, `committed ${committed[0]}: records not sent were committed`);

    // Started again with a reachable producer: every record arrives, none was lost to the commit.
    await loadFlow([brokerNode(), consumer(input, groupId), producerNode('broker', output)]);
    const out = await consumeRaw(output, RECORDS);
    await helper.unload();
    assert.deepEqual(
      numbers(out),
      Array.from({ length: RECORDS }, (_, n) => n),
    );
  });
}

test('a redeploy of the producer alone: the consumer runs on and delivers its unsent records again', async () => {
  const input = await inputTopic('unfinished-redeploy');
  const output = await createTopic('unfinished-redeploy-out');
  const groupId = uniqueName('unfinished-redeploy');
  const consumerDef = consumer(input, groupId);
  await loadFlow([brokerNode(), await unreachableBroker(), consumerDef, producerNode('nowhere', output)]);
  let reached = 0;
  flowNode('producer').on('input', () => reached++);
  await waitFor('every record at the producer', () => reached === RECORDS);
  const before = flowNode('consumer');
  // The editor's "modified nodes" deploy: only the producer changes, now to the reachable broker.
  await redeploy([brokerNode(), consumerDef, producerNode('broker', output)]);
  assert.equal(flowNode('consumer'), before, 'the consumer was not restarted');
  const seen = collect<unknown>('producer');
  const out = await consumeRaw(output, RECORDS);
  await waitFor('offsets committed', () => seen.length >= RECORDS);
  await helper.unload();
  assert.deepEqual(
    numbers(out),
    Array.from({ length: RECORDS }, (_, n) => n),
  );
  const committed = await committedOffsets(groupId, input);
  assert.equal(committed[0], String(RECORDS));
});

// A node of someone else's that passes each message on a moment later, also once it is closing (as a node with its
// own timer or request can): what it sends then goes to a node the runtime has already stopped.
function relayModule(RED: {
  nodes: { createNode(n: unknown, c: unknown): void; registerType(t: string, c: unknown): void };
}) {
  function Relay(this: TestNodeLike, config: unknown) {
    RED.nodes.createNode(this, config);
    this.on('input', (msg: unknown, send: (m: unknown) => void, done: () => void) => {
      setTimeout(() => {
        send(msg);
        done();
      }, 300);
    });
  }
  RED.nodes.registerType('test-late-relay', Relay);
}
type TestNodeLike = { on(event: string, handler: (...args: never[]) => void): void };

// A node that fails every message with done(error), as a node rejecting a bad record does.
function failModule(RED: {
  nodes: { createNode(n: unknown, c: unknown): void; registerType(t: string, c: unknown): void };
}) {
  function Fail(this: TestNodeLike, config: unknown) {
    RED.nodes.createNode(this, config);
    this.on('input', (_msg: unknown, _send: unknown, done: (error?: Error) => void) => done(new Error('bad record')));
  }
  RED.nodes.registerType('test-fail', Fail);
}

test('a message sent on to a node a full stop had already stopped is not committed, and comes again', async (t) => {
  const input = await inputTopic('unfinished-late');
  const groupId = uniqueName('unfinished-late');
  const flow = [
    brokerNode(),
    consumer(input, groupId, { wires: [['relay']] }),
    { id: 'relay', type: 'test-late-relay', wires: [['sink']] },
    { id: 'sink', type: 'helper' },
  ];
  await loadFlow(flow, undefined, [relayModule]);
  let atRelay = 0;
  flowNode('relay').on('input', () => atRelay++);
  await waitFor('every record at the relay', () => atRelay === RECORDS);
  // Stops every node at once, while the relay still holds every record: its sends reach no node.
  await helper.unload();
  const committed = await committedOffsets(groupId, input);
  t.diagnostic(`committed after the stop: ${JSON.stringify(committed)}`);
  assert.ok(
    Number(committed[0] ?? -1) <= 0,
    `committed ${committed[0]}: records whose messages were lost were committed`,
  );

  // The next start delivers them again, and this time the relay's sends reach the sink.
  await loadFlow(flow, undefined, [relayModule]);
  const seen = collect<{ payload: { n: number } }>('sink');
  await waitFor('every record at the sink', () => seen.length >= RECORDS);
  await helper.unload();
  assert.deepEqual(
    seen.map((m) => m.payload.n).sort((a, b) => a - b),
    Array.from({ length: RECORDS }, (_, n) => n),
  );
});

test('a record failed into a Catch node is finished only once the nodes after the Catch are done with it', async (t) => {
  const input = await inputTopic('unfinished-catch');
  const groupId = uniqueName('unfinished-catch');
  // The default failure policy, count and commit: the record is committed once the flow is done with it, and the
  // flow is not done while the error path holds it.
  const flow = [
    brokerNode(),
    consumer(input, groupId, { wires: [['fail']] }),
    { id: 'fail', type: 'test-fail', wires: [] },
    { id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['relay']] },
    { id: 'relay', type: 'test-late-relay', wires: [['sink']] },
    { id: 'sink', type: 'helper' },
  ];
  const modules = [relayModule, failModule, catchNodeModule()];
  await loadFlow(flow, undefined, modules);
  let atRelay = 0;
  flowNode('relay').on('input', () => atRelay++);
  await waitFor('every record caught and at the relay', () => atRelay === RECORDS);
  await helper.unload(); // the relay still holds every record: its sends reach no node
  const committed = await committedOffsets(groupId, input);
  t.diagnostic(`committed after the stop: ${JSON.stringify(committed)}`);
  assert.ok(Number(committed[0] ?? -1) <= 0, `committed ${committed[0]} before the error path was done with them`);

  await loadFlow(flow, undefined, modules);
  const seen = collect<{ payload: { n: number }; error: { message: string } }>('sink');
  await waitFor('every record through the error path', () => seen.length >= RECORDS);
  await new Promise((r) => setTimeout(r, 500)); // a few commit intervals
  await helper.unload();
  for (const m of seen) assert.match(m.error.message, /bad record/);
  assert.deepEqual(
    seen.map((m) => m.payload.n).sort((a, b) => a - b),
    Array.from({ length: RECORDS }, (_, n) => n),
  );
  const after = await committedOffsets(groupId, input);
  assert.equal(after[0], String(RECORDS), 'committed once the error path was done');
});
