// Node-RED adapter for the Kafka producer node: a message in becomes a record queued for Kafka; done() is called
// when Kafka acknowledged it, or with the reason it could not be delivered (so a Catch node sees every failure).
// On close, records it could not send are reported together in one warning, as Node-RED stops the flow anyway, and
// marked unfinished so that a Kafka consumer upstream does not commit them.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { createEncoder, type Encoding } from '../../src/kafka/codecs';
import type { ConnectionState, KafkaConnection } from '../../src/kafka/connection';
import {
  COMPRESSION_TYPES,
  KafkaProducerWorker,
  ProducerClosedError,
  type Compression,
  type OutgoingRecord,
} from '../../src/kafka/producer';
import { atMost } from '../../src/kafka/sleep';
import { markNotFinished } from '../../src/node-red/unfinished';
import type { KafkaBrokerNode } from '../stream-ml-kafka-broker/broker-config';
import { compact, connectionStatus, RateMeter } from '../stream-ml-kafka-broker/status';

interface KafkaProducerDef extends NodeDef {
  broker: string;
  topic: string;
  keyEncoding: Encoding;
  valueEncoding: Encoding;
  valueSchema: string;
  subject: string;
  autoRegister: boolean;
  acks: string;
  compression: Compression;
  lingerMs: number | string;
  batchSize: number | string;
  /** An array payload: one record, or one record per element. */
  arrays?: 'record' | 'each';
  queueSize: number | string;
  ackTimeout: number | string;
}

function count(value: number | string | undefined, fallback: number, min = 1): number {
  const n = Math.floor(Number(value));
  return Number.isFinite(n) && n >= min ? n : fallback;
}

function headersOf(value: unknown): Record<string, string | Buffer> | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const out: Record<string, string | Buffer> = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined || v === null) continue;
    out[name] = Buffer.isBuffer(v) ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

function notSentWarning(count: number, reason: string | undefined): string {
  return `closed with ${count} record${count === 1 ? '' : 's'} not sent: ${reason ?? 'unknown reason'}`;
}

/**
 * A callback for `count` deliveries that calls `finish` once, after the last: with the first error, a record not
 * sent because of the close counting as one (so the message is not committed upstream).
 */
function allSettled(count: number, finish: (error?: Error) => void): (error?: Error) => void {
  if (count === 0) {
    finish();
    return () => undefined;
  }
  let left = count;
  let first: Error | undefined;
  return (error) => {
    if (error && (!first || (error instanceof ProducerClosedError && !(first instanceof ProducerClosedError))))
      first = error;
    if (--left === 0) finish(first);
  };
}

function timestampOf(value: unknown): string | undefined {
  if (value instanceof Date) return String(value.getTime());
  if (typeof value === 'number' && Number.isFinite(value)) return String(Math.floor(value));
  if (typeof value === 'string' && /^\d+$/.test(value)) return value;
  return undefined;
}

export = function register(RED: NodeAPI): void {
  function KafkaProducerNode(this: Node, def: KafkaProducerDef): void {
    RED.nodes.createNode(this, def);
    setUp(this, def);
  }

  function setUp(node: Node, def: KafkaProducerDef): void {
    const broker = RED.nodes.getNode(def.broker) as KafkaBrokerNode | null;
    let worker: KafkaProducerWorker | undefined;
    let connection: KafkaConnection | undefined;
    let failure: string | undefined;
    // Set once the close has reported its count: a record refused after that is reported on its own.
    let closeReported = false;
    const closeTimeout = Number((RED.settings as { nodeCloseTimeout?: number }).nodeCloseTimeout) || 15_000;
    const perElement = def.arrays === 'each';

    try {
      if (!broker) throw new Error('no Kafka broker configured');
      connection = broker.connection();
      const registry = connection.registry;
      const acks = def.acks === '0' ? 0 : def.acks === '1' ? 1 : -1;
      const compression = def.compression || 'none';
      // A hand-edited or imported flow may name a codec we cannot write (zstd): say so rather than send uncompressed.
      if (!Object.hasOwn(COMPRESSION_TYPES, compression))
        throw new Error(
          `compression "${String(compression)}" cannot be written; use ${Object.keys(COMPRESSION_TYPES).join(', ')}`,
        );
      worker = new KafkaProducerWorker(connection, {
        acks,
        compression,
        lingerMs: count(def.lingerMs, 5, 0),
        batchSize: count(def.batchSize, 500),
        maxQueued: count(def.queueSize, 10_000),
        ackTimeoutMs: count(def.ackTimeout, 30_000),
        key: createEncoder({ encoding: def.keyEncoding || 'string', part: 'key', registry }),
        value: createEncoder({
          encoding: def.valueEncoding || 'json',
          part: 'value',
          schema: def.valueSchema,
          subject: def.subject,
          autoRegister: def.autoRegister === true,
          registry,
        }),
      });
    } catch (error) {
      failure = (error as Error).message;
      node.error(failure);
      node.status({ fill: 'red', shape: 'dot', text: failure.slice(0, 80) });
    }

    const meter = new RateMeter();
    let lastText = '';
    const showStatus = (): void => {
      if (!worker || !connection || failure) return;
      const s = worker.stats;
      const rate = meter.update(s.sent);
      const parts = [`${compact(rate)} rec/s`];
      if (s.queued > 0) parts.push(`${compact(s.queued)} queued`);
      if (s.failed + s.refused > 0) parts.push(`${compact(s.failed + s.refused)} errors`);
      let status = connectionStatus(connection.state);
      if (status && s.queued > 0) status = { ...status, text: `${status.text} · ${compact(s.queued)} queued` };
      if (!status)
        status = { fill: s.failed + s.refused > 0 ? 'yellow' : 'green', shape: 'dot', text: parts.join(' · ') };
      const key = `${status.fill}${status.shape}${status.text}`;
      if (key !== lastText) {
        lastText = key;
        node.status(status);
      }
    };
    const onState = (_state: ConnectionState): void => showStatus();
    if (worker && connection) {
      connection.register(node);
      connection.on('state', onState);
      worker.start();
      node.status({ fill: 'grey', shape: 'ring', text: 'ready' });
    }
    const statusTimer = setInterval(showStatus, 1000);

    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      if (!worker) {
        done(new Error(failure ?? 'producer not configured'));
        return;
      }
      const m = msg as NodeMessageInFlow & {
        key?: unknown;
        partition?: unknown;
        headers?: unknown;
        timestamp?: unknown;
      };
      const topic = def.topic?.trim() || (typeof msg.topic === 'string' ? msg.topic.trim() : '');
      if (!topic) {
        done(new Error('no topic: set one in the node or in msg.topic'));
        return;
      }
      const base: Omit<OutgoingRecord, 'value'> = { topic };
      const partition = Number(m.partition);
      if (m.partition !== undefined && m.partition !== null && m.partition !== '') {
        if (!Number.isInteger(partition) || partition < 0) {
          done(new Error(`msg.partition must be a partition number, not ${String(m.partition)}`));
          return;
        }
        base.partition = partition;
      }
      const headers = headersOf(m.headers);
      if (headers) base.headers = headers;
      const timestamp = timestampOf(m.timestamp);
      if (timestamp) base.timestamp = timestamp;
      const current = worker;
      if (perElement && Array.isArray(msg.payload)) {
        const values = msg.payload as unknown[];
        const keys = Array.isArray(m.key) && m.key.length === values.length ? (m.key as unknown[]) : undefined;
        const finish = allSettled(values.length, (error) => finishRecord(msg, error, done));
        for (let i = 0; i < values.length; i++)
          current.send({ ...base, key: keys ? keys[i] : m.key, value: values[i] }, finish);
        return;
      }
      current.send({ ...base, key: m.key, value: msg.payload }, (error) => finishRecord(msg, error, done));
    });

    // The message's outcome from its record's (or records') delivery.
    function finishRecord(msg: NodeMessageInFlow, error: Error | undefined, done: (error?: Error) => void): void {
      if (error instanceof ProducerClosedError) {
        // Counted in the close's warning; done() without an error, as Node-RED's own nodes do on close, but
        // marked so that a Kafka consumer upstream does not commit it: it is delivered again, not lost.
        if (closeReported) node.warn(notSentWarning(1, error.reason));
        markNotFinished(msg, error.message);
        done();
      } else if (error) done(error);
      else done();
    }

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(statusTimer);
      // The worker stays: Node-RED delivers messages already on their way until this close is done.
      const current = worker;
      if (!current || !connection) return done();
      const conn = connection;
      conn.off('state', onState);
      const started = Date.now();
      // Messages the runtime routed here just before the stop arrive in the next turn of the event loop: let them
      // join the queue first. Then flush within Node-RED's close timeout, with a margin for the shared producer.
      void new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => current.close(Math.max(500, closeTimeout - 3_000)))
        .then((result) => {
          closeReported = true;
          if (result.notSent > 0) node.warn(notSentWarning(result.notSent, result.reason));
          return atMost(conn.deregister(node), Math.max(0, closeTimeout - 500 - (Date.now() - started)));
        })
        .then(
          () => done(),
          () => done(),
        );
    });
  }
  RED.nodes.registerType('stream-ml-kafka-producer', KafkaProducerNode);
};
