// Closing the producer node while records stream in (a redeploy that removes it, Node-RED stopped with Ctrl-C):
// every record that reached the node is either in the topic or counted in one warning, and nothing is logged as
// an error, neither by the node nor from inside kafkajs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  brokers,
  consumeRaw,
  createTopic,
  flowNode,
  loadFlow,
  redeploy,
  useTestRuntime,
  waitFor,
  withAdmin,
} from '../kafka/support';
import { freePort, prepareUserFolder, startNodeRed, type NodeRedProcess } from '../support/node-red-process';

useTestRuntime();
// A short close timeout keeps the unreachable-broker case short; the producer flushes within it less 3 s.
helper.settings({ nodeCloseTimeout: 5_000 } as never);

const NOT_SENT = /^closed with (\d+) records? not sent: (.+)$/;

/** What the node logged through node.error and node.warn, as text. */
function watchLog(id: string): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const text = (call: never): string => String((call as { args: [unknown] }).args[0]);
  flowNode(id).on('call:error', (call: never) => errors.push(text(call)));
  flowNode(id).on('call:warn', (call: never) => warnings.push(text(call)));
  return { errors, warnings };
}

function notSentIn(warnings: string[]): number {
  return warnings.reduce((sum, w) => sum + Number(NOT_SENT.exec(w)?.[1] ?? 0), 0);
}

async function topicSize(topic: string): Promise<number> {
  const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

test('a redeploy removing the producer mid-stream: every record is in the topic or counted, no error', async (t) => {
  const topic = await createTopic('close-mid-stream');
  await loadFlow([
    brokerNode(),
    { id: 'source', type: 'helper', wires: [['producer']] },
    // A long linger keeps the records queued until the close, which sends them at once.
    {
      id: 'producer',
      type: 'stream-ml-kafka-producer',
      broker: 'broker',
      topic,
      valueEncoding: 'json',
      lingerMs: 60_000,
      batchSize: 100_000,
    },
  ]);
  const log = watchLog('producer');
  let received = 0;
  flowNode('producer').on('input', () => received++);
  const source = flowNode('source') as unknown as { send(msg: object): void };
  // A steady stream through the flow, as from a rate-limited replay. The redeploy starts right after a send, so
  // records the runtime has already routed reach the producer while it closes.
  let next = 0;
  let closing: Promise<void> | undefined;
  const feeder = setInterval(() => {
    for (let i = 0; i < 5; i++) source.send({ payload: { n: next++ } });
    if (!closing && received >= 500) closing = redeploy([brokerNode()]);
  }, 2);
  try {
    await waitFor('the redeploy', () => closing !== undefined);
    await closing;
  } finally {
    clearInterval(feeder);
  }
  await new Promise((r) => setTimeout(r, 200));
  const notSent = notSentIn(log.warnings);
  const raw = await consumeRaw(topic, received - notSent);
  await helper.unload();
  t.diagnostic(`${received} records reached the producer, ${raw.length} in the topic, ${notSent} reported not sent`);
  assert.deepEqual(log.errors, []);
  assert.ok(received > 500, `only ${received} records reached the producer`);
  assert.equal(raw.length + notSent, received, `${raw.length} in the topic, ${notSent} reported not sent`);
  const values = raw.map((r) => (JSON.parse(String(r.value)) as { n: number }).n);
  assert.equal(new Set(values).size, values.length, 'a record was sent twice');
});

test('closing with the broker unreachable: one warning counts the records not sent, no error per record', async (t) => {
  const port = await freePort(); // nothing listens there
  await loadFlow([
    brokerNode('broker', { brokers: `127.0.0.1:${port}`, connectionTimeout: 500, reconnectMaxDelay: 500 }),
    { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic: 'never', valueEncoding: 'json' },
  ]);
  const log = watchLog('producer');
  for (let i = 0; i < 20; i++) flowNode('producer').receive({ payload: i });
  await new Promise((r) => setTimeout(r, 300));
  // A deploy that removes the nodes (the helper's unload would stop watching node.warn before closing them).
  await redeploy([]);
  await new Promise((r) => setTimeout(r, 200));
  await helper.unload();
  t.diagnostic(log.warnings.join(' | '));
  assert.deepEqual(log.errors, []);
  const counted = log.warnings.filter((w) => NOT_SENT.test(w));
  assert.equal(counted.length, 1, log.warnings.join('\n'));
  assert.equal(notSentIn(counted), 20);
});

// Ctrl-C, as in the demo: Node-RED stops all nodes at once, the source of the stream among them.
const folders: string[] = [];
let nodeRed: NodeRedProcess | undefined;
after(async () => {
  await nodeRed?.stop();
  for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true });
});

test('node-red stopped with SIGINT mid-stream: every record sent is in the topic or counted, no [error]', async (t) => {
  const topic = await createTopic('close-sigint');
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-close-'));
  folders.push(userDir);
  const flows = [
    { id: 'tab', type: 'tab', label: 'close test' },
    { id: 'broker', type: 'stream-ml-kafka-broker', name: 'test broker', brokers: brokers(), clientId: 'close' },
    { id: 'start', type: 'inject', z: 'tab', once: true, onceDelay: 0.1, repeat: '', wires: [['source']] },
    {
      id: 'source',
      type: 'function',
      z: 'tab',
      name: 'stream',
      // A record per pass, and a message back to itself for the next pass (a busy loop, for the few seconds of the
      // test): the runtime delivers both in the next turn of the event loop, so whenever Node-RED stops, a record
      // is on its way to the producer. On stop it says how many it sent.
      func: "const n = context.get('n') || 0;\ncontext.set('n', n + 1);\nreturn [{ payload: { n } }, { loop: true }];",
      finalize: "node.warn('records sent: ' + (context.get('n') || 0));",
      outputs: 2,
      wires: [['producer'], ['source']],
    },
    { id: 'producer', type: 'stream-ml-kafka-producer', z: 'tab', broker: 'broker', topic, valueEncoding: 'json' },
  ];
  prepareUserFolder(userDir, { flowFile: 'flows.json', logging: { console: { level: 'info' } } }, flows);
  nodeRed = await startNodeRed(userDir);
  let size = 0;
  for (let i = 0; i < 300 && size < 1000; i++) {
    await new Promise((r) => setTimeout(r, 100));
    size = await topicSize(topic);
  }
  assert.ok(size >= 1000, `only ${size} records reached the topic before the stop`);
  await nodeRed.stop();
  const output = nodeRed.output();
  nodeRed = undefined;
  const sent = Number(/records sent: (\d+)/.exec(output)?.[1]);
  assert.ok(sent > 0, output);
  const notSent = output
    .split('\n')
    .map((line) => /\[stream-ml-kafka-producer:[^\]]*\] (closed with .*)$/.exec(line)?.[1])
    .reduce((sum, w) => sum + Number((w && NOT_SENT.exec(w)?.[1]) ?? 0), 0);
  const errors = output.split('\n').filter((line) => /\[error\]/.test(line));
  const inTopic = await topicSize(topic);
  t.diagnostic(
    `${sent} records sent, ${size} in the topic at the stop, ${inTopic} after it, ${notSent} reported not sent`,
  );
  assert.deepEqual(errors, []);
  assert.equal(inTopic + notSent, sent, output.slice(-3000));
});
