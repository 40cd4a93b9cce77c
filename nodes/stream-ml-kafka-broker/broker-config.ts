// What the broker config node is, for the nodes that use it: its settings, its credentials, and how they become a
// KafkaConnection. Kept apart from the node's registration, which must be the module's only export.
import type { Node, NodeDef } from 'node-red';
import {
  parseBrokerList,
  type BrokerConfig,
  type KafkaConnection,
  type SaslMechanism,
} from '../../src/kafka/connection';

export interface KafkaBrokerDef extends NodeDef {
  brokers: string;
  clientId: string;
  tls: boolean;
  tlsCa: string;
  tlsCert: string;
  tlsRejectUnauthorized: boolean;
  saslMechanism: SaslMechanism;
  connectionTimeout: number | string;
  requestTimeout: number | string;
  reconnectMaxDelay: number | string;
  registryUrl: string;
}

export interface KafkaBrokerCredentials {
  saslUsername?: string;
  saslPassword?: string;
  tlsKey?: string;
  tlsPassphrase?: string;
  registryUsername?: string;
  registryPassword?: string;
}

export interface KafkaBrokerNode extends Node<KafkaBrokerCredentials> {
  /** The shared connection; throws when the configuration cannot make one (the caller shows why). */
  connection(): KafkaConnection;
}

function positive(value: number | string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export function brokerConfigFrom(def: KafkaBrokerDef, credentials: KafkaBrokerCredentials): BrokerConfig {
  const brokers = parseBrokerList(def.brokers ?? '');
  if (brokers.length === 0) throw new Error('no brokers configured');
  const config: BrokerConfig = {
    brokers,
    clientId: def.clientId?.trim() || 'node-red-stream-ml',
    connectionTimeoutMs: positive(def.connectionTimeout, 10_000),
    requestTimeoutMs: positive(def.requestTimeout, 30_000),
    reconnectMaxDelayMs: positive(def.reconnectMaxDelay, 30_000),
  };
  if (def.tls) {
    config.tls = {
      ca: def.tlsCa,
      cert: def.tlsCert,
      key: credentials.tlsKey,
      passphrase: credentials.tlsPassphrase,
      rejectUnauthorized: def.tlsRejectUnauthorized !== false,
    };
  }
  const mechanism = def.saslMechanism ?? 'none';
  if (mechanism !== 'none') {
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(mechanism))
      throw new Error(`unknown SASL mechanism ${mechanism}`);
    config.sasl = { mechanism, username: credentials.saslUsername ?? '', password: credentials.saslPassword ?? '' };
  }
  if (def.registryUrl?.trim()) {
    config.registry = {
      url: def.registryUrl.trim(),
      username: credentials.registryUsername,
      password: credentials.registryPassword,
      timeoutMs: config.requestTimeoutMs,
    };
  }
  return config;
}
