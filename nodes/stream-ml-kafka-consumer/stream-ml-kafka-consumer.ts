// Node-RED adapter for the kafka consumer node.
import type { Node, NodeAPI, NodeDef } from 'node-red';

interface KafkaConsumerDef extends NodeDef {
  name: string;
  broker: string;
  topics: string;
}

export = function register(RED: NodeAPI): void {
  function KafkaConsumerNode(this: Node & Record<string, unknown>, config: KafkaConsumerDef): void {
    RED.nodes.createNode(this, config);
    // TODO: behaviour comes with the issue that fills in this node.
    this.status({ fill: 'grey', shape: 'ring', text: 'stream-ml-kafka-consumer.status.notImplemented' });
  }
  RED.nodes.registerType('stream-ml-kafka-consumer', KafkaConsumerNode);
};
