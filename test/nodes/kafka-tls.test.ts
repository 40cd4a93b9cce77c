// The broker config node's TLS options against the test broker's real SSL listeners (scripts/kafka.mjs): a round
// trip with the test CA (and the client certificate where the broker demands one), verification off, and clear
// statuses when the server certificate is not trusted or the client certificate is missing. Records the broker never
// took are reported as errors, one per record, and never sent later behind the flow's back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import { projectRoot } from '../support/env';
import {
  brokerNode,
  collect,
  consumeRaw,
  createTopic,
  flowNode,
  loadFlow,
  redeploy,
  useTestRuntime,
  waitFor,
  type FlowNode,
} from '../kafka/support';

useTestRuntime();
// Records still queued at close wait for most of this before they fail: keep the failure tests short.
helper.settings({ nodeCloseTimeout: 5_000 } as Parameters<typeof helper.settings>[0]);

interface TlsListeners {
  /** Server certificate only. */
  tlsBrokers: string;
  /** A client certificate is required. */
  mtlsBrokers: string;
  /** Paths of the test CA, the client certificate and its key. */
  ca: string;
  cert: string;
  key: string;
}

/** The test broker's SSL listeners from the environment `npm test` sets, or its state file; else why not. */
function tlsListeners(): TlsListeners | string {
  const env = process.env;
  if (env.KAFKA_TLS_BROKERS && env.KAFKA_MTLS_BROKERS && env.KAFKA_TLS_CA && env.KAFKA_TLS_CERT && env.KAFKA_TLS_KEY)
    return {
      tlsBrokers: env.KAFKA_TLS_BROKERS,
      mtlsBrokers: env.KAFKA_MTLS_BROKERS,
      ca: env.KAFKA_TLS_CA,
      cert: env.KAFKA_TLS_CERT,
      key: env.KAFKA_TLS_KEY,
    };
  let state: { brokers?: string; tlsBrokers?: string; mtlsBrokers?: string; tls?: Record<string, string> };
  try {
    state = JSON.parse(fs.readFileSync(path.join(projectRoot, '.cache', 'kafka', 'run', 'state.json'), 'utf8'));
  } catch {
    return 'KAFKA_BROKERS points to a cluster not started by scripts/kafka.mjs: no TLS listener known';
  }
  if (state.brokers !== env.KAFKA_BROKERS)
    return 'KAFKA_BROKERS points to a cluster not started by scripts/kafka.mjs: no TLS listener known';
  if (!state.tlsBrokers || !state.mtlsBrokers || !state.tls)
    return 'the local broker has no TLS listeners (openssl missing, or started by an older scripts/kafka.mjs)';
  return { tlsBrokers: state.tlsBrokers, mtlsBrokers: state.mtlsBrokers, ...state.tls } as TlsListeners;
}

const listeners = tlsListeners();
const skip = typeof listeners === 'string' ? listeners : false;
const tls = (): TlsListeners => listeners as TlsListeners;

function producerAndConsumer(topic: string): FlowNode[] {
  return [
    { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic, valueEncoding: 'string', lingerMs: 2 },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: topic,
      fromBeginning: 'earliest',
      valueEncoding: 'string',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ];
}

function statusTexts(id: string): string[] {
  const texts: string[] = [];
  flowNode(id).on('call:status', (call: never) =>
    texts.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  return texts;
}

function errorTexts(id: string, level: 'error' | 'warn' = 'error'): string[] {
  const texts: string[] = [];
  flowNode(id).on(`call:${level}`, (call: never) => texts.push(String((call as { args: [unknown] }).args[0])));
  return texts;
}

/** Runs `body` on the loaded flow and unloads it even when `body` fails, so no node keeps retrying after a test. */
async function withFlow(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    await helper.unload();
  }
}

/** Sends `values` through producer → broker → consumer and returns what the consumer put out. */
async function roundTrip(broker: FlowNode, credentials: Record<string, string>, values: string[]): Promise<string[]> {
  const topic = await createTopic('tls');
  await loadFlow([broker, ...producerAndConsumer(topic)], { broker: credentials });
  const out = collect<{ payload: string }>('out');
  const errors = errorTexts('producer');
  await withFlow(async () => {
    for (const payload of values) flowNode('producer').receive({ payload });
    await waitFor(`${values.length} records back`, () => out.length >= values.length);
    // Time for a duplicate to show up, if there were one.
    await new Promise((r) => setTimeout(r, 300));
  });
  assert.deepEqual(errors, []);
  return out.map((m) => m.payload);
}

const VALUES = ['first', 'second', 'third'];

test('mutual TLS: CA as a file path, client certificate as PEM text, key as a credential', { skip }, async () => {
  const broker = brokerNode('broker', {
    brokers: tls().mtlsBrokers,
    tls: true,
    tlsCa: tls().ca,
    tlsCert: fs.readFileSync(tls().cert, 'utf8'),
    tlsRejectUnauthorized: true,
  });
  assert.deepEqual(await roundTrip(broker, { tlsKey: fs.readFileSync(tls().key, 'utf8') }, VALUES), VALUES);
});

test('server-only TLS: the CA as PEM text and nothing else', { skip }, async () => {
  const broker = brokerNode('broker', {
    brokers: tls().tlsBrokers,
    tls: true,
    tlsCa: fs.readFileSync(tls().ca, 'utf8'),
    tlsRejectUnauthorized: true,
  });
  assert.deepEqual(await roundTrip(broker, {}, VALUES), VALUES);
});

test('verification off: no CA needed', { skip }, async () => {
  const broker = brokerNode('broker', { brokers: tls().tlsBrokers, tls: true, tlsRejectUnauthorized: false });
  assert.deepEqual(await roundTrip(broker, {}, VALUES), VALUES);
});

test(
  'verification on without the CA: the status names the certificate problem; refused records fail, queued ones are counted on close',
  { skip },
  async () => {
    const topic = await createTopic('tls-untrusted');
    const broker = (ca: string): FlowNode =>
      brokerNode('broker', { brokers: tls().tlsBrokers, tls: true, tlsCa: ca, reconnectMaxDelay: 2_000 });
    const [producer, ...consumer] = producerAndConsumer(topic);
    await loadFlow([broker(''), { ...producer, queueSize: 3 }, ...consumer]);
    const errors = errorTexts('producer');
    const warnings = errorTexts('producer', 'warn');
    const out = collect<{ payload: string }>('out');
    await withFlow(async () => {
      const statuses = [statusTexts('producer'), statusTexts('consumer')];
      for (let i = 0; i < 5; i++) flowNode('producer').receive({ payload: `untrusted-${i}` });
      const expected = 'auth failed: TLS: self-signed certificate in certificate chain';
      await waitFor(`"${expected}" on both nodes`, () =>
        statuses.every((texts) => texts.some((s) => s.startsWith(expected))),
      );
      // Past the queue's 3, records are refused at once.
      await waitFor('two records refused', () => errors.length >= 2);
      // A deploy that removes the nodes: the 3 queued records are counted then, in one warning (the helper's
      // unload would stop watching).
      await redeploy([broker('')]);
    });
    assert.deepEqual(
      errors.map((e) => (/queue full/.test(e) ? 'queue full' : e)),
      ['queue full', 'queue full'],
    );
    assert.deepEqual(
      warnings.filter((w) => /^closed with/.test(w)).map((w) => w.split(':')[0]),
      ['closed with 3 records not sent'],
    );
    assert.deepEqual(out, []);

    // With the CA the same flow works and sends what it is given now, none of the records it reported as failed.
    await loadFlow([broker(tls().ca), producer, ...consumer]);
    const received = collect<{ payload: string }>('out');
    await withFlow(async () => {
      flowNode('producer').receive({ payload: 'trusted' });
      await waitFor('the record sent with the CA', () => received.length >= 1);
    });
    assert.deepEqual(
      (await consumeRaw(topic, 2, 3_000)).map((r) => String(r.value)),
      ['trusted'],
    );
  },
);

test('no client certificate where the broker requires one: the status says it was refused', { skip }, async () => {
  const topic = await createTopic('tls-no-client-cert');
  await loadFlow([
    brokerNode('broker', { brokers: tls().mtlsBrokers, tls: true, tlsCa: tls().ca, reconnectMaxDelay: 2_000 }),
    ...producerAndConsumer(topic),
  ]);
  const errors = errorTexts('producer');
  const warnings = errorTexts('producer', 'warn');
  await withFlow(async () => {
    const statuses = [statusTexts('producer'), statusTexts('consumer')];
    flowNode('producer').receive({ payload: 'no-certificate' });
    // Kafka answers a missing client certificate with the "bad certificate" alert; TLS 1.3 also has its own.
    const expected = /^auth failed: TLS: client certificate refused \((bad certificate|certificate required)\)/;
    await waitFor('the refusal on both nodes', () => statuses.every((texts) => texts.some((s) => expected.test(s))));
    await redeploy([]);
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(
    warnings.filter((w) => /^closed with/.test(w)).map((w) => w.split(':')[0]),
    ['closed with 1 record not sent'],
  );
  assert.deepEqual(await consumeRaw(topic, 1, 2_000), []);
});
