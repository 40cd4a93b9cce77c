// The broker is killed mid-stream and started again: the producer node keeps what arrives meanwhile in its queue
// and delivers it, the consumer node resumes, and every record produced is consumed at least once.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import { projectRoot } from '../support/env';
import {
  brokerNode,
  collect,
  createTopic,
  flowNode,
  loadFlow,
  redeploy,
  uniqueName,
  useTestRuntime,
  waitFor,
} from '../kafka/support';

useTestRuntime();
// kafkajs 2.2.4 can keep a broker connection that died mid-request (the killed broker) waiting forever for its
// requests to settle, and with it a 100 ms request-timeout interval that keeps this process alive after every
// client was closed. A known limitation (see the report); end the process once everything has been reported.
after(() => {
  setTimeout(() => process.exit(), 2_000);
});

// Only a broker this project's script started can be killed and started again.
function ownBroker(): boolean {
  try {
    const stateFile = path.join(
      process.env.STREAM_ML_CACHE ?? path.join(projectRoot, '.cache'),
      'kafka',
      'run',
      'state.json',
    );
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { brokers: string };
    return state.brokers === process.env.KAFKA_BROKERS;
  } catch {
    return false;
  }
}

function kafkaScript(command: 'suspend' | 'resume'): void {
  execFileSync(process.execPath, [path.join(projectRoot, 'scripts', 'kafka.mjs'), command], {
    stdio: 'inherit',
    timeout: 150_000,
  });
}

test('broker restart mid-stream: producer delivers its queue, consumer resumes, nothing lost', async (t) => {
  if (!ownBroker()) return t.skip('KAFKA_BROKERS is not a broker started by scripts/kafka.mjs');
  const topic = await createTopic('restart', 2);
  await loadFlow([
    brokerNode('broker', { reconnectMaxDelay: 2_000, requestTimeout: 5_000, connectionTimeout: 2_000 }),
    {
      id: 'producer',
      type: 'stream-ml-kafka-producer',
      broker: 'broker',
      topic,
      valueEncoding: 'json',
      queueSize: 100_000,
      lingerMs: 5,
    },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: topic,
      groupId: uniqueName('restart'),
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      sessionTimeout: 6_000,
      commitInterval: 200,
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ]);
  const out = collect<{ payload: number }>('out');
  const producerErrors: string[] = [];
  flowNode('producer').on('call:error', (call: never) =>
    producerErrors.push(String((call as { args: [unknown] }).args[0])),
  );
  const statuses: string[] = [];
  flowNode('consumer').on('call:status', (call: never) =>
    statuses.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  const producer = flowNode('producer');
  let next = 0;
  const sendSome = (n: number): void => {
    for (let i = 0; i < n; i++) producer.receive({ payload: next++, key: `k${next % 7}` });
  };

  sendSome(500);
  await waitFor('records before the restart', () => out.length >= 300);
  const started = Date.now();
  kafkaScript('suspend');
  sendSome(500); // queued while the broker is down
  await new Promise((r) => setTimeout(r, 2_000));
  kafkaScript('resume');
  sendSome(500);
  const total = next;
  await waitFor('every record after the restart', () => new Set(out.map((m) => m.payload)).size >= total, 120_000);
  const recovery = (Date.now() - started) / 1000;
  await helper.unload();

  const distinct = new Set(out.map((m) => m.payload));
  const duplicates = out.length - distinct.size;
  console.log(
    `broker restart: ${total} produced, ${out.length} consumed, ${duplicates} duplicates, all in ${recovery.toFixed(1)}s after the kill`,
  );
  assert.equal(distinct.size, total);
  for (let i = 0; i < total; i++) assert.ok(distinct.has(i), `record ${i} never arrived`);
  assert.deepEqual(producerErrors, []);
  assert.ok(
    statuses.some((s) => s.startsWith('reconnecting')),
    `the consumer never showed that it was reconnecting: ${statuses.join(' | ')}`,
  );
});

test('closing while the broker is down: within the close timeout, and one warning counts the unsent records', async (t) => {
  if (!ownBroker()) return t.skip('KAFKA_BROKERS is not a broker started by scripts/kafka.mjs');
  const topic = await createTopic('down-close');
  await loadFlow([
    brokerNode('broker', { reconnectMaxDelay: 2_000, requestTimeout: 5_000, connectionTimeout: 2_000 }),
    { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic, valueEncoding: 'json' },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: topic,
      // Its own group: this member cannot leave while the broker is down, and the restarted broker keeps it in
      // the group until its session times out, which would hold up any later consumer of the same group.
      groupId: uniqueName('down-close'),
      sessionTimeout: 6_000,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ]);
  const out = collect<{ payload: number }>('out');
  flowNode('producer').receive({ payload: -1 });
  await waitFor('the consumer working', () => out.length >= 1);
  const errors: string[] = [];
  const warnings: string[] = [];
  flowNode('producer').on('call:error', (call: never) => errors.push(String((call as { args: [unknown] }).args[0])));
  flowNode('producer').on('call:warn', (call: never) => warnings.push(String((call as { args: [unknown] }).args[0])));
  kafkaScript('suspend');
  let closeMs = 0;
  try {
    for (let i = 0; i < 10; i++) flowNode('producer').receive({ payload: i });
    await new Promise((r) => setTimeout(r, 1_000));
    // A deploy that removes the nodes (the helper's unload would stop watching node.error before closing them).
    const started = Date.now();
    await redeploy([
      brokerNode('broker', { reconnectMaxDelay: 2_000, requestTimeout: 5_000, connectionTimeout: 2_000 }),
    ]);
    closeMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    kafkaScript('resume');
    await helper.unload();
  }
  console.log(`close with the broker down: ${closeMs} ms; ${warnings.join(' | ')}`);
  assert.ok(closeMs < 15_000, `close took ${closeMs} ms, past Node-RED's 15 s close timeout`);
  assert.deepEqual(errors, []);
  const counted = warnings.filter((w) => /^closed with \d+ records? not sent: /.test(w));
  assert.equal(counted.length, 1, warnings.join('\n'));
  assert.match(counted[0], /^closed with 10 records not sent: not acknowledged by the broker within the close timeout/);
});
