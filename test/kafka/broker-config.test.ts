// How the broker config node's settings and credentials become the connection's configuration.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { brokerConfigFrom, type KafkaBrokerDef } from '../../nodes/stream-ml-kafka-broker/broker-config';
import { KafkaConnection } from '../../src/kafka/connection';

const base = {
  id: 'b',
  type: 'stream-ml-kafka-broker',
  name: '',
  z: '',
  brokers: 'h1:9092, h2:9093',
  clientId: '',
  tls: false,
  tlsCa: '',
  tlsCert: '',
  tlsRejectUnauthorized: true,
  saslMechanism: 'none',
  connectionTimeout: '',
  requestTimeout: 5000,
  reconnectMaxDelay: '2000',
  registryUrl: '',
} as unknown as KafkaBrokerDef;

test('brokers, defaults and timeouts', () => {
  const config = brokerConfigFrom(base, {});
  assert.deepEqual(config.brokers, ['h1:9092', 'h2:9093']);
  assert.equal(config.clientId, 'node-red-stream-ml');
  assert.equal(config.connectionTimeoutMs, 10_000);
  assert.equal(config.requestTimeoutMs, 5_000);
  assert.equal(config.reconnectMaxDelayMs, 2_000);
  assert.equal(config.sasl, undefined);
  assert.equal(config.tls, undefined);
  assert.throws(() => brokerConfigFrom({ ...base, brokers: ' ' }, {}), /no brokers/);
});

test('SASL and registry secrets come from the credentials', () => {
  const config = brokerConfigFrom(
    { ...base, saslMechanism: 'scram-sha-512', registryUrl: 'http://registry:8081/' },
    { saslUsername: 'u', saslPassword: 'p', registryUsername: 'ru', registryPassword: 'rp' },
  );
  assert.deepEqual(config.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'p' });
  assert.equal(config.registry?.url, 'http://registry:8081/');
  assert.equal(config.registry?.password, 'rp');
  assert.throws(() => brokerConfigFrom({ ...base, saslMechanism: 'kerberos' as never }, {}), /unknown SASL/);
});

test('TLS takes PEM text or a file path, and the key from the credentials', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-tls-'));
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nfrom-file\n-----END CERTIFICATE-----\n');
  const config = brokerConfigFrom(
    { ...base, tls: true, tlsCa: caFile, tlsCert: '-----BEGIN CERTIFICATE-----\ninline\n-----END CERTIFICATE-----' },
    { tlsKey: '-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----', tlsPassphrase: 'pp' },
  );
  assert.equal(config.tls?.rejectUnauthorized, true);
  assert.equal(config.tls?.passphrase, 'pp');
  // The connection reads the CA file when it builds the client.
  const connection = new KafkaConnection(config);
  assert.ok(connection.kafka);
  await connection.close();
  assert.throws(
    () => new KafkaConnection({ ...config, tls: { rejectUnauthorized: true, ca: path.join(dir, 'missing.pem') } }),
    /ENOENT/,
  );
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(
    brokerConfigFrom({ ...base, tls: true, tlsRejectUnauthorized: false }, {}).tls?.rejectUnauthorized,
    false,
  );
});
