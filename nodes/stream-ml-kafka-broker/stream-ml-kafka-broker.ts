// Node-RED adapter for the Kafka broker config node: turns its settings and credentials into one KafkaConnection,
// created when the first consumer or producer asks for it and shared by all of them.
import type { Node, NodeAPI } from 'node-red';
import { KafkaConnection } from '../../src/kafka/connection';
import {
  brokerConfigFrom,
  type KafkaBrokerCredentials,
  type KafkaBrokerDef,
  type KafkaBrokerNode,
} from './broker-config';

export = function register(RED: NodeAPI): void {
  function KafkaBrokerNode(this: Node<KafkaBrokerCredentials>, def: KafkaBrokerDef): void {
    RED.nodes.createNode(this, def);
    const node = this as KafkaBrokerNode;
    let connection: KafkaConnection | undefined;
    node.connection = () => {
      if (!connection) {
        const config = brokerConfigFrom(def, this.credentials ?? {});
        config.log = (level, message) => {
          if (level === 'debug') this.debug(message);
          else if (level === 'warn') this.warn(message);
          else this.error(message);
        };
        connection = new KafkaConnection(config);
      }
      return connection;
    };
    const closeTimeout = Number((RED.settings as { nodeCloseTimeout?: number }).nodeCloseTimeout) || 15_000;
    this.on('close', (_removed: boolean, done: () => void) => {
      const current = connection;
      connection = undefined;
      if (!current) return done();
      // Users (a producer flushing its queue) close at the same time and deregister when finished.
      void current.closeWhenUnused(Math.max(1_000, closeTimeout - 1_000)).then(done, done);
    });
  }
  RED.nodes.registerType<Node<KafkaBrokerCredentials>, KafkaBrokerDef, object, KafkaBrokerCredentials>(
    'stream-ml-kafka-broker',
    KafkaBrokerNode,
    {
      credentials: {
        saslUsername: { type: 'text' },
        saslPassword: { type: 'password' },
        tlsKey: { type: 'password' },
        tlsPassphrase: { type: 'password' },
        registryUsername: { type: 'text' },
        registryPassword: { type: 'password' },
      },
    },
  );
};
