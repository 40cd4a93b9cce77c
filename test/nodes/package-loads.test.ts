// The package loads in a real Node-RED runtime (the one NODE_RED_PATH names, else Node-RED 4) with every node
// that package.json declares registered, and each type can be deployed in a flow.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import { nodeRedPath, projectRoot } from '../support/env';

const pkg = require(path.join(projectRoot, 'package.json')) as { 'node-red': { nodes: Record<string, string> } };
const declared = pkg['node-red'].nodes;

helper.init(nodeRedPath());

before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));

test('every declared node registers and deploys', async () => {
  const modules = Object.values(declared).map((file) => require(path.join(projectRoot, file)));
  const flow: { id: string; type: string; [key: string]: unknown }[] = [
    { id: 'b1', type: 'stream-ml-kafka-broker', brokers: '127.0.0.1:9', clientId: 't' },
  ];
  for (const type of Object.keys(declared)) {
    if (type === 'stream-ml-kafka-broker') continue;
    flow.push({ id: `n-${type}`, type, broker: 'b1', wires: [] });
  }
  await helper.load(modules, flow);
  for (const type of Object.keys(declared)) {
    const id = type === 'stream-ml-kafka-broker' ? 'b1' : `n-${type}`;
    const node = helper.getNode(id);
    assert.ok(node, `${type} was not created`);
    assert.equal(node.type, type);
  }
  await helper.unload();
});

test('runs on the Node-RED line the test run asked for', () => {
  const red = (helper as unknown as { _RED: { version(): string } })._RED;
  const expectedMajor = process.env.EXPECT_NODE_RED_MAJOR ?? '4';
  assert.equal(red.version().split('.')[0], expectedMajor, `Node-RED ${red.version()} on Node ${process.version}`);
});
