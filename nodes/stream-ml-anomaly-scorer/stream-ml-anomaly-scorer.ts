// Node-RED adapter for the anomaly scorer node.
import type { Node, NodeAPI, NodeDef } from 'node-red';

interface AnomalyScorerDef extends NodeDef {
  name: string;
  model: string;
}

export = function register(RED: NodeAPI): void {
  function AnomalyScorerNode(this: Node & Record<string, unknown>, config: AnomalyScorerDef): void {
    RED.nodes.createNode(this, config);
    // TODO: behaviour comes with the issue that fills in this node.
    this.status({ fill: 'grey', shape: 'ring', text: 'stream-ml-anomaly-scorer.status.notImplemented' });
  }
  RED.nodes.registerType('stream-ml-anomaly-scorer', AnomalyScorerNode);
};
