// A node that passes messages on does not handle a message that reaches it once its close has begun: the runtime
// routes nothing it sends then, so handling it would lose it after the consumer committed it. It completes the
// message unfinished instead (the consumer delivers it again, to the next flow), and a learner does not learn it.
// Seen in a full redeploy mid-stream: records learned and committed whose predictions never reached the producer.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import helper from 'node-red-node-test-helper';
import type { Node, NodeMessage } from 'node-red';
import { findKeyedModels, type KeyedModels } from '../../src/node-red/keyed-models';
import type { Model } from '../../src/engine';
import { notFinishedReason } from '../../src/node-red/unfinished';
import { nodeRedPath, projectRoot } from '../support/env';

helper.init(nodeRedPath());

const NODES = [
  require(path.join(projectRoot, 'dist/nodes/stream-ml-online-learner/stream-ml-online-learner.js')),
  require(path.join(projectRoot, 'dist/nodes/stream-ml-anomaly-scorer/stream-ml-anomaly-scorer.js')),
];

type FlowNode = { id: string; type: string; [key: string]: unknown };

const ATTRIBUTES = [
  { name: 'machine', type: 'X' },
  { name: 'a', type: 'C' },
];
const KEYED = { keyed: true, keySource: 'record', keyProperty: 'machine' };

const cases: { name: string; node: FlowNode; learned?: () => number }[] = [
  {
    name: 'learner',
    node: { id: 'n', type: 'stream-ml-online-learner', model: 'm', attributes: ATTRIBUTES, wires: [['out'], []] },
    learned: () => ((helper.getNode('n') as Node).context().flow.get('m') as Model).recordsLearned,
  },
  {
    name: 'learner, one model per key',
    node: {
      id: 'n',
      type: 'stream-ml-online-learner',
      model: 'm',
      attributes: ATTRIBUTES,
      ...KEYED,
      wires: [['out'], []],
    },
    // Read before the close releases them, and from the same object after.
    learned: (() => {
      let models: KeyedModels | undefined;
      return () => (models ??= findKeyedModels('flow1//m'))?.modelOf('m1')?.recordsLearned ?? 0;
    })(),
  },
  { name: 'scorer', node: { id: 'n', type: 'stream-ml-anomaly-scorer', model: 'm', wires: [['out']] } },
  {
    name: 'scorer, one model per key',
    node: { id: 'n', type: 'stream-ml-anomaly-scorer', model: 'm', ...KEYED, wires: [['out']] },
  },
];

before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
afterEach(() => helper.unload());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const { name, node, learned } of cases) {
  test(`${name}: a message that arrives while it closes is completed unfinished, not handled`, async () => {
    await helper.load(NODES, [
      { id: 'flow1', type: 'tab' },
      { ...node, z: 'flow1' },
      { id: 'out', type: 'helper', z: 'flow1' },
    ]);
    const subject = helper.getNode('n') as Node;
    const reached: unknown[] = [];
    helper.getNode('out').on('input', (msg: unknown) => reached.push(msg));

    const before = { _msgid: 'before', payload: { machine: 'm1', a: 1 } } as NodeMessage;
    subject.receive(before);
    for (let i = 0; i < 100 && reached.length === 0; i++) await sleep(20);
    assert.equal(reached.length, 1, 'before its close, the node passes the message on');
    assert.equal(notFinishedReason(before), undefined);
    const learnedBefore = learned?.();
    if (learned) assert.equal(learnedBefore, 1);

    const closed = (subject as unknown as { close: (removed: boolean) => Promise<void> }).close(false);
    const during = { _msgid: 'during', payload: { machine: 'm1', a: 2 } } as NodeMessage;
    subject.receive(during);
    for (let i = 0; i < 100 && notFinishedReason(during) === undefined; i++) await sleep(20);
    await closed;
    assert.match(
      notFinishedReason(during) ?? '',
      /was closing/,
      'completed unfinished, so the consumer delivers it again',
    );
    assert.equal(reached.length, 1, 'nothing sent on into the stopping flow');
    if (learned) assert.equal(learned(), learnedBefore, 'not learned');
  });
}
