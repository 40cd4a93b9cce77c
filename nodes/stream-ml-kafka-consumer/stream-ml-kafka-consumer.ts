// Node-RED adapter for the Kafka consumer node: settings in, records out as messages, status, and the malformed
// records policy. The consuming itself (backpressure, commits, reconnects, what happens to records the flow failed)
// is KafkaConsumerWorker's; the flow tracker tells it when and how the flow finished with each message.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { createDecoder, type Encoding, type MalformedRecordError } from '../../src/kafka/codecs';
import type { ConnectionState, KafkaConnection } from '../../src/kafka/connection';
import {
  KafkaConsumerWorker,
  parseTopics,
  type ConsumedChunk,
  type ConsumedRecord,
  type FailurePolicy,
  type RawRecord,
} from '../../src/kafka/consumer';
import type { KafkaBrokerNode } from '../stream-ml-kafka-broker/broker-config';
import { compact, connectionStatus, RateMeter } from '../stream-ml-kafka-broker/status';
import { flowTracker, formatTimeout } from './flow-tracker';

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
  onFailure: 'commit' | 'retry' | 'pause';
  retries: number | string;
  retryBackoff: number | string;
  deadLetterTopic: string;
  stuckTimeout: number | string;
  tombstones: 'skip' | 'pass';
}

function positiveInt(value: number | string | undefined, fallback: number): number {
  const n = Math.floor(Number(value));
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** A whole number of at least `min` from the dialog; empty means the default, anything else is refused. */
function wholeNumber(value: number | string | undefined, fallback: number, what: string, min = 0): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${what} must be a whole number of ${min} or more, not "${value}"`);
  return n;
}

function failurePolicy(def: KafkaConsumerDef): FailurePolicy {
  switch (def.onFailure ?? 'commit') {
    case 'commit':
      return { kind: 'commit' };
    case 'pause':
      return { kind: 'pause' };
    case 'retry': {
      const deadLetterTopic = (def.deadLetterTopic ?? '').trim();
      if (!deadLetterTopic) throw new Error('"retry, then dead-letter topic" needs a dead-letter topic');
      return {
        kind: 'retry',
        retries: wholeNumber(def.retries, 3, 'retries'),
        backoffMs: wholeNumber(def.retryBackoff, 1000, 'the retry backoff'),
        deadLetterTopic,
      };
    }
    default:
      throw new Error(`unknown failure policy "${String(def.onFailure)}"`);
  }
}

/** `topic[partition]@offset`, or the offset range of a chunk. */
function whereFrom(payload: ConsumedRecord | ConsumedChunk): string {
  if (!('values' in payload)) return `${payload.topic}[${payload.partition}]@${payload.offset}`;
  const { offsets } = payload;
  const range = offsets.length > 1 ? `${offsets[0]}-${offsets[offsets.length - 1]}` : offsets[0];
  return `${payload.topic}[${payload.partition}]@${range}`;
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
    const tracker = flowTracker(RED);
    let stuckTimeoutMs = 60_000;
    /** The latest record the pause policy stopped a partition on, for the status. */
    let haltedAt = '';

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
      const onFailure = failurePolicy(def);
      stuckTimeoutMs = wholeNumber(def.stuckTimeout, 60_000, 'the stuck timeout (ms)', 1);
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
          onFailure,
          tombstones: def.tombstones === 'pass' ? 'pass' : 'skip',
        },
        {
          deliver: (payload, complete) => tracker.send(node, toMessage(payload), stuckTimeoutMs, complete),
          malformed: (raw, reason, complete) => onMalformed(raw, reason, complete),
          warn: (message) => node.warn(message),
          halted: (payload, reason) => onHalted(payload, reason),
        },
      );
    } catch (error) {
      fail((error as Error).message);
    }

    function toMessage(payload: ConsumedRecord | ConsumedChunk): NodeMessage {
      if (!('values' in payload)) {
        const { topic, partition, offset, timestamp, headers, attempt } = payload;
        const kafka =
          attempt === undefined
            ? { topic, partition, offset, timestamp, headers }
            : { topic, partition, offset, timestamp, headers, attempt };
        return { topic, payload: payload.value, key: payload.key, kafka } as NodeMessage;
      }
      const { topic, partition, values, keys, offsets, timestamps, headers, attempt } = payload;
      const kafka: Record<string, unknown> = {
        topic,
        partition,
        firstOffset: offsets[0],
        lastOffset: offsets[offsets.length - 1],
        count: values.length,
        keys,
        offsets,
        timestamps,
        headers,
      };
      if (attempt !== undefined) kafka.attempt = attempt;
      return { topic, payload: values, kafka } as NodeMessage;
    }

    // Pause policy: the error goes to Catch nodes with the record, and the status says where the partition stopped.
    function onHalted(payload: ConsumedRecord | ConsumedChunk, reason: string): void {
      const where = whereFrom(payload);
      haltedAt = `${where}: ${reason}`;
      node.error(
        `${where} failed (${reason}): partition ${payload.topic}[${payload.partition}] stopped on it; ` +
          'send msg.resume to retry it',
        toMessage(payload),
      );
      showStatus();
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
        // Committed however the flow ends with it: the failure policy is for records that decoded.
        tracker.send(node, [null, msg], stuckTimeoutMs, () => complete());
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
      if (s.tombstones > 0) parts.push(`${compact(s.tombstones)} tombstones skipped`);
      if (s.failed > 0) parts.push(`${compact(s.failed)} failed`);
      if (s.stuck > 0) parts.push(`${compact(s.stuck)} stuck (>${formatTimeout(stuckTimeoutMs)})`);
      if (s.unfinished > 0) parts.push(`${compact(s.unfinished)} redelivered (a node closed)`);
      if (s.retried > 0) parts.push(`${compact(s.retried)} retries`);
      if (s.deadLettered > 0) parts.push(`${compact(s.deadLettered)} dead-lettered`);
      if (s.deadLetterProblem) parts.push(`dead-letter topic failing: ${s.deadLetterProblem}`);
      let status = waiting;
      if (!status) {
        if (s.halted > 0) {
          const stopped = s.halted > 1 ? `${s.halted} partitions stopped, last at` : 'stopped at';
          status = { fill: 'red', shape: 'ring', text: `${stopped} ${haltedAt} · resume to retry` };
        } else if (s.paused) status = { fill: 'yellow', shape: 'ring', text: `paused · ${parts.join(' · ')}` };
        else if (s.waiting)
          status = { fill: 'blue', shape: 'dot', text: `waiting: ${s.inFlight} in flow · ${parts.join(' · ')}` };
        else if (s.assigned === 0) status = { fill: 'yellow', shape: 'ring', text: 'joining group' };
        else {
          const troubled = s.malformed + s.failed > 0 || s.deadLetterProblem !== undefined;
          status = { fill: troubled ? 'yellow' : 'green', shape: 'dot', text: parts.join(' · ') };
        }
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
      tracker.acquire(stuckTimeoutMs);
      worker.start();
      showStatus();
    }
    const statusTimer = setInterval(showStatus, 1000);

    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      const command = msg as NodeMessageInFlow & { pause?: unknown; resume?: unknown };
      if (!worker) return done();
      if (command.pause === true || msg.topic === 'pause') worker.pause();
      else if (command.resume === true || msg.topic === 'resume') {
        haltedAt = '';
        worker.resume();
      }
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
