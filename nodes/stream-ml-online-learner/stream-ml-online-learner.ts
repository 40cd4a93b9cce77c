// Node-RED adapter for the online learner node.
import type { Node, NodeAPI, NodeDef } from 'node-red';

interface OnlineLearnerDef extends NodeDef {
  name: string;
  model: string;
}

export = function register(RED: NodeAPI): void {
  function OnlineLearnerNode(this: Node & Record<string, unknown>, config: OnlineLearnerDef): void {
    RED.nodes.createNode(this, config);
    // TODO: behaviour comes with the issue that fills in this node.
    this.status({ fill: 'grey', shape: 'ring', text: 'stream-ml-online-learner.status.notImplemented' });
  }
  RED.nodes.registerType('stream-ml-online-learner', OnlineLearnerNode);
};
