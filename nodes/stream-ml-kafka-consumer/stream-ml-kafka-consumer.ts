// Node-RED adapter for the Kafka consumer node: settings in, records out as messages, status, and the malformed
// records policy. The consuming itself (backpressure, commits, reconnects) is KafkaConsumerWorker's.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { createDecoder, type Encoding, type MalformedRecordError } from '../../src/kafka/codecs';
import type { ConnectionState, KafkaConnection } from '../../src/kafka/connection';
import {
  KafkaConsumerWorker,
  parseTopics,
  type ConsumedChunk,
  type ConsumedRecord,
  type RawRecord,
} from '../../src/kafka/consumer';
import type { KafkaBrokerNode } from '../stream-ml-kafka-broker/broker-config';
import { compact, connectionStatus, RateMeter } from '../stream-ml-kafka-broker/status';
import { flowTracker } from './flow-tracker';

type MalformedPolicy = 'warn' | 'catch' | 'output';

interface KafkaConsumerDef extends NodeDef {
  broker: string;
  topics: string;
  topicsAreRegex: boolean;
  groupId: string;
  fromBeginning: boolean | string;
  output: 'record' | 'batch';
  batchSize: number | string;
  keyEncoding: Encoding;
  valueEncoding: Encoding;
  valueSchema: string;
  malformed: MalformedPolicy;
  maxInFlight: number | string;
  commitInterval: number | string;
  sessionTimeout: number | string;
}

const STUCK_TIMEOUT_MS = 60_000;

function positiveInt(value: number | string | undefined, fallback: number): number {
  const n = Math.floor(Number(value));
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export = function register(RED: NodeAPI): void {
  function KafkaConsumerNode(this: Node, def: KafkaConsumerDef): void {
    RED.nodes.createNode(this, def);
    setUp(this, def);
  }

  function setUp(node: Node, def: KafkaConsumerDef): void {
    const broker = RED.nodes.getNode(def.broker) as KafkaBrokerNode | null;
    const policy: MalformedPolicy = def.malformed ?? 'warn';
    let worker: KafkaConsumerWorker | undefined;
    let failure: string | undefined;
    const tracker = flowTracker(RED, STUCK_TIMEOUT_MS);

    const fail = (message: string): void => {
      failure = message;
      node.error(message);
      node.status({ fill: 'red', shape: 'dot', text: message.slice(0, 80) });
    };

    let connection: KafkaConnection | undefined;
    try {
      if (!broker) throw new Error('no Kafka broker configured');
      const topics = parseTopics(def.topics, def.topicsAreRegex === true);
      if (topics.length === 0) throw new Error('no topics configured');
      connection = broker.connection();
      const registry = connection.registry;
      const output = def.output === 'batch' ? 'batch' : 'record';
      worker = new KafkaConsumerWorker(
        connection,
        {
          groupId: def.groupId?.trim() || `node-red-stream-ml-${node.id}`,
          topics,
          fromBeginning: def.fromBeginning === true || def.fromBeginning === 'earliest' || def.fromBeginning === 'true',
          output,
          batchSize: positiveInt(def.batchSize, 100),
          maxInFlight: positiveInt(def.maxInFlight, output === 'batch' ? 10 : 1000),
          key: createDecoder({ encoding: def.keyEncoding || 'string', part: 'key', registry }),
          value: createDecoder({
            encoding: def.valueEncoding || 'json',
            part: 'value',
            schema: def.valueSchema,
            registry,
          }),
          commitIntervalMs: positiveInt(def.commitInterval, 1000),
          sessionTimeoutMs: positiveInt(def.sessionTimeout, 30_000),
          heartbeatIntervalMs: Math.max(500, Math.floor(positiveInt(def.sessionTimeout, 30_000) / 10)),
          drainOnCloseMs: 2_000,
        },
        {
          deliver: (payload, complete) => tracker.send(node, toMessage(payload), complete),
          malformed: (raw, reason, complete) => onMalformed(raw, reason, complete),
          warn: (message) => node.warn(message),
        },
      );
    } catch (error) {
      fail((error as Error).message);
    }

    function toMessage(payload: ConsumedRecord | ConsumedChunk): NodeMessage {
      if (!('values' in payload)) {
        const { topic, partition, offset, timestamp, headers } = payload;
        return {
          topic,
          payload: payload.value,
          key: payload.key,
          kafka: { topic, partition, offset, timestamp, headers },
        } as NodeMessage;
      }
      const { topic, partition, values, keys, offsets, timestamps, headers } = payload;
      return {
        topic,
        payload: values,
        kafka: {
          topic,
          partition,
          firstOffset: offsets[0],
          lastOffset: offsets[offsets.length - 1],
          count: values.length,
          keys,
          offsets,
          timestamps,
          headers,
        },
      } as NodeMessage;
    }

    function onMalformed(raw: RawRecord, reason: MalformedRecordError, complete: () => void): void {
      const where = `${raw.topic}[${raw.partition}]@${raw.offset}`;
      const msg = {
        topic: raw.topic,
        payload: raw.value,
        key: raw.key,
        kafka: {
          topic: raw.topic,
          partition: raw.partition,
          offset: raw.offset,
          timestamp: raw.timestamp,
          headers: raw.headers,
        },
        error: { message: reason.message, part: reason.part, source: where },
      } as NodeMessage;
      if (policy === 'output') {
        tracker.send(node, [null, msg], complete);
      } else if (policy === 'catch') {
        node.error(`malformed record ${where}: ${reason.message}`, msg);
        complete();
      } else {
        node.warn(`skipped malformed record ${where}: ${reason.message}`);
        complete();
      }
    }

    // Status: the connection's state when it is not connected, else this node's figures, refreshed each second.
    const meter = new RateMeter();
    let lastText = '';
    const showStatus = (): void => {
      if (!worker || !connection || failure) return;
      const waiting = connectionStatus(connection.state);
      const s = worker.stats;
      const rate = meter.update(s.received);
      const parts = [`${compact(rate)} rec/s`, `lag ${compact(s.lag)}`];
      if (s.malformed > 0) parts.push(`${compact(s.malformed)} malformed`);
      if (tracker.stuck > 0) parts.push(`${compact(tracker.stuck)} stuck`);
      let status = waiting;
      if (!status) {
        if (s.paused) status = { fill: 'yellow', shape: 'ring', text: `paused · ${parts.join(' · ')}` };
        else if (s.waiting)
          status = { fill: 'blue', shape: 'dot', text: `waiting: ${s.inFlight} in flow · ${parts.join(' · ')}` };
        else if (s.assigned === 0) status = { fill: 'yellow', shape: 'ring', text: 'joining group' };
        else status = { fill: s.malformed > 0 ? 'yellow' : 'green', shape: 'dot', text: parts.join(' · ') };
      }
      const key = `${status.fill}${status.shape}${status.text}`;
      if (key !== lastText) {
        lastText = key;
        node.status(status);
      }
    };
    const onState = (_state: ConnectionState): void => showStatus();

    if (worker && connection && broker) {
      connection.register(node);
      connection.on('state', onState);
      tracker.acquire();
      worker.start();
      showStatus();
    }
    const statusTimer = setInterval(showStatus, 1000);

    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      const command = msg as NodeMessageInFlow & { pause?: unknown; resume?: unknown };
      if (!worker) return done();
      if (command.pause === true || msg.topic === 'pause') worker.pause();
      else if (command.resume === true || msg.topic === 'resume') worker.resume();
      showStatus();
      done();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(statusTimer);
      const current = worker;
      worker = undefined;
      if (!current || !connection) return done();
      const conn = connection;
      conn.off('state', onState);
      void current
        .close()
        .catch((error: unknown) => node.warn(`close: ${(error as Error).message}`))
        .then(() => {
          tracker.release();
          return conn.deregister(node);
        })
        .then(
          () => done(),
          () => done(),
        );
    });
  }
  RED.nodes.registerType('stream-ml-kafka-consumer', KafkaConsumerNode);
};
