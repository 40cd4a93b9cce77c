// The broker config node: secrets stay out of the exported flow, SASL PLAIN and SCRAM work against the test
// broker's SASL listener, and a wrong password shows as "auth failed" instead of crashing anything.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import helper from 'node-red-node-test-helper';
import { projectRoot } from '../support/env';
import {
  brokerNode,
  collect,
  createTopic,
  flowNode,
  loadFlow,
  type FlowNode,
  useTestRuntime,
  waitFor,
} from '../kafka/support';

useTestRuntime();

const SECRETS = {
  saslUsername: 'scram-user',
  saslPassword: 'super-secret-password-1',
  tlsKey: '-----BEGIN PRIVATE KEY-----\nsecret-key\n-----END PRIVATE KEY-----',
  tlsPassphrase: 'secret-passphrase-2',
  registryUsername: 'registry-user',
  registryPassword: 'secret-registry-3',
};

test('credentials are kept as Node-RED credentials, not in the exported flow', async () => {
  const flow: FlowNode[] = [
    brokerNode('broker', { saslMechanism: 'scram-sha-256', registryUrl: 'http://127.0.0.1:1' }),
  ];
  await loadFlow(flow, { broker: SECRETS });
  assert.equal(flowNode('broker').credentials?.saslPassword, SECRETS.saslPassword);
  const exported = JSON.stringify((helper as unknown as { _redNodes: { getFlows(): unknown } })._redNodes.getFlows());
  await helper.unload();
  for (const secret of [SECRETS.saslPassword, SECRETS.tlsPassphrase, SECRETS.registryPassword, 'secret-key'])
    assert.ok(!exported.includes(secret), `${secret} is in the exported flow`);
  // And the editor declares them as credentials, so it never writes them into the node's properties.
  const html = fs.readFileSync(
    path.join(projectRoot, 'nodes', 'stream-ml-kafka-broker', 'stream-ml-kafka-broker.html'),
    'utf8',
  );
  const credentialsBlock = /credentials:\s*{([\s\S]*?)\n {4}},/.exec(html)?.[1] ?? '';
  for (const name of ['saslPassword', 'tlsKey', 'tlsPassphrase', 'registryPassword'])
    assert.match(credentialsBlock, new RegExp(`${name}:\\s*{\\s*type:\\s*'password'`), name);
  const defaultsBlock = /defaults:\s*{([\s\S]*?)\n {4}},/.exec(html)?.[1] ?? '';
  for (const name of Object.keys(SECRETS)) assert.ok(!defaultsBlock.includes(name), `${name} among defaults`);
});

function saslBrokers(): string {
  const brokers =
    process.env.KAFKA_SASL_BROKERS ??
    (() => {
      try {
        const state = JSON.parse(
          fs.readFileSync(path.join(projectRoot, '.cache', 'kafka', 'run', 'state.json'), 'utf8'),
        );
        return state.brokers === process.env.KAFKA_BROKERS ? (state.saslBrokers as string) : undefined;
      } catch {
        return undefined;
      }
    })();
  return brokers ?? '';
}

for (const [mechanism, username, password] of [
  ['plain', 'plain-user', 'plain-secret'],
  ['scram-sha-256', 'scram-user', 'scram-secret'],
  ['scram-sha-512', 'scram-user', 'scram-secret'],
]) {
  test(`SASL ${mechanism} round trip`, { skip: saslBrokers() ? false : 'no SASL listener known' }, async () => {
    const topic = await createTopic(`sasl-${mechanism}`);
    await loadFlow(
      [
        brokerNode('broker', { brokers: saslBrokers(), saslMechanism: mechanism }),
        { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic, valueEncoding: 'string' },
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
      ],
      { broker: { saslUsername: username, saslPassword: password } },
    );
    const out = collect<{ payload: string }>('out');
    flowNode('producer').receive({ payload: `hello over ${mechanism}` });
    await waitFor('the record', () => out.length >= 1);
    await helper.unload();
    assert.equal(out[0].payload, `hello over ${mechanism}`);
  });
}

test('a wrong password shows "auth failed" on the nodes and the producer reports per message', async (t) => {
  if (!saslBrokers()) return t.skip('no SASL listener known');
  await loadFlow(
    [
      brokerNode('broker', { brokers: saslBrokers(), saslMechanism: 'scram-sha-256', reconnectMaxDelay: 2000 }),
      { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic: 'never', queueSize: 2 },
    ],
    { broker: { saslUsername: 'scram-user', saslPassword: 'wrong' } },
  );
  const statuses: string[] = [];
  flowNode('producer').on('call:status', (call: never) => {
    statuses.push(String((call as { args: [{ text?: string }] }).args[0].text));
  });
  const errors: string[] = [];
  flowNode('producer').on('call:error', (call: never) => {
    errors.push(String((call as { args: [unknown] }).args[0]));
  });
  for (let i = 0; i < 4; i++) flowNode('producer').receive({ payload: `m${i}` });
  await waitFor('auth failed status', () => statuses.some((s) => s.startsWith('auth failed')), 20_000);
  await waitFor('errors for the refused records', () => errors.length >= 2);
  await helper.unload();
  assert.ok(
    errors.some((e) => /queue full/.test(e)),
    errors.join('\n'),
  );
});
