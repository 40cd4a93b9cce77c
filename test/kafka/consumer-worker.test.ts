// KafkaConsumerWorker's supervision loop without a broker: a consumer that keeps failing to connect is replaced
// pass after pass, and those passes must not pile up listeners (a long outage would leak one per pass).
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import type { KafkaConnection } from '../../src/kafka/connection';
import { KafkaConsumerWorker, type ConsumerOptions } from '../../src/kafka/consumer';
import type { Decoder } from '../../src/kafka/codecs';

function failingConnection(): { connection: KafkaConnection; attempts: () => number } {
  let attempts = 0;
  const fakeConsumer = () => ({
    events: { CRASH: 'crash', FETCH: 'fetch', HEARTBEAT: 'heartbeat', GROUP_JOIN: 'join' },
    on: () => undefined,
    connect: async () => {
      attempts++;
      throw new Error('connect ECONNREFUSED 127.0.0.1:9');
    },
    disconnect: async () => undefined,
  });
  const connection = {
    createConsumer: fakeConsumer,
    reportConnecting: () => undefined,
    reportConnected: () => undefined,
    reportFailure: () => 'retriable',
    retryDelay: () => 1,
  } as unknown as KafkaConnection;
  return { connection, attempts: () => attempts };
}

const passThrough: Decoder = { decode: (b: Buffer | null) => b } as unknown as Decoder;
const options: ConsumerOptions = {
  groupId: 'g',
  topics: ['t'],
  fromBeginning: true,
  output: 'record',
  batchSize: 10,
  maxInFlight: 10,
  key: passThrough,
  value: passThrough,
  commitIntervalMs: 1000,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1000,
  drainOnCloseMs: 10,
  onFailure: { kind: 'commit' },
  tombstones: 'pass',
};

test('a consumer that cannot connect is retried without piling up abort listeners, and closes at once', async () => {
  const { connection, attempts } = failingConnection();
  const worker = new KafkaConsumerWorker(connection, options, {
    deliver: () => undefined,
    malformed: () => undefined,
    warn: () => undefined,
    halted: () => undefined,
  });
  worker.start();
  let closed = false;
  try {
    const deadline = Date.now() + 10_000;
    // Bounded by the deadline.
    while (attempts() < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.ok(attempts() >= 40, `40 connection attempts, got ${attempts()}`);
    const signal = (worker as unknown as { abort: AbortController }).abort.signal;
    const listeners = getEventListeners(signal, 'abort').length;
    assert.ok(listeners <= 2, `${listeners} abort listeners after ${attempts()} passes`);
    const started = Date.now();
    await worker.close();
    closed = true;
    assert.ok(Date.now() - started < 2_000, 'close does not wait out a backoff');
  } finally {
    if (!closed) await worker.close();
  }
});
