// Records the flow fails, under each "on failure" policy of the consumer, through the real broker: a function node
// downstream throws for chosen records (Node-RED then calls done(error)), or never finishes them (stuck). Committed
// offsets are read back from the broker with a kafkajs admin.
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
  functionNodeModule,
  loadFlow,
  logged,
  produceRaw,
  type FlowNode,
  uniqueName,
  useTestRuntime,
  waitFor,
  waitForAsync,
} from '../kafka/support';

useTestRuntime();

interface Record_ {
  n: number;
  fail?: boolean;
  hang?: boolean;
}
interface Delivered {
  payload: Record_;
  key: string;
  kafka: { partition: number; offset: string; attempt?: number; headers: Record<string, string> };
}

function consumer(topic: string, groupId: string, extra: Record<string, unknown> = {}): FlowNode {
  return consumerNode(topic, groupId, { wires: [['fn', 'seen']], ...extra });
}

/** A function node running `code`, sending what it returns to `out`. */
function functionNode(code: string): FlowNode {
  return { id: 'fn', type: 'function', func: code, outputs: 1, noerr: 0, libs: [], wires: [['out']] };
}

// Throwing in a function node is how most flows fail a message: the node calls done(error).
const FAIL_MARKED = "if (msg.payload.fail) throw new Error('refused ' + msg.payload.n); return msg;";

function statusTexts(id: string): string[] {
  const texts: string[] = [];
  flowNode(id).on('call:status', (call: never) =>
    texts.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  return texts;
}

const records = (marks: Record<number, Partial<Record_>>, count: number, partition?: number, from = 0) =>
  Array.from({ length: count }, (_, i) => {
    const n = from + i;
    return {
      key: `k${n}`,
      value: JSON.stringify({ n, ...marks[n] }),
      headers: { trace: `t${n}` },
      ...(partition === undefined ? {} : { partition }),
    };
  });

const header = (headers: Record<string, unknown>, name: string): string | undefined =>
  headers[name] === undefined ? undefined : String(headers[name]);

test('retry, then dead-letter: a failing record is retried, then written to the dead-letter topic with its error and source; the rest pass once; all is committed', async () => {
  const topic = await createTopic('retry');
  const dlq = await createTopic('retry-dlq');
  const groupId = uniqueName('retry');
  await produceRaw(topic, records({ 3: { fail: true }, 7: { fail: true } }, 10));
  await loadFlow(
    [
      brokerNode(),
      consumer(topic, groupId, { onFailure: 'retry', retries: 2, retryBackoff: 50, deadLetterTopic: dlq }),
      functionNode(FAIL_MARKED),
      { id: 'seen', type: 'helper' },
      { id: 'out', type: 'helper' },
    ],
    undefined,
    [functionNodeModule()],
  );
  const statuses = statusTexts('consumer');
  const seen = collect<Delivered>('seen');
  const out = collect<Delivered>('out');
  const dead = await consumeRaw(dlq, 2);
  await waitForAsync('every offset committed', async () => (await committedOffsets(groupId, topic))[0] === '10');
  await waitFor('the status with the dead letters', () => statuses.some((s) => /2 dead-lettered/.test(s)), 5_000);
  const warnings = logged('consumer', 'warn');
  await helper.unload();

  // Each failing record went through the flow 3 times (retries 2), marked from the first retry on.
  const attempts = (n: number) => seen.filter((m) => m.payload.n === n).map((m) => m.kafka.attempt);
  assert.deepEqual(attempts(3), [undefined, 2, 3]);
  assert.deepEqual(attempts(7), [undefined, 2, 3]);
  for (const n of [0, 1, 2, 4, 5, 6, 8, 9]) assert.deepEqual(attempts(n), [undefined], `record ${n} delivered once`);
  assert.deepEqual(
    out.map((m) => m.payload.n).sort((a, b) => a - b),
    [0, 1, 2, 4, 5, 6, 8, 9],
  );

  assert.equal(dead.length, 2);
  dead.sort((a, b) => Number(header(a.headers, 'x-source-offset')) - Number(header(b.headers, 'x-source-offset')));
  for (const [i, n] of [3, 7].entries()) {
    const d = dead[i];
    assert.equal(d.key?.toString(), `k${n}`);
    assert.deepEqual(d.value, Buffer.from(JSON.stringify({ n, fail: true })));
    assert.equal(header(d.headers, 'trace'), `t${n}`, 'the record keeps its own headers');
    assert.equal(header(d.headers, 'x-error'), `refused ${n}`);
    assert.equal(header(d.headers, 'x-source-topic'), topic);
    assert.equal(header(d.headers, 'x-source-partition'), '0');
    assert.equal(header(d.headers, 'x-source-offset'), String(n));
    assert.equal(header(d.headers, 'x-attempts'), '3');
  }
  assert.ok(
    statuses.some((s) => /6 failed · 4 retries · 2 dead-lettered/.test(s)),
    `status: ${statuses.join(' | ')}`,
  );
  assert.equal(warnings.filter((w) => /failed 3 times \(refused \d\): written to dead-letter topic/.test(w)).length, 2);
});

test('retry, then dead-letter, in batch output: a failing chunk is retried whole, and each of its records is dead-lettered', async () => {
  const topic = await createTopic('retry-batch');
  const dlq = await createTopic('retry-batch-dlq');
  const groupId = uniqueName('retry-batch');
  await produceRaw(topic, records({ 4: { fail: true } }, 6));
  await loadFlow(
    [
      brokerNode(),
      consumer(topic, groupId, {
        output: 'batch',
        batchSize: 3,
        onFailure: 'retry',
        retries: 1,
        retryBackoff: 50,
        deadLetterTopic: dlq,
      }),
      functionNode("if (msg.payload.some((r) => r.fail)) throw new Error('refused a chunk'); return msg;"),
      { id: 'seen', type: 'helper' },
      { id: 'out', type: 'helper' },
    ],
    undefined,
    [functionNodeModule()],
  );
  const seen = collect<{ payload: Record_[]; kafka: { offsets: string[]; attempt?: number } }>('seen');
  await waitForAsync('every offset committed', async () => (await committedOffsets(groupId, topic))[0] === '6');
  const failing = seen.filter((m) => m.payload.some((r) => r.fail));
  const dead = await consumeRaw(dlq, failing[0]?.kafka.offsets.length ?? 1);
  await helper.unload();
  assert.deepEqual(
    failing.map((m) => m.kafka.attempt),
    [undefined, 2],
  );
  assert.deepEqual(failing[1].kafka.offsets, failing[0].kafka.offsets, 'the same records again');
  assert.ok(failing[0].kafka.offsets.includes('4'));
  assert.deepEqual(dead.map((d) => header(d.headers, 'x-source-offset')).sort(), [...failing[0].kafka.offsets].sort());
  for (const d of dead) {
    assert.equal(header(d.headers, 'x-error'), 'refused a chunk');
    assert.equal(header(d.headers, 'x-attempts'), '2');
    const n = Number(header(d.headers, 'x-source-offset'));
    assert.deepEqual(JSON.parse(String(d.value)), n === 4 ? { n, fail: true } : { n });
  }
  // Records of the other chunks went through once.
  const others = seen.filter((m) => !m.payload.some((r) => r.fail));
  assert.deepEqual(
    others.flatMap((m) => m.payload.map((r) => r.n)).sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5].filter((n) => !failing[0].kafka.offsets.includes(String(n))),
  );
});

test('a failed record is committed only once its dead-letter write is acknowledged: while it fails, the partition commits up to it', async () => {
  const topic = await createTopic('dlq-fails');
  const groupId = uniqueName('dlq-fails');
  await produceRaw(topic, records({ 1: { fail: true } }, 5));
  // Not a legal topic name: Kafka refuses every write to it.
  const flow = (deadLetterTopic: string): FlowNode[] => [
    brokerNode(),
    consumer(topic, groupId, { onFailure: 'retry', retries: 0, deadLetterTopic }),
    functionNode(FAIL_MARKED),
    { id: 'seen', type: 'helper' },
    { id: 'out', type: 'helper' },
  ];
  await loadFlow(flow('no such topic!'), undefined, [functionNodeModule()]);
  const statuses = statusTexts('consumer');
  const out = collect<Delivered>('out');
  await waitFor('the records after the failed one', () => out.length >= 4);
  await waitFor('the status saying the dead-letter topic fails', () =>
    statuses.some((s) => /dead-letter topic failing/.test(s)),
  );
  await waitForAsync(
    'the records before it committed',
    async () => (await committedOffsets(groupId, topic))[0] === '1',
  );
  // Records 2-4 are finished too, yet a few commit intervals later nothing past the failed record is committed.
  await new Promise((r) => setTimeout(r, 1_000));
  const whileFailing = (await committedOffsets(groupId, topic))[0];
  const warnings = logged('consumer', 'warn');
  await helper.unload();
  assert.equal(whileFailing, '1');
  assert.ok(warnings.some((w) => /dead-letter write to no such topic! failed/.test(w)));

  // The next consumer of the group starts at the failed record, and with a dead-letter topic that works it goes on.
  const dlq = await createTopic('dlq-works');
  await loadFlow(flow(dlq), undefined, [functionNodeModule()]);
  const again = collect<Delivered>('seen');
  const dead = await consumeRaw(dlq, 1);
  await waitForAsync('all committed', async () => (await committedOffsets(groupId, topic))[0] === '5');
  await helper.unload();
  assert.deepEqual(
    again.map((m) => m.payload.n),
    [1, 2, 3, 4],
  );
  assert.equal(dead.length, 1);
  assert.equal(header(dead[0].headers, 'x-source-offset'), '1');
  assert.equal(header(dead[0].headers, 'x-error'), 'refused 1');
});

test('pause: the partition stops at the failed record, with an error at the Catch node; other partitions go on; resume retries it', async () => {
  const topic = await createTopic('halt', 2);
  const groupId = uniqueName('halt');
  await produceRaw(topic, [...records({ 2: { fail: true } }, 6, 0), ...records({}, 6, 1, 100)]);
  await loadFlow(
    [
      brokerNode(),
      // One message in the flow at a time: nothing after the failed record is on its way when it fails.
      consumer(topic, groupId, { onFailure: 'pause', maxInFlight: 1, wires: [['fn']] }),
      // Fails record 2 the first time only.
      functionNode(
        "if (msg.payload.fail && !msg.kafka.attempt) throw new Error('refused ' + msg.payload.n); return msg;",
      ),
      { id: 'out', type: 'helper' },
      { id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ],
    undefined,
    [functionNodeModule(), catchNodeModule()],
  );
  const statuses = statusTexts('consumer');
  const out = collect<Delivered>('out');
  const caught = collect<{ payload: Record_; error: { message: string; source: { id: string } } }>('caught');
  const fromPartition = (p: number) => out.filter((m) => m.kafka.partition === p).map((m) => m.payload.n);
  await waitFor('partition 1 through, partition 0 up to the failed record', () => {
    return fromPartition(1).length === 6 && fromPartition(0).length === 2;
  });
  await waitFor('the error at the Catch node', () => caught.some((m) => m.error.source.id === 'consumer'));
  await waitForAsync('the offsets committed up to the failed record', async () => {
    const offsets = await committedOffsets(groupId, topic);
    return offsets[0] === '2' && offsets[1] === '6';
  });
  await new Promise((r) => setTimeout(r, 1_000));
  const stopped = { records: fromPartition(0), committed: (await committedOffsets(groupId, topic))[0] };
  await waitFor('the status saying where it stopped', () =>
    statuses.some((s) => /stopped at halt-\w+\[0\]@2: refused 2 · resume to retry/.test(s)),
  );

  flowNode('consumer').receive({ topic: 'resume' });
  await waitFor('the rest of partition 0', () => fromPartition(0).length === 6);
  await waitForAsync('everything committed', async () => (await committedOffsets(groupId, topic))[0] === '6');
  await helper.unload();

  assert.deepEqual(stopped, { records: [0, 1], committed: '2' });
  const error = caught.find((m) => m.error.source.id === 'consumer')!;
  assert.equal(error.payload.n, 2, 'the Catch node gets the record');
  assert.match(error.error.message, /@2 failed \(refused 2\): partition halt-\w+\[0\] stopped on it/);
  assert.deepEqual(fromPartition(0), [0, 1, 2, 3, 4, 5]);
  assert.equal(out.find((m) => m.payload.n === 2)?.kafka.attempt, 2);
  assert.deepEqual(fromPartition(1), [100, 101, 102, 103, 104, 105]);
});

test('count and commit (the default): a failed record is counted and committed, as before, and never delivered again', async () => {
  const topic = await createTopic('count');
  const groupId = uniqueName('count');
  await produceRaw(topic, records({ 2: { fail: true } }, 6));
  await loadFlow(
    [
      brokerNode(),
      consumer(topic, groupId),
      functionNode(FAIL_MARKED),
      { id: 'seen', type: 'helper' },
      { id: 'out', type: 'helper' },
    ],
    undefined,
    [functionNodeModule()],
  );
  const statuses = statusTexts('consumer');
  const seen = collect<Delivered>('seen');
  const out = collect<Delivered>('out');
  await waitForAsync('everything committed', async () => (await committedOffsets(groupId, topic))[0] === '6');
  await waitFor('the failure in the status', () => statuses.some((s) => /· 1 failed/.test(s)), 5_000);
  await helper.unload();
  assert.deepEqual(
    seen.map((m) => m.payload.n),
    [0, 1, 2, 3, 4, 5],
  );
  assert.deepEqual(
    out.map((m) => m.payload.n),
    [0, 1, 3, 4, 5],
  );
});

test('a record stuck in the flow past the stuck timeout shows in the status and is a failure: retried, then dead-lettered', async () => {
  const topic = await createTopic('stuck');
  const dlq = await createTopic('stuck-dlq');
  const groupId = uniqueName('stuck');
  await produceRaw(topic, records({ 1: { hang: true } }, 4));
  await loadFlow(
    [
      brokerNode(),
      consumer(topic, groupId, {
        onFailure: 'retry',
        retries: 1,
        retryBackoff: 50,
        deadLetterTopic: dlq,
        stuckTimeout: 500,
      }),
      // Finishes every record but the one marked hang, which it never calls done() for.
      functionNode('if (msg.payload.hang) return; node.send(msg); node.done();'),
      { id: 'seen', type: 'helper' },
      { id: 'out', type: 'helper' },
    ],
    undefined,
    [functionNodeModule()],
  );
  const statuses = statusTexts('consumer');
  const seen = collect<Delivered>('seen');
  const dead = await consumeRaw(dlq, 1);
  await waitForAsync('everything committed', async () => (await committedOffsets(groupId, topic))[0] === '4');
  await waitFor('the stuck records in the status', () => statuses.some((s) => /2 stuck \(>0\.5 s\)/.test(s)), 5_000);
  await helper.unload();
  assert.deepEqual(
    seen.filter((m) => m.payload.n === 1).map((m) => m.kafka.attempt),
    [undefined, 2],
  );
  assert.equal(dead.length, 1);
  assert.equal(header(dead[0].headers, 'x-source-offset'), '1');
  assert.equal(header(dead[0].headers, 'x-error'), 'not finished by the flow within 0.5 s (stuck)');
  assert.equal(header(dead[0].headers, 'x-attempts'), '2');
});

test('a stuck record under the pause policy stops its partition too', async () => {
  const topic = await createTopic('stuck-halt');
  const groupId = uniqueName('stuck-halt');
  await produceRaw(topic, records({ 1: { hang: true } }, 3));
  await loadFlow(
    [
      brokerNode(),
      consumer(topic, groupId, { onFailure: 'pause', stuckTimeout: 300, maxInFlight: 1, wires: [['fn']] }),
      // Hangs on the first delivery only.
      functionNode('if (msg.payload.hang && !msg.kafka.attempt) return; node.send(msg); node.done();'),
      { id: 'out', type: 'helper' },
    ],
    undefined,
    [functionNodeModule()],
  );
  const statuses = statusTexts('consumer');
  const out = collect<Delivered>('out');
  await waitFor('the stop on the stuck record', () =>
    statuses.some((s) => /stopped at stuck-halt-\w+\[0\]@1: not finished by the flow within 0\.3 s/.test(s)),
  );
  const before = out.map((m) => m.payload.n);
  flowNode('consumer').receive({ resume: true });
  await waitFor('the rest after resume', () => out.length >= 3);
  await waitForAsync('everything committed', async () => (await committedOffsets(groupId, topic))[0] === '3');
  const errors = logged('consumer', 'error');
  await helper.unload();
  assert.deepEqual(before, [0]);
  assert.deepEqual(
    out.map((m) => m.payload.n),
    [0, 1, 2],
  );
  assert.ok(errors.some((e) => /@1 failed \(not finished by the flow within 0\.3 s \(stuck\)\)/.test(e)));
});

test('a consumer with "retry" and no dead-letter topic, or a bad retry count, says so and does not start', async () => {
  const topic = await createTopic('bad-policy');
  await loadFlow([brokerNode(), consumer(topic, uniqueName('bad'), { onFailure: 'retry', wires: [[]] })]);
  const noTopic = logged('consumer', 'error');
  await helper.unload();
  await loadFlow([
    brokerNode(),
    consumer(topic, uniqueName('bad'), { onFailure: 'retry', deadLetterTopic: 'x', retries: -1, wires: [[]] }),
  ]);
  const badRetries = logged('consumer', 'error');
  await helper.unload();
  assert.ok(
    noTopic.some((e) => /needs a dead-letter topic/.test(e)),
    noTopic.join(' | '),
  );
  assert.ok(badRetries.some((e) => /retries must be a whole number of 0 or more, not "-1"/.test(e)));
});
