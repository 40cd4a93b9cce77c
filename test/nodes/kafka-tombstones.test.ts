// Records with a null value (Kafka tombstones): skipped, counted and committed by default, in both output modes;
// or passed on with payload null, which the scorer then refuses in words that say null.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  catchNodeModule,
  collect,
  consumerNode,
  committedOffsets,
  createTopic,
  flowNode,
  loadFlow,
  produceRaw,
  type FlowNode,
  uniqueName,
  useTestRuntime,
  waitFor,
  waitForAsync,
} from '../kafka/support';
import { projectRoot } from '../support/env';

useTestRuntime();

const scorerModule = (): unknown =>
  require(path.join(projectRoot, 'dist', 'nodes', 'stream-ml-anomaly-scorer', 'stream-ml-anomaly-scorer.js'));

function consumer(topic: string, groupId: string, extra: Record<string, unknown> = {}): FlowNode {
  return consumerNode(topic, groupId, { wires: [['out']], ...extra });
}

function statusTexts(id: string): string[] {
  const texts: string[] = [];
  flowNode(id).on('call:status', (call: never) =>
    texts.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  return texts;
}

const value = (n: number) => ({ key: `k${n}`, value: JSON.stringify({ n }) });
const tombstone = (n: number) => ({ key: `k${n}`, value: null });

for (const output of ['record', 'batch'] as const) {
  test(`by default a tombstone is skipped, counted and committed (${output} output)`, async () => {
    const topic = await createTopic(`tombstone-skip-${output}`);
    const groupId = uniqueName('tombstone-skip');
    // The last record is a tombstone: the committed offset must still move past it.
    await produceRaw(topic, [value(1), tombstone(1), tombstone(3), value(2), tombstone(2)]);
    await loadFlow([brokerNode(), consumer(topic, groupId, { output, batchSize: 10 }), { id: 'out', type: 'helper' }]);
    const statuses = statusTexts('consumer');
    const out = collect<{ payload: unknown }>('out');
    await waitForAsync('every offset committed', async () => (await committedOffsets(groupId, topic))[0] === '5');
    await waitFor('the count in the status', () => statuses.some((s) => / · 3 tombstones skipped/.test(s)));
    await helper.unload();
    const payloads = out.flatMap((m) => (output === 'batch' ? (m.payload as unknown[]) : [m.payload]));
    assert.deepEqual(payloads, [{ n: 1 }, { n: 2 }]);
  });
}

test('tombstones passed on arrive with payload null and their key; the scorer says the record is null', async () => {
  const topic = await createTopic('tombstone-pass');
  await produceRaw(topic, [value(1), tombstone(1), value(2)]);
  await loadFlow(
    [
      brokerNode(),
      consumer(topic, uniqueName('tombstone-pass'), { tombstones: 'pass', wires: [['out', 'scorer']] }),
      { id: 'out', type: 'helper' },
      {
        id: 'scorer',
        type: 'stream-ml-anomaly-scorer',
        model: uniqueName('tombstone-model'),
        learn: true,
        attributes: [{ name: 'n', type: 'C' }],
        wires: [['scored']],
      },
      { id: 'scored', type: 'helper' },
      { id: 'catch', type: 'catch', scope: ['scorer'], uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ],
    undefined,
    [scorerModule(), catchNodeModule()],
  );
  const out = collect<{ payload: unknown; key: string; kafka: { offset: string } }>('out');
  const scored = collect<{ payload: { n: number } }>('scored');
  const caught = collect<{ payload: unknown; error: { message: string } }>('caught');
  await waitFor(
    'the records, the scores and the error',
    () => out.length >= 3 && scored.length >= 2 && caught.length >= 1,
  );
  await helper.unload();
  assert.deepEqual(
    out.map((m) => [m.kafka.offset, m.key, m.payload]),
    [
      ['0', 'k1', { n: 1 }],
      ['1', 'k1', null],
      ['2', 'k2', { n: 2 }],
    ],
  );
  assert.equal(caught.length, 1);
  assert.equal(caught[0].payload, null);
  assert.equal(caught[0].error.message, 'Error: the record must be an object or an array, not null');
});
