// The flow tracker against Node-RED's hook events as the runtime fires them (preRoute per wire, then preDeliver when
// the destination node is there, onReceive for a Catch node, onComplete per done()), here fired by hand: what it
// makes of a message a closing node completed unfinished, of one sent on to a node that had stopped, of one failed
// into a Catch node, and of one a learner holds for its checkpoint past the stuck timeout.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Node, NodeMessage } from 'node-red';
import { FlowTracker } from '../../nodes/stream-ml-kafka-consumer/flow-tracker';
import type { DeliveryOutcome } from '../../src/kafka/consumer';
import { holdMessage, markNotFinished, releaseMessage } from '../../src/node-red/unfinished';

type Hook = (event: unknown) => void;

function runtime(): {
  tracker: FlowTracker;
  node: Node;
  complete(msg: NodeMessage, error?: Error): void;
  sendToStopped(msg: NodeMessage): void;
  catchReceives(msg: NodeMessage): void;
} {
  const hooks = new Map<string, Hook>();
  const tracker = new FlowTracker({ add: (name, hook) => hooks.set(name.split('.')[0], hook), remove: () => {} });
  // One node wired to the consumer: each send is one route and one delivery.
  const node = {
    send: (msg: NodeMessage) => {
      hooks.get('preRoute')?.({ msg });
      hooks.get('preDeliver')?.({ msg, destination: { node: {} } });
    },
  } as unknown as Node;
  const complete = (msg: NodeMessage, error?: Error): void => hooks.get('onComplete')?.({ msg, error });
  // The runtime no longer has the destination (a redeploy stopped it): routed, and dropped before preDeliver.
  const sendToStopped = (msg: NodeMessage): void => hooks.get('preRoute')?.({ msg });
  // Node-RED gives a Catch node a copy of a message completed with an error: no route, a receive.
  const catchReceives = (msg: NodeMessage): void =>
    hooks.get('onReceive')?.({ msg: { ...msg }, destination: { node: { type: 'catch' } } });
  return { tracker, node, complete, sendToStopped, catchReceives };
}

/** Lets the microtask that finishes a message run. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('FlowTracker', () => {
  it('reports a message completed unfinished as such, not as a success or a plain failure', async () => {
    const { tracker, node, complete } = runtime();
    tracker.acquire(60_000);
    const outcomes: DeliveryOutcome[] = [];
    const ok = { payload: 1 } as NodeMessage;
    const unsent = { payload: 2 } as NodeMessage;
    tracker.send(node, ok, 60_000, (o) => outcomes.push(o));
    tracker.send(node, unsent, 60_000, (o) => outcomes.push(o));
    complete(ok);
    markNotFinished(unsent, 'producer closed: record not sent');
    complete(unsent);
    await settled();
    tracker.release();
    assert.deepEqual(outcomes, [{}, { error: 'producer closed: record not sent', unfinished: true }]);
  });

  it('finishes a message sent on to a node that had stopped as unfinished, and one sent on as usual as done', async () => {
    const { tracker, node, complete, sendToStopped } = runtime();
    tracker.acquire(60_000);
    const outcomes: DeliveryOutcome[] = [];
    const lost = { payload: 1 } as NodeMessage;
    const passed = { payload: 2 } as NodeMessage;
    tracker.send(node, lost, 60_000, (o) => outcomes.push(o));
    tracker.send(node, passed, 60_000, (o) => outcomes.push(o));
    // The first node passes both on: the first to a node that had stopped, the second to one that takes it.
    sendToStopped(lost);
    complete(lost);
    node.send(passed);
    complete(passed);
    await settled();
    assert.equal(outcomes.length, 1, 'the message delivered on is not finished before its last node is done');
    complete(passed);
    await settled();
    tracker.release();
    assert.deepEqual(outcomes, [{ error: 'sent on to a node that had stopped (a redeploy)', unfinished: true }, {}]);
  });

  it('waits for the Catch node that a done(error) hands the message to, and for the nodes after it', async () => {
    const { tracker, node, complete, catchReceives } = runtime();
    tracker.acquire(60_000);
    const outcomes: DeliveryOutcome[] = [];
    const failed = { payload: 1 } as NodeMessage;
    tracker.send(node, failed, 60_000, (o) => outcomes.push(o));
    // As Node._complete does: onComplete first, then the Catch node's receive, in the same turn.
    complete(failed, new Error('bad record'));
    catchReceives(failed);
    await settled();
    assert.equal(outcomes.length, 0, 'not finished while the Catch node has it');
    node.send(failed); // the Catch node passes it on...
    complete(failed); // ...and is done
    await settled();
    assert.equal(outcomes.length, 0, 'not finished while the node after the Catch node has it');
    complete(failed);
    await settled();
    tracker.release();
    assert.deepEqual(outcomes, [{ error: 'bad record' }]);
  });

  it('never counts a held message as stuck, and sweeps it once released', async () => {
    const { tracker, node, complete } = runtime();
    tracker.acquire(40);
    const outcomes: DeliveryOutcome[] = [];
    const held = { payload: 1 } as NodeMessage;
    const plain = { payload: 2 } as NodeMessage;
    tracker.send(node, held, 40, (o) => outcomes.push(o));
    tracker.send(node, plain, 40, (o) => outcomes.push(o));
    holdMessage(held._msgid);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(outcomes.length, 1, 'only the message nobody holds is stuck');
    assert.equal(outcomes[0].stuck, true);
    releaseMessage(held._msgid);
    complete(held);
    await settled();
    tracker.release();
    assert.deepEqual(outcomes[1], {});
  });
});
