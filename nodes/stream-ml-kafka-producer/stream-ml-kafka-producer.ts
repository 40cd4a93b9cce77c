// Node-RED adapter for the kafka producer node.
import type { Node, NodeAPI, NodeDef } from 'node-red';

interface KafkaProducerDef extends NodeDef {
  name: string;
  broker: string;
  topic: string;
}

export = function register(RED: NodeAPI): void {
  function KafkaProducerNode(this: Node & Record<string, unknown>, config: KafkaProducerDef): void {
    RED.nodes.createNode(this, config);
    // TODO: behaviour comes with the issue that fills in this node.
    this.status({ fill: 'grey', shape: 'ring', text: 'stream-ml-kafka-producer.status.notImplemented' });
  }
  RED.nodes.registerType('stream-ml-kafka-producer', KafkaProducerNode);
};
