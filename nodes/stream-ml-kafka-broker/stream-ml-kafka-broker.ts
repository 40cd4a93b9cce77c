// Node-RED adapter for the kafka broker node. Config node.
import type { Node, NodeAPI, NodeDef } from 'node-red';

interface KafkaBrokerDef extends NodeDef {
  name: string;
  brokers: string;
  clientId: string;
}

export = function register(RED: NodeAPI): void {
  function KafkaBrokerNode(this: Node & Record<string, unknown>, config: KafkaBrokerDef): void {
    RED.nodes.createNode(this, config);
    this.brokers = config.brokers;
    this.clientId = config.clientId;
  }
  RED.nodes.registerType('stream-ml-kafka-broker', KafkaBrokerNode);
};
