// Consumer logic on kafkajs, knowing nothing of Node-RED: it hands decoded records (one by one or in chunks) to a
// deliver callback and is told through a completion callback when the flow has finished with each. From that it
// applies backpressure (no more than maxInFlight undelivered messages) and commits, per partition, only offsets
// whose records and all before them are complete. It supervises its kafkajs consumer itself, so a broker restart or
// a crash ends in a fresh consumer after a backoff whose due time is reported, instead of a consumer that is gone.
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import { MalformedRecordError, RegistryUnavailableError, type Decoder } from './codecs';
import type { KafkaConnection } from './connection';
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
}

export interface ConsumerHandlers {
  deliver(payload: ConsumedRecord | ConsumedChunk, complete: () => void): void;
  malformed(raw: RawRecord, reason: MalformedRecordError, complete: () => void): void;
  /** Something the user should see that is not a record's fault (bad topic, commit failure). */
  warn(message: string): void;
}

interface Pending {
  done: boolean;
  /** Last offset this message covers. */
  offset: string;
}

// Per partition: messages handed over in offset order; the front ones that are done give the committable offset.
class PartitionProgress {
  private entries: Pending[] = [];
  private head = 0;
  lastDone?: string;
  lastCommitted?: string;

  add(offset: string): Pending {
    const entry = { done: false, offset };
    this.entries.push(entry);
    return entry;
  }

  advance(): void {
    while (this.head < this.entries.length && this.entries[this.head].done) {
      this.lastDone = this.entries[this.head].offset;
      this.head++;
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
  private readonly abort = new AbortController();
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
  readonly counts = { received: 0, delivered: 0, malformed: 0 };

  constructor(
    private readonly connection: KafkaConnection,
    private readonly options: ConsumerOptions,
    private readonly handlers: ConsumerHandlers,
  ) {}

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

  resume(): void {
    this.paused = false;
    this.wake?.();
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
    // Progress of partitions we no longer own must not be committed over the new owner's.
    const kept = new Map<string, PartitionProgress>();
    let count = 0;
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        count++;
        const id = `${topic}\u0000${partition}`;
        kept.set(id, new PartitionProgress());
      }
    }
    this.progress = kept;
    for (const id of [...this.lagByPartition.keys()]) if (!kept.has(id)) this.lagByPartition.delete(id);
    this.assigned = count;
  }

  private partition(topic: string, partition: number): PartitionProgress {
    const id = `${topic}\u0000${partition}`;
    let p = this.progress.get(id);
    if (!p) {
      p = new PartitionProgress();
      this.progress.set(id, p);
    }
    return p;
  }

  private track(progress: PartitionProgress, offset: string): () => void {
    const entry = progress.add(offset);
    this.inFlight++;
    let called = false;
    return () => {
      if (called) return;
      called = true;
      entry.done = true;
      this.inFlight--;
      progress.advance();
      // Resume at half the limit, not at limit - 1, so the fetch loop does not wake for every single message.
      if (this.wake && this.inFlight <= this.options.maxInFlight >> 1) this.wake();
    };
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
    // kafkajs turns every resolved offset into a Long: tell it only before waiting and at the end of the batch.
    let handed: string | undefined;
    const resolveHanded = (): void => {
      if (handed !== undefined) payload.resolveOffset(handed);
      handed = undefined;
    };
    let chunk: ConsumedChunk | undefined;
    const flushChunk = (): void => {
      if (!chunk) return;
      const full = chunk;
      chunk = undefined;
      const last = full.offsets[full.offsets.length - 1];
      this.counts.delivered += full.values.length;
      this.handlers.deliver(full, this.track(progress, last));
      handed = last;
    };
    for (const m of messages) {
      if (this.paused || this.stopping || this.inFlight >= maxInFlight) {
        flushChunk();
        resolveHanded();
        if (!(await this.gate(payload))) return;
      }
      this.counts.received++;
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
        this.handlers.deliver(record, this.track(progress, m.offset));
        handed = m.offset;
      } else {
        chunk ??= { topic, partition, values: [], keys: [], offsets: [], timestamps: [], headers: [] };
        chunk.values.push(v);
        chunk.keys.push(k);
        chunk.offsets.push(m.offset);
        chunk.timestamps.push(Number(m.timestamp));
        chunk.headers.push(decodeHeaders(m.headers));
        if (chunk.values.length >= batchSize) flushChunk();
      }
    }
    flushChunk();
    resolveHanded();
    this.lagByPartition.set(`${topic}\u0000${partition}`, Math.max(0, Number(batch.offsetLag())));
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
