// Records that do not decode (JSON nested too deeply included), under each of the consumer's policies: warn and
// skip, error to a Catch node, or a second output with the raw bytes and the reason. Good records around them still
// arrive, in order, and the bad ones are counted in the status.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  catchNodeModule,
  collect,
  createTopic,
  flowNode,
  loadFlow,
  logged,
  produceRaw,
  type FlowNode,
  useTestRuntime,
  waitFor,
} from '../kafka/support';

useTestRuntime();

const AVRO = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'n', type: 'long' }] });

async function run(policy: string, encoding = 'json', bad: (Buffer | string)[] = ['{"broken": ', 'nope']) {
  const topic = await createTopic(`malformed-${policy}`);
  const good =
    encoding === 'json' ? ['{"n":1}', '{"n":2}', '{"n":3}'] : [Buffer.from([2]), Buffer.from([4]), Buffer.from([6])];
  await produceRaw(topic, [
    { value: good[0] },
    { value: bad[0] },
    { value: good[1] },
    { value: bad[1] },
    { value: good[2] },
  ]);
  const flow: FlowNode[] = [
    brokerNode(),
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',

      broker: 'broker',
      topics: topic,
      fromBeginning: 'earliest',
      valueEncoding: encoding,
      valueSchema: AVRO,
      malformed: policy,
      outputs: policy === 'output' ? 2 : 1,
      wires: policy === 'output' ? [['out'], ['errors']] : [['out']],
    },
    { id: 'out', type: 'helper' },
    { id: 'errors', type: 'helper' },
    { id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper' },
  ];
  await loadFlow(flow, undefined, [catchNodeModule()]);
  const statuses: string[] = [];
  flowNode('consumer').on('call:status', (call: never) =>
    statuses.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  const out = collect<{ payload: { n: number } }>('out');
  const errors = collect<{ payload: Buffer; error: { message: string; part: string } }>('errors');
  const caught = collect<{ payload: Buffer; error: { message: string } }>('caught');
  await waitFor('the good records', () => out.length >= 3);
  if (policy === 'output') await waitFor('two records on the errors output', () => errors.length >= 2);
  if (policy === 'catch') await waitFor('two errors at the Catch node', () => caught.length >= 2);
  if (policy === 'warn') await waitFor('two warnings', () => logged('consumer', 'warn').length >= 2);
  await waitFor('the count in the status', () => statuses.some((s) => / · 2 malformed/.test(s)));
  await helper.unload();
  return { out, errors, caught, warnings: logged('consumer', 'warn') };
}

test('warn and skip: good records pass, each bad one is a warning', async () => {
  const { out, errors, caught, warnings } = await run('warn');
  assert.deepEqual(
    out.map((m) => m.payload.n),
    [1, 2, 3],
  );
  assert.equal(errors.length + caught.length, 0);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /skipped malformed record .*\[0\]@1: value is not valid JSON/);
});

test('error to Catch: each bad record reaches the Catch node with its raw bytes', async () => {
  const { out, caught } = await run('catch');
  assert.deepEqual(
    out.map((m) => m.payload.n),
    [1, 2, 3],
  );
  assert.equal(caught.length, 2);
  assert.deepEqual(caught[0].payload, Buffer.from('{"broken": '));
  assert.match(caught[0].error.message, /malformed record .*@1: value is not valid JSON/);
});

test('errors output: bad records leave by the second output with bytes and reason', async () => {
  const { out, errors } = await run('output');
  assert.deepEqual(
    out.map((m) => m.payload.n),
    [1, 2, 3],
  );
  assert.equal(errors.length, 2);
  assert.deepEqual(errors[1].payload, Buffer.from('nope'));
  assert.equal(errors[1].error.part, 'value');
  assert.match(errors[1].error.message, /not valid JSON/);
});

test('Avro that does not match the schema goes to the errors output', async () => {
  // Avro longs are zig-zag varints: 0x02 is 1, while 0xff 0xff… never ends, and 0x02 0x00 has a byte left over.
  const { out, errors } = await run('output', 'avro', [Buffer.from([0xff, 0xff]), Buffer.from([0x02, 0x00])]);
  assert.deepEqual(
    out.map((m) => Number(m.payload.n)),
    [1, 2, 3],
  );
  assert.equal(errors.length, 2);
  assert.match(errors[0].error.message, /does not match the Avro schema/);
});

test('JSON nested 10,000 levels deep is a malformed record with its reason, never a stack overflow', async () => {
  const deep = '['.repeat(10_000) + ']'.repeat(10_000);
  const deepObject = '{"a":'.repeat(100) + '1' + '}'.repeat(100);
  const { out, errors } = await run('output', 'json', [deep, deepObject]);
  assert.deepEqual(
    out.map((m) => m.payload.n),
    [1, 2, 3],
  );
  assert.equal(errors.length, 2);
  assert.deepEqual(errors[0].payload, Buffer.from(deep));
  assert.equal(errors[0].error.message, 'value is JSON nested more than 64 levels deep');
  assert.equal(errors[1].error.message, 'value is JSON nested more than 64 levels deep');
});
