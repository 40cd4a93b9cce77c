// Consumer logic on kafkajs, knowing nothing of Node-RED: it hands decoded records (one by one or in chunks) to a
// deliver callback and is told through a completion callback when the flow has finished with each. From that it
// applies backpressure (no more than maxInFlight undelivered messages) and commits, per partition, only offsets
// whose records and all before them are complete. A record the flow failed is, by the failure policy, committed
// all the same, retried and then written to a dead-letter topic, or held with its partition stopped until resume().
// It supervises its kafkajs consumer itself, so a broker restart or a crash ends in a fresh consumer after a backoff
// whose due time is reported, instead of a consumer that is gone.
import { setMaxListeners } from 'node:events';
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import { MalformedRecordError, RegistryUnavailableError, type Decoder } from './codecs';
import type { KafkaConnection } from './connection';
import { DeadLetterWriter } from './dead-letter';
import { errorMessage } from './errors';
import { atMost, sleep } from './sleep';

export interface ConsumedRecord {
  topic: string;
  partition: number;
  /** Kafka offsets are 64-bit: kept as a decimal string. */
  offset: string;
  key: unknown;
  value: unknown;
  timestamp: number;
  headers: Record<string, string | string[]>;
  /** On a retry: which delivery of the record this is (2 for the first retry). */
  attempt?: number;
}

/** Batch output: up to batchSize records of one partition, column by column (a dataframe chunk). */
export interface ConsumedChunk {
  topic: string;
  partition: number;
  values: unknown[];
  keys: unknown[];
  offsets: string[];
  timestamps: number[];
  headers: Record<string, string | string[]>[];
  /** On a retry: which delivery of the chunk this is (2 for the first retry). */
  attempt?: number;
}

export interface RawRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers: Record<string, string | string[]>;
}

/** What the flow said about a message when it finished with it. */
export interface DeliveryOutcome {
  /** Why it failed (a node's done(error), or the stuck timeout); absent when it succeeded. */
  error?: string;
  /** It failed by not finishing within the stuck timeout. */
  stuck?: boolean;
  /**
   * A node stopped before it could finish it (a producer closing with it unsent): never committed, whatever the
   * policy; delivered again soon while this consumer runs on, else by whoever reads the partition next.
   */
  unfinished?: boolean;
}

const FETCH_MAX_BYTES = 1_048_576;
const FETCH_MAX_BYTES_PER_PARTITION = 262_144;

/**
 * Records handed to the flow before the fetch loop yields to the event loop. Node-RED delivers each message on its
 * own turn of the loop, so without a pause a fetch of 1,000 records reaches the first node 1,000 times before the
 * second sees any: a scorer would judge records a learner learns only much later.
 */
const HANDOVER_BURST = 32;

/** How long an unfinished delivery waits before it is delivered again (a redeployed node is back by then). */
const UNFINISHED_REDELIVERY_MS = 1_000;

/** What happens to a record (or chunk) the flow failed. */
export type FailurePolicy =
  | { kind: 'commit' }
  | { kind: 'retry'; retries: number; backoffMs: number; deadLetterTopic: string }
  | { kind: 'pause' };

/** Records with a null value (tombstones): left out, or handed to the flow with a null value. */
export type TombstonePolicy = 'skip' | 'pass';

/** Longest wait between two retries, however the backoff doubles (unless the backoff itself is longer). */
const MAX_RETRY_WAIT_MS = 60_000;

export interface ConsumerOptions {
  groupId: string;
  topics: (string | RegExp)[];
  fromBeginning: boolean;
  output: 'record' | 'batch';
  /** Most records in one batch-mode message. */
  batchSize: number;
  /** Messages handed to the flow and not yet complete, above which fetching waits. */
  maxInFlight: number;
  key: Decoder;
  value: Decoder;
  commitIntervalMs: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** On close, how long to wait for messages still in the flow before the last commit. */
  drainOnCloseMs: number;
  onFailure: FailurePolicy;
  tombstones: TombstonePolicy;
}

export interface ConsumerHandlers {
  /** Hands a record or chunk to the flow; `complete` is called once, when the flow has finished with it. */
  deliver(payload: ConsumedRecord | ConsumedChunk, complete: (outcome?: DeliveryOutcome) => void): void;
  malformed(raw: RawRecord, reason: MalformedRecordError, complete: () => void): void;
  /** Something the user should see that is not a record's fault (bad topic, commit failure, a dead letter). */
  warn(message: string): void;
  /** Under the pause policy: the flow failed this record or chunk, and its partition is stopped on it. */
  halted(payload: ConsumedRecord | ConsumedChunk, reason: string): void;
}

interface Pending {
  done: boolean;
  /** Last offset this message covers. */
  offset: string;
}

/** A record or chunk handed to the flow, kept until it is complete so that it can be retried or dead-lettered. */
interface Delivery extends Pending {
  readonly topic: string;
  readonly partition: number;
  /** The records as fetched, in offset order: what a retry decodes afresh and a dead letter copies. */
  readonly raw: KafkaMessage[];
  readonly progress: PartitionProgress;
  payload: ConsumedRecord | ConsumedChunk;
  attempt: number;
  /** Counted in maxInFlight; not while its stopped partition holds it. */
  inFlow: boolean;
}

// Per partition: messages handed over in offset order; the front ones that are done give the committable offset.
class PartitionProgress {
  // Slots before head are emptied as they pass: a done delivery holds its records, which must not outlive it.
  private entries: (Pending | undefined)[] = [];
  private head = 0;
  lastDone?: string;
  lastCommitted?: string;

  add<T extends Pending>(entry: T): T {
    this.entries.push(entry);
    return entry;
  }

  advance(): void {
    for (let entry = this.entries[this.head]; entry?.done; entry = this.entries[this.head]) {
      this.lastDone = entry.offset;
      this.entries[this.head++] = undefined;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

export interface ConsumerStats {
  received: number;
  delivered: number;
  malformed: number;
  /** Deliveries the flow failed (stuck ones included), retries made, records written to the dead-letter topic. */
  failed: number;
  stuck: number;
  /** Deliveries a stopping node completed unfinished: not committed, delivered again. */
  unfinished: number;
  retried: number;
  deadLettered: number;
  tombstones: number;
  /** Partitions stopped on a failed record (pause policy). */
  halted: number;
  /** Why the dead-letter topic cannot be written to, while it cannot. */
  deadLetterProblem?: string;
  inFlight: number;
  lag: number;
  paused: boolean;
  waiting: boolean;
  assigned: number;
}

/** Topic names separated by commas or spaces; or, as a pattern, one regular expression (kafkajs matches it once, at subscribe). */
export function parseTopics(text: string, asPattern: boolean): (string | RegExp)[] {
  const trimmed = (text ?? '').trim();
  if (asPattern) return trimmed ? [new RegExp(trimmed)] : [];
  return trimmed.split(/[\s,]+/).filter((t) => t.length > 0);
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!headers) return out;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map((v) => String(v)) : String(value);
  }
  return out;
}

const partitionId = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

function rawRecord(topic: string, partition: number, m: KafkaMessage): RawRecord {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key,
    value: m.value,
    timestamp: Number(m.timestamp),
    headers: decodeHeaders(m.headers),
  };
}

export class KafkaConsumerWorker {
  private consumer?: Consumer;
  // Every retry's and redelivery's wait listens to it: many at once is normal, not a leak.
  private readonly abort = (() => {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    return controller;
  })();
  private progress = new Map<string, PartitionProgress>();
  private readonly lagByPartition = new Map<string, number>();
  private inFlight = 0;
  private paused = false;
  private stopping = false;
  private waiting = false;
  private wake?: () => void;
  private commitTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private commitChain: Promise<void> = Promise.resolve();
  private assigned = 0;
  /** Per stopped partition, the failed deliveries it waits on (pause policy). */
  private readonly halted = new Map<string, Delivery[]>();
  private readonly deadLetters?: DeadLetterWriter;
  readonly counts = {
    received: 0,
    delivered: 0,
    malformed: 0,
    failed: 0,
    stuck: 0,
    unfinished: 0,
    retried: 0,
    deadLettered: 0,
    tombstones: 0,
  };

  constructor(
    private readonly connection: KafkaConnection,
    private readonly options: ConsumerOptions,
    private readonly handlers: ConsumerHandlers,
  ) {
    const policy = options.onFailure;
    if (policy.kind === 'retry') {
      if (!policy.deadLetterTopic.trim()) throw new Error('retrying failed records needs a dead-letter topic');
      this.deadLetters = new DeadLetterWriter(
        connection,
        policy.deadLetterTopic.trim(),
        handlers.warn,
        this.abort.signal,
      );
    }
  }

  start(): void {
    if (this.running) return;
    this.running = this.supervise();
    this.commitTimer = setInterval(() => void this.commit(), this.options.commitIntervalMs);
  }

  get stats(): ConsumerStats {
    let lag = 0;
    for (const value of this.lagByPartition.values()) lag += value;
    return {
      ...this.counts,
      halted: this.halted.size,
      deadLetterProblem: this.deadLetters?.problem,
      inFlight: this.inFlight,
      lag,
      paused: this.paused,
      waiting: this.waiting,
      assigned: this.assigned,
    };
  }

  pause(): void {
    this.paused = true;
  }

  /** Continues; partitions stopped on a failed record are started again with that record, delivered once more. */
  resume(): void {
    this.paused = false;
    const held = [...this.halted.values()].flat();
    for (const id of this.halted.keys()) this.resumePartition(id);
    this.halted.clear();
    for (const delivery of held) this.redeliver(delivery);
    this.wake?.();
  }

  private resumePartition(id: string): void {
    const [topic, partition] = id.split('\u0000');
    try {
      this.consumer?.resume([{ topic, partitions: [Number(partition)] }]);
    } catch {
      // Not running (between restarts): a fresh consumer starts with nothing paused.
    }
  }

  private get closing(): boolean {
    return this.stopping;
  }

  private async supervise(): Promise<void> {
    let attempt = 0;
    // Bounded by close(): every pass either runs until a crash or waits out a backoff that close() cuts short.
    while (!this.closing) {
      const consumer = this.connection.createConsumer({
        groupId: this.options.groupId,
        sessionTimeout: this.options.sessionTimeoutMs,
        heartbeatInterval: this.options.heartbeatIntervalMs,
        rebalanceTimeout: Math.max(this.options.sessionTimeoutMs, 10_000),
        allowAutoTopicCreation: false,
        // A fetch long-poll holds up leaving the group on close; 1 s keeps redeploys quick.
        maxWaitTimeInMs: 1_000,
        // Smaller fetches than kafkajs's 10 MB (1 MB a partition): a fetch is decoded into objects all at once, and
        // what keeps a gateway's flow fed is how often it fetches, not how much.
        maxBytes: FETCH_MAX_BYTES,
        maxBytesPerPartition: FETCH_MAX_BYTES_PER_PARTITION,
        // We restart it ourselves (see the loop), with a backoff we can show.
        retry: { initialRetryTime: 300, retries: 3, maxRetryTime: 3_000, restartOnFailure: async () => false },
      });
      this.consumer = consumer;
      const crashed = new Promise<unknown>((resolve) => {
        consumer.on(consumer.events.CRASH, (event) => resolve(event.payload.error));
      });
      // Any fetch or heartbeat that gets through means the broker is back, even without a new group join.
      const alive = (): void => this.connection.reportConnected();
      consumer.on(consumer.events.FETCH, alive);
      consumer.on(consumer.events.HEARTBEAT, alive);
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        attempt = 0;
        this.onAssignment(event.payload.memberAssignment);
        this.connection.reportConnected();
      });
      // Removed again after each pass: a long outage makes many passes, and each would leave a listener behind.
      let onAbort = (): void => undefined;
      const closed = new Promise<undefined>((resolve) => {
        onAbort = () => resolve(undefined);
        this.abort.signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        this.connection.reportConnecting();
        await consumer.connect();
        await consumer.subscribe({ topics: this.options.topics, fromBeginning: this.options.fromBeginning });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: 1,
          eachBatch: (payload) => this.eachBatch(payload),
        });
        const error = await Promise.race([crashed, closed]);
        if (this.closing) return;
        throw error;
      } catch (error) {
        if (this.closing) return;
        this.consumer = undefined;
        await consumer.disconnect().catch(() => undefined);
        this.assigned = 0;
        const delay = this.connection.retryDelay(attempt++);
        const kind = this.connection.reportFailure(error, Date.now() + delay);
        if (kind === 'fatal') this.handlers.warn(`consumer stopped: ${errorMessage(error)}; retrying`);
        await sleep(delay, this.abort.signal);
      } finally {
        this.abort.signal.removeEventListener('abort', onAbort);
      }
    }
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    // Progress of partitions we no longer own must not be committed over the new owner's. A new assignment fetches
    // from the committed offsets, so records held by a stopped partition come again (and fail again, or not).
    for (const id of this.halted.keys()) this.resumePartition(id);
    this.halted.clear();
    const kept = new Map<string, PartitionProgress>();
    let count = 0;
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        count++;
        kept.set(partitionId(topic, partition), new PartitionProgress());
      }
    }
    this.progress = kept;
    for (const id of [...this.lagByPartition.keys()]) if (!kept.has(id)) this.lagByPartition.delete(id);
    this.assigned = count;
  }

  private partition(topic: string, partition: number): PartitionProgress {
    const id = partitionId(topic, partition);
    let p = this.progress.get(id);
    if (!p) {
      p = new PartitionProgress();
      this.progress.set(id, p);
    }
    return p;
  }

  /** A record handed over outside the failure policy (malformed, skipped): its completion is final. */
  private track(progress: PartitionProgress, offset: string): () => void {
    const entry = progress.add<Pending>({ done: false, offset });
    this.inFlight++;
    return () => {
      if (entry.done) return;
      entry.done = true;
      this.leaveFlow();
      progress.advance();
    };
  }

  private leaveFlow(): void {
    this.inFlight--;
    // Resume at half the limit, not at limit - 1, so the fetch loop does not wake for every single message.
    if (this.wake && this.inFlight <= this.options.maxInFlight >> 1) this.wake();
  }

  private handOver(delivery: Delivery): void {
    delivery.progress.add(delivery);
    this.inFlight++;
    this.send(delivery);
  }

  private send(delivery: Delivery): void {
    let called = false;
    this.handlers.deliver(delivery.payload, (outcome) => {
      if (called) return;
      called = true;
      this.completed(delivery, outcome);
    });
  }

  /** Marks a delivery complete: its offsets become committable. */
  private settle(delivery: Delivery): void {
    if (delivery.done) return;
    delivery.done = true;
    this.release(delivery);
    delivery.progress.advance();
  }

  /** Frees its place in maxInFlight, leaving it uncommitted. */
  private release(delivery: Delivery): void {
    if (!delivery.inFlow) return;
    delivery.inFlow = false;
    this.leaveFlow();
  }

  /** False once its partition was assigned afresh: its progress is no longer committed, the new owner has it. */
  private owns(delivery: Delivery): boolean {
    return this.progress.get(partitionId(delivery.topic, delivery.partition)) === delivery.progress;
  }

  private completed(delivery: Delivery, outcome: DeliveryOutcome | undefined): void {
    const error = outcome?.error;
    if (error === undefined) return this.settle(delivery);
    if (outcome?.unfinished) {
      this.counts.unfinished++;
      if (this.closing) return this.release(delivery);
      if (!this.owns(delivery)) return this.settle(delivery);
      void sleep(UNFINISHED_REDELIVERY_MS, this.abort.signal).then(() => this.redeliver(delivery, false));
      return;
    }
    this.counts.failed++;
    if (outcome?.stuck) this.counts.stuck++;
    const policy = this.options.onFailure;
    if (policy.kind === 'commit') return this.settle(delivery);
    // Left uncommitted: whoever reads the partition next delivers it again.
    if (this.closing) return this.release(delivery);
    if (!this.owns(delivery)) return this.settle(delivery);
    if (policy.kind === 'pause') return this.halt(delivery, error);
    if (delivery.attempt <= policy.retries) {
      this.counts.retried++;
      const wait = Math.min(
        policy.backoffMs * 2 ** (delivery.attempt - 1),
        Math.max(policy.backoffMs, MAX_RETRY_WAIT_MS),
      );
      void sleep(wait, this.abort.signal).then(() => this.redeliver(delivery));
      return;
    }
    void this.deadLetter(delivery, error);
  }

  /** Hands a failed delivery to the flow again, decoded afresh (the flow may have changed the first copy). */
  private redeliver(delivery: Delivery, isRetry = true): void {
    if (this.closing) return this.release(delivery);
    if (!this.owns(delivery)) return this.settle(delivery);
    if (isRetry) delivery.attempt++;
    if (!delivery.inFlow) {
      delivery.inFlow = true;
      this.inFlight++;
    }
    try {
      delivery.payload = this.decodeAgain(delivery);
    } catch (error) {
      return this.completed(delivery, { error: `could not be decoded again: ${errorMessage(error)}` });
    }
    this.send(delivery);
  }

  private decodeAgain(delivery: Delivery): ConsumedRecord | ConsumedChunk {
    const { topic, partition, raw, attempt } = delivery;
    const { key, value } = this.options;
    if (this.options.output === 'record') {
      const m = raw[0];
      return {
        topic,
        partition,
        offset: m.offset,
        key: key.decode(m.key),
        value: value.decode(m.value),
        timestamp: Number(m.timestamp),
        headers: decodeHeaders(m.headers),
        attempt,
      };
    }
    return {
      topic,
      partition,
      values: raw.map((m) => value.decode(m.value)),
      keys: raw.map((m) => key.decode(m.key)),
      offsets: raw.map((m) => m.offset),
      timestamps: raw.map((m) => Number(m.timestamp)),
      headers: raw.map((m) => decodeHeaders(m.headers)),
      attempt,
    };
  }

  private async deadLetter(delivery: Delivery, error: string): Promise<void> {
    const writer = this.deadLetters!;
    const { topic, partition, raw, attempt } = delivery;
    const written = await writer.write(raw, { topic, partition, attempts: attempt, error }, () => this.owns(delivery));
    if (!written) return this.closing ? this.release(delivery) : this.settle(delivery);
    this.counts.deadLettered += raw.length;
    this.handlers.warn(
      `${describe(topic, partition, raw)} failed ${attempt} time${attempt > 1 ? 's' : ''} (${error}): ` +
        `written to dead-letter topic ${writer.topic}`,
    );
    this.settle(delivery);
  }

  /** Pause policy: the partition stops on the failed delivery, which waits for resume(). */
  private halt(delivery: Delivery, error: string): void {
    this.release(delivery);
    const id = partitionId(delivery.topic, delivery.partition);
    let held = this.halted.get(id);
    if (!held) {
      this.halted.set(id, (held = []));
      try {
        this.consumer?.pause([{ topic: delivery.topic, partitions: [delivery.partition] }]);
      } catch {
        // Not running: eachBatch pauses it when its next batch comes.
      }
    }
    held.push(delivery);
    this.handlers.halted(delivery.payload, error);
  }

  /** Waits while paused or while too much is in the flow, heartbeating so the group keeps us. */
  private async gate(payload: EachBatchPayload): Promise<boolean> {
    // Bounded: each pass waits at most one heartbeat interval, and ends on close or rebalance.
    while (this.paused || this.stopping || this.inFlight >= this.options.maxInFlight) {
      if (this.closing || !payload.isRunning() || payload.isStale()) return false;
      this.waiting = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => done(), this.options.heartbeatIntervalMs);
        const done = (): void => {
          clearTimeout(timer);
          this.abort.signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        this.abort.signal.addEventListener('abort', done, { once: true });
      });
      this.waiting = false;
      await payload.heartbeat().catch(() => undefined);
    }
    return !this.closing && payload.isRunning() && !payload.isStale();
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { topic, partition, messages } = batch;
    if (messages.length === 0) return;
    const { key, value, output, batchSize, maxInFlight } = this.options;
    if (key.prefetch) await key.prefetch(messages.map((m) => m.key));
    if (value.prefetch) await value.prefetch(messages.map((m) => m.value));
    const progress = this.partition(topic, partition);
    const id = partitionId(topic, partition);
    const { tombstones } = this.options;
    // kafkajs turns every resolved offset into a Long: tell it only before waiting and at the end of the batch.
    let handed: string | undefined;
    const resolveHanded = (): void => {
      if (handed !== undefined) payload.resolveOffset(handed);
      handed = undefined;
    };
    let chunk: ConsumedChunk | undefined;
    let chunkRaw: KafkaMessage[] = [];
    // The last offset a chunk covers: skipped tombstones after its last record are settled with it.
    let chunkCovers = '';
    const flushChunk = (): void => {
      if (!chunk) return;
      const full = chunk;
      const raw = chunkRaw;
      chunk = undefined;
      chunkRaw = [];
      this.counts.delivered += full.values.length;
      this.handOver(delivery(full, raw, chunkCovers));
      handed = chunkCovers;
    };
    const delivery = (payload: ConsumedRecord | ConsumedChunk, raw: KafkaMessage[], offset: string): Delivery => ({
      done: false,
      offset,
      topic,
      partition,
      raw,
      progress,
      payload,
      attempt: 1,
      inFlow: true,
    });
    let sinceYield = 0;
    for (const m of messages) {
      if (sinceYield >= HANDOVER_BURST) {
        sinceYield = 0;
        flushChunk();
        resolveHanded();
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.closing || !payload.isRunning() || payload.isStale()) return;
      }
      if (this.paused || this.stopping || this.inFlight >= maxInFlight) {
        flushChunk();
        resolveHanded();
        if (!(await this.gate(payload))) return;
      }
      // Stopped on a failed record: what was not handed over (an open chunk too) is fetched again on resume.
      if (this.halted.size > 0 && this.halted.has(id)) {
        payload.pause();
        resolveHanded();
        return;
      }
      this.counts.received++;
      if (m.value === null && tombstones === 'skip') {
        this.counts.tombstones++;
        if (chunk) chunkCovers = m.offset;
        else {
          this.track(progress, m.offset)();
          handed = m.offset;
        }
        continue;
      }
      let k: unknown;
      let v: unknown;
      try {
        k = key.decode(m.key);
        v = value.decode(m.value);
      } catch (error) {
        if (error instanceof RegistryUnavailableError) {
          // Hand over what came before, then fail the batch: the consumer restarts and fetches it again later.
          flushChunk();
          resolveHanded();
          throw error;
        }
        const reason =
          error instanceof MalformedRecordError ? error : new MalformedRecordError(errorMessage(error), 'value');
        this.counts.malformed++;
        flushChunk();
        this.handlers.malformed(rawRecord(topic, partition, m), reason, this.track(progress, m.offset));
        handed = m.offset;
        continue;
      }
      if (output === 'record') {
        this.counts.delivered++;
        const record: ConsumedRecord = {
          topic,
          partition,
          offset: m.offset,
          key: k,
          value: v,
          timestamp: Number(m.timestamp),
          headers: decodeHeaders(m.headers),
        };
        this.handOver(delivery(record, [m], m.offset));
        handed = m.offset;
        sinceYield++;
      } else {
        chunk ??= { topic, partition, values: [], keys: [], offsets: [], timestamps: [], headers: [] };
        chunk.values.push(v);
        chunk.keys.push(k);
        chunk.offsets.push(m.offset);
        chunk.timestamps.push(Number(m.timestamp));
        chunk.headers.push(decodeHeaders(m.headers));
        chunkRaw.push(m);
        chunkCovers = m.offset;
        if (chunk.values.length >= batchSize) {
          flushChunk();
          sinceYield = HANDOVER_BURST;
        }
      }
    }
    flushChunk();
    resolveHanded();
    this.lagByPartition.set(id, Math.max(0, Number(batch.offsetLag())));
  }

  /** Commits every partition's complete prefix; serialised so commits never overtake each other. */
  commit(): Promise<void> {
    this.commitChain = this.commitChain.then(() => this.commitOnce());
    return this.commitChain;
  }

  private async commitOnce(): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    const offsets: { topic: string; partition: number; offset: string }[] = [];
    const marks: [PartitionProgress, string][] = [];
    for (const [id, p] of this.progress) {
      if (p.lastDone === undefined || p.lastDone === p.lastCommitted) continue;
      const [topic, partition] = id.split('\u0000');
      offsets.push({ topic, partition: Number(partition), offset: (BigInt(p.lastDone) + 1n).toString() });
      marks.push([p, p.lastDone]);
    }
    if (offsets.length === 0) return;
    try {
      await consumer.commitOffsets(offsets);
      for (const [p, offset] of marks) p.lastCommitted = offset;
    } catch (error) {
      // A rebalance or an outage: the offsets stay pending and go with the next commit.
      this.handlers.warn(`commit deferred: ${errorMessage(error)}`);
    }
  }

  /** Commits what the flow has finished, then leaves the group at once so its partitions move without delay. */
  async close(): Promise<void> {
    if (this.commitTimer) clearInterval(this.commitTimer);
    this.stopping = true;
    this.wake?.();
    const deadline = Date.now() + this.options.drainOnCloseMs;
    // Bounded by drainOnCloseMs: gives messages already in the flow a moment to finish, fewer repeats next time.
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(20);
    this.abort.abort();
    this.wake?.();
    await this.commit();
    const consumer = this.consumer;
    this.consumer = undefined;
    // Leaving the group needs the broker; when it is down, do not hold Node-RED's close past a few seconds.
    if (consumer)
      await atMost(
        consumer.disconnect().catch(() => undefined),
        5_000,
      );
    await atMost(this.running ?? Promise.resolve(), 1_000);
  }
}

/** Where records are from, for messages: `topic[partition]@offset`, or a range of offsets for a chunk. */
function describe(topic: string, partition: number, raw: KafkaMessage[]): string {
  const first = raw[0]?.offset;
  const last = raw[raw.length - 1]?.offset;
  return `${topic}[${partition}]@${first === last ? first : `${first}-${last}`}`;
}
