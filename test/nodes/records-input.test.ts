// Values that are not records, arriving at the learner and the scorer from outside Kafka (an inject or function
// node): nested 10,000 levels deep, or null. Each is a clear error at the node (log and status), never a
// RangeError, and the node goes on with the next good record.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import type { Node, NodeMessage } from 'node-red';
import { nodeRedPath, projectRoot } from '../support/env';

helper.init(nodeRedPath());
before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));

type FlowNode = { id: string; type: string; [key: string]: unknown };
const NODES = ['stream-ml-online-learner', 'stream-ml-anomaly-scorer'].map(
  (type) => require(path.join(projectRoot, 'dist', 'nodes', type, `${type}.js`)) as never,
);

const deepArrays = (): unknown => JSON.parse('['.repeat(10_000) + ']'.repeat(10_000));
const deepObjects = (): unknown => JSON.parse('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000));

function errorsOf(id: string): string[] {
  const spy = helper.log() as unknown as { args: [{ id?: string; level?: number; msg?: unknown }][] };
  return spy.args
    .map((a) => a[0])
    .filter((e) => e && e.id === id && e.level === 20)
    .map((e) => String(e.msg));
}

function statusTexts(id: string): string[] {
  const texts: string[] = [];
  (helper.getNode(id) as unknown as { on(e: string, f: (call: never) => void): void }).on('call:status', (call) =>
    texts.push(String((call as { args: [{ text?: string }] }).args[0].text)),
  );
  return texts;
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// No Catch node here: Node-RED's handleError deep-copies a failed message for each Catch node (RED.util.cloneMessage)
// and that copy overflows on such a value before any node's code can step in (see the README).
for (const type of ['stream-ml-online-learner', 'stream-ml-anomaly-scorer']) {
  test(`${type}: a record nested 10,000 levels deep, or null, is a clear error, and the next record goes through`, async () => {
    const node: FlowNode = {
      id: 'n1',
      type,
      z: 'f1',
      model: `deep-${type}`,
      attributes: [{ name: 'a', type: 'C' }],
      learn: true,
      wires: type === 'stream-ml-online-learner' ? [['out'], []] : [['out']],
    };
    const flow: FlowNode[] = [{ id: 'f1', type: 'tab', label: 'test' }, node, { id: 'out', type: 'helper', z: 'f1' }];
    await helper.load(NODES, flow);
    const statuses = statusTexts('n1');
    const out: NodeMessage[] = [];
    (helper.getNode('out') as Node).on('input', (msg: NodeMessage) => out.push(msg));
    const target = helper.getNode('n1') as Node;
    for (const payload of [deepArrays(), deepObjects(), { a: deepObjects() }, [deepObjects()]])
      target.receive({ payload } as NodeMessage);
    await until('the error in the status', () => statuses.some((s) => /nested more than 64 levels deep/.test(s)));
    target.receive({ payload: null } as NodeMessage);
    target.receive({ payload: { a: 1.5 } } as NodeMessage);
    await until('the good record through', () => out.length >= 1);
    const errors = errorsOf('n1');
    await helper.unload();
    const deep = 'Error: the record is nested more than 64 levels deep (or refers to itself)';
    assert.deepEqual(errors, [deep, deep, deep, deep, 'Error: the record must be an object or an array, not null']);
    assert.equal(errors.filter((e) => /RangeError|call stack/.test(e)).length, 0);
    assert.equal(out.length, 1);
    assert.deepEqual((out[0] as { payload: unknown }).payload, { a: 1.5 });
    if (type === 'stream-ml-anomaly-scorer')
      assert.equal(typeof (out[0] as { anomaly?: { score?: unknown } }).anomaly?.score, 'number');
  });
}
