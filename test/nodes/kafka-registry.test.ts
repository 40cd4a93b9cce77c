// Avro through a Confluent-compatible schema registry: producer node (auto-registering) → broker → consumer node,
// the wire format on the topic, schema caching, and the failures (schema not registered, unknown schema id).
// Talks to the real registry at SCHEMA_REGISTRY_URL (`npm test` starts one) through a recording proxy, which also
// plays a registry that is down; without SCHEMA_REGISTRY_URL, to an in-test stand-in serving the same endpoints.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import {
  brokerNode,
  collect,
  consumeRaw,
  createTopic,
  flowNode,
  loadFlow,
  produceRaw,
  useTestRuntime,
  waitFor,
  type FlowNode,
} from '../kafka/support';
import { startTestRegistry, type TestRegistry } from '../kafka/test-registry';

useTestRuntime();

let registry: TestRegistry;
let registryUrl = '';

before(async () => {
  registry = await startTestRegistry(process.env.SCHEMA_REGISTRY_URL);
  registryUrl = registry.url;
});
after(() => registry.close());

const SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Measurement',
  namespace: 'streamml.test',
  fields: [
    { name: 'sensor', type: 'string' },
    { name: 'value', type: 'double' },
  ],
});

/** A producer node writing SCHEMA through the registry of `broker`. */
function registryProducer(broker: string, topic: string, autoRegister = true): FlowNode {
  return {
    id: 'producer',
    type: 'stream-ml-kafka-producer',
    broker,
    topic,
    valueEncoding: 'registry',
    valueSchema: SCHEMA,
    autoRegister,
  };
}

/** A consumer node reading `topic` from the start, values through the registry of `broker`. */
function registryConsumer(broker: string, topic: string, extra: Partial<FlowNode> = {}): FlowNode {
  return {
    id: 'consumer',
    type: 'stream-ml-kafka-consumer',
    broker,
    topics: topic,
    fromBeginning: 'earliest',
    valueEncoding: 'registry',
    ...extra,
  };
}

test('Avro via registry: auto-registered on produce, decoded on consume, schema fetched once', async () => {
  const topic = await createTopic('registry');
  await loadFlow([
    brokerNode('broker', { registryUrl }),
    registryProducer('broker', topic),
    registryConsumer('broker', topic, { malformed: 'output', outputs: 2, wires: [['out'], ['errors']] }),
    { id: 'out', type: 'helper' },
    { id: 'errors', type: 'helper' },
  ]);
  const out = collect<{ payload: { sensor: string; value: number } }>('out');
  const errors = collect<{ error: { message: string } }>('errors');
  const values = Array.from({ length: 20 }, (_, i) => ({ sensor: `s${i % 3}`, value: i / 4 }));
  for (const payload of values) flowNode('producer').receive({ payload });
  await waitFor('20 records back', () => out.length >= 20);
  // A record with a schema id the registry does not know goes to the errors output.
  await produceRaw(topic, [{ value: Buffer.from([0, 0, 0, 0x7f, 0x42, 2, 0x61]) }]);
  await waitFor('the unknown-id record on the errors output', () => errors.length >= 1);
  await helper.unload();

  assert.deepEqual(
    out.map((m) => ({ ...m.payload })),
    values,
  );
  assert.match(errors[0].error.message, /unknown schema id 32578/);
  const raw = await consumeRaw(topic, 1);
  assert.equal(raw[0].value?.[0], 0, 'magic byte');
  const id = raw[0].value?.readUInt32BE(1);
  assert.ok(id !== undefined && id > 0);
  assert.equal(registry.requests.filter((r) => r === `POST /subjects/${topic}-value/versions`).length, 1);
  // The producer registered it, so the consumer (same connection) has it cached and never asks for id `id`.
  assert.ok(registry.requests.filter((r) => r === `GET /schemas/ids/${id}`).length <= 1);
});

test('a consumer on another connection fetches each schema id once for many records', async () => {
  const topic = await createTopic('registry-cache');
  await loadFlow([brokerNode('b1', { registryUrl }), registryProducer('b1', topic)]);
  for (let i = 0; i < 50; i++) flowNode('producer').receive({ payload: { sensor: 'x', value: i } });
  await helper.unload();
  const before = registry.requests.length;
  await loadFlow([
    brokerNode('b2', { registryUrl }),
    registryConsumer('b2', topic, { wires: [['out']] }),
    { id: 'out', type: 'helper' },
  ]);
  const out = collect<{ payload: { value: number } }>('out');
  await waitFor('50 records', () => out.length >= 50);
  await helper.unload();
  assert.deepEqual(
    out.map((m) => m.payload.value),
    Array.from({ length: 50 }, (_, i) => i),
  );
  const fetched = registry.requests.slice(before).filter((r) => r.startsWith('GET /schemas/ids/'));
  assert.equal(fetched.length, 1, fetched.join(', '));
});

test('without auto-registration, a schema the registry lacks fails each message to Catch', async () => {
  const topic = await createTopic('registry-missing');
  await loadFlow([brokerNode('broker', { registryUrl }), registryProducer('broker', topic, false)]);
  const errors: string[] = [];
  flowNode('producer').on('call:error', (call: never) => errors.push(String((call as { args: [unknown] }).args[0])));
  flowNode('producer').receive({ payload: { sensor: 'a', value: 1 } });
  flowNode('producer').receive({ payload: { sensor: 'b', value: 2 } });
  await waitFor('an error per message', () => errors.length >= 2);
  await helper.unload();
  assert.match(errors[0], /40[34]|not found/i);
});

test('a registry that is down holds the records back instead of calling them malformed', async () => {
  const topic = await createTopic('registry-down');
  await loadFlow([brokerNode('b1', { registryUrl }), registryProducer('b1', topic)]);
  for (let i = 0; i < 5; i++) flowNode('producer').receive({ payload: { sensor: 'down', value: i } });
  await helper.unload(); // flushes the five records
  registry.available = false;
  try {
    await loadFlow([
      brokerNode('b2', { registryUrl, reconnectMaxDelay: 1_000 }),
      registryConsumer('b2', topic, { malformed: 'output', outputs: 2, wires: [['out'], ['errors']] }),
      { id: 'out', type: 'helper' },
      { id: 'errors', type: 'helper' },
    ]);
    const out = collect<{ payload: { value: number } }>('out');
    const errors = collect<unknown>('errors');
    await waitFor('the consumer asking the registry', () =>
      registry.requests.some((r) => r.startsWith('GET /schemas/ids/')),
    );
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(out.length + errors.length, 0, 'records went out while the registry was down');
    registry.available = true;
    await waitFor('the records once the registry is back', () => out.length >= 5, 30_000);
    await helper.unload();
    assert.deepEqual(
      out.map((m) => m.payload.value),
      [0, 1, 2, 3, 4],
    );
    assert.equal(errors.length, 0);
  } finally {
    registry.available = true;
  }
});
