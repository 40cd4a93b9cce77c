// Producer logic on kafkajs, knowing nothing of Node-RED. Records wait in a bounded queue and go out in batches
// (sent when the batch is full, or after a linger time); a record leaves the queue only when Kafka has acknowledged
// it or it has failed for good, and its callback says which. While the broker is unreachable the queue keeps the
// records and retries; when the queue is full, a new record is refused with an error, never dropped silently.
// Closing flushes the queue, records arriving meanwhile included, until a deadline; what it could not send is
// counted in close()'s result, each such record's callback getting a ProducerClosedError.
import { CompressionTypes, type Message, type TopicMessages } from 'kafkajs';
import type { Encoder } from './codecs';
import type { KafkaConnection } from './connection';
import { classifyError, errorMessage, toError } from './errors';
import { atMost, sleep } from './sleep';

// No zstd: there is no pure-JavaScript zstd encoder (zstd batches are still read, see compression.ts).
export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4';

export const COMPRESSION_TYPES: Record<Compression, CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
};

export interface ProducerOptions {
  acks: -1 | 0 | 1;
  compression: Compression;
  /** How long a batch that is not full waits for more records. */
  lingerMs: number;
  /** Records that make a batch full: it goes without waiting out the linger. */
  batchSize: number;
  /** Records waiting or in flight, above which new ones are refused. */
  maxQueued: number;
  /** Broker-side timeout for acks=-1. */
  ackTimeoutMs: number;
  key: Encoder;
  value: Encoder;
}

export interface OutgoingRecord {
  topic: string;
  key?: unknown;
  value: unknown;
  partition?: number;
  headers?: Record<string, string | Buffer>;
  timestamp?: string;
}

export type DeliveryCallback = (error?: Error) => void;

export class QueueFullError extends Error {
  constructor(size: number, state: string) {
    super(`producer queue full (${size} records waiting; broker ${state}): record refused`);
    this.name = 'QueueFullError';
  }
}

/** A record not sent because the producer closed; close() counts these, so callers need not report each one. */
export class ProducerClosedError extends Error {
  constructor(readonly reason: string) {
    super(`producer closed: record not sent (${reason})`);
    this.name = 'ProducerClosedError';
  }
}

const AFTER_CLOSE = 'it arrived after the producer had closed';

// One request carries at most this many bytes of keys, values and headers: under Kafka's default limit of 1 MB for
// one partition's batch, whichever partitions the records go to, so a large batch size never makes a request the
// broker refuses as too large.
export const MAX_REQUEST_BYTES = 900_000;

/** Most batches' worth of records in one request. */
export const REQUEST_BATCHES = 3;

export interface CloseResult {
  /** Records not sent because of the close: still unacknowledged at its deadline, or arriving after it ended. */
  notSent: number;
  /** Why, when notSent > 0 (the first reason, if there were several). */
  reason?: string;
}

interface Queued {
  topic: string;
  message: Message;
  /** Bytes of key, value and headers. */
  bytes: number;
  callback: DeliveryCallback;
  settled: boolean;
}

// Each record's callback runs exactly once, even when a send outlives the close deadline that failed it.
function settle(item: Queued, error?: Error): boolean {
  if (item.settled) return false;
  item.settled = true;
  item.callback(error);
  return true;
}

function byteLength(value: Buffer | string | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

function sizeOf(
  key: Buffer | string | null,
  value: Buffer | string | null,
  headers?: Record<string, string | Buffer>,
): number {
  let bytes = byteLength(key) + byteLength(value);
  if (headers) for (const [name, v] of Object.entries(headers)) bytes += name.length + byteLength(v);
  return bytes;
}

export interface ProducerStats {
  queued: number;
  sent: number;
  failed: number;
  refused: number;
}

export class KafkaProducerWorker {
  private queue: Queued[] = [];
  private head = 0;
  private readonly abort = new AbortController();
  // Aborted by close(): a batch waiting out its linger goes at once.
  private readonly flushNow = new AbortController();
  private wakeSender?: () => void;
  private running?: Promise<void>;
  private closing = false;
  // Set once nothing more will be sent: the flush has ended, or close() gave up on it.
  private stopped = false;
  private deadline = Infinity;
  private closeTimeoutMs = 0;
  private notSent = 0;
  private notSentReason?: string;
  private isolate = 0;
  private abandoned = false;
  private encoding = 0;
  readonly counts = { sent: 0, failed: 0, refused: 0 };

  constructor(
    private readonly connection: KafkaConnection,
    private readonly options: ProducerOptions,
  ) {}

  get stats(): ProducerStats {
    return { ...this.counts, queued: this.size };
  }

  private get size(): number {
    return this.queue.length - this.head + this.encoding;
  }

  start(): void {
    if (!this.running) this.running = this.sendLoop();
  }

  /** Encodes and queues a record; the callback runs once, when Kafka acknowledged it or it failed. */
  send(record: OutgoingRecord, callback: DeliveryCallback): void {
    // While closing, a record still joins the queue and is flushed with it (the flow may have sent it just before
    // Node-RED stopped); once the flush has ended it is counted as not sent.
    if (this.stopped) {
      this.counts.failed++;
      this.countNotSent(AFTER_CLOSE);
      callback(new ProducerClosedError(AFTER_CLOSE));
      return;
    }
    if (this.size >= this.options.maxQueued) {
      this.counts.refused++;
      callback(new QueueFullError(this.size, this.connection.state.status));
      return;
    }
    let key: ReturnType<Encoder['encode']>;
    let value: ReturnType<Encoder['encode']>;
    try {
      key = record.key === undefined || record.key === null ? null : this.options.key.encode(record.key, record.topic);
      value = this.options.value.encode(record.value, record.topic);
    } catch (error) {
      this.counts.failed++;
      callback(toError(error));
      return;
    }
    const enqueue = (k: Buffer | string | null, v: Buffer | string | null): void => {
      const message: Message = { key: k, value: v };
      if (record.partition !== undefined) message.partition = record.partition;
      if (record.headers) message.headers = record.headers;
      if (record.timestamp !== undefined) message.timestamp = record.timestamp;
      const item: Queued = {
        topic: record.topic,
        message,
        bytes: sizeOf(k, v, record.headers),
        callback,
        settled: false,
      };
      if (this.stopped) {
        this.failClosed(item, AFTER_CLOSE); // its encoding outlasted the flush
        return;
      }
      this.queue.push(item);
      if (this.wakeSender) this.wakeSender();
    };
    if (key instanceof Promise || value instanceof Promise) {
      // Only the registry encoder is asynchronous, and only until it knows the subject's schema id.
      this.encoding++;
      Promise.all([key, value]).then(
        ([k, v]) => {
          this.encoding--;
          enqueue(k, v);
        },
        (error: unknown) => {
          this.encoding--;
          this.counts.failed++;
          callback(toError(error));
        },
      );
      return;
    }
    enqueue(key, value);
  }

  // A request takes what is queued, not only one batch: records that queued while the last request waited for the
  // broker all go in the next (up to REQUEST_BATCHES batches and MAX_REQUEST_BYTES), so a slow broker is met with
  // larger requests rather than a growing queue.
  private takeBatch(): Queued[] {
    const records = this.isolate > 0 ? 1 : this.options.batchSize * REQUEST_BATCHES;
    const limit = Math.min(this.queue.length, this.head + records);
    let end = this.head + 1;
    let bytes = this.queue[this.head].bytes;
    while (end < limit && (bytes += this.queue[end].bytes) <= MAX_REQUEST_BYTES) end++;
    return this.queue.slice(this.head, end);
  }

  private drop(count: number): void {
    this.head += count;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private async waitForRecords(): Promise<void> {
    if (this.queue.length > this.head) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.abort.signal.removeEventListener('abort', done);
        this.wakeSender = undefined;
        resolve();
      };
      this.wakeSender = done;
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  private async sendLoop(): Promise<void> {
    let attempt = 0;
    let reason: string | undefined;
    // Ends on close: when the queue is empty, or the close deadline has passed.
    for (;;) {
      if (this.closing && (this.size === 0 || Date.now() >= this.deadline)) break;
      if (this.abort.signal.aborted) break;
      // Records still being encoded (registry look-up) arrive through send's enqueue, which wakes this.
      await this.waitForRecords();
      if (this.queue.length === this.head) continue;
      const pending = this.queue.length - this.head;
      if (pending < this.options.batchSize && this.options.lingerMs > 0 && !this.closing && attempt === 0) {
        await sleep(this.options.lingerMs, this.flushNow.signal);
      }
      let producer;
      try {
        producer = await this.withDeadline(this.connection.producerReady());
      } catch {
        reason = 'the Kafka connection was closed'; // nothing can be sent any more
        break;
      }
      if (!producer) continue; // close deadline passed
      const batch = this.takeBatch();
      const byTopic = new Map<string, Message[]>();
      for (const item of batch) {
        let list = byTopic.get(item.topic);
        if (!list) byTopic.set(item.topic, (list = []));
        list.push(item.message);
      }
      const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      try {
        await producer.sendBatch({
          topicMessages,
          acks: this.options.acks,
          timeout: this.options.ackTimeoutMs,
          compression: COMPRESSION_TYPES[this.options.compression],
        });
        if (this.abandoned) break; // close() gave up on this send and already failed its records
        this.drop(batch.length);
        if (this.isolate > 0) this.isolate -= batch.length;
        attempt = 0;
        this.connection.reportConnected();
        for (const item of batch) if (settle(item)) this.counts.sent++;
      } catch (error) {
        if (this.abandoned) break;
        const kind = classifyError(error);
        if (kind === 'fatal') {
          if (batch.length > 1) {
            // One bad record (too large, bad topic) must not sink the others: resend one by one to find it.
            this.isolate = batch.length;
            continue;
          }
          this.drop(batch.length);
          if (this.isolate > 0) this.isolate -= batch.length;
          const failure = new Error(`Kafka refused the record: ${errorMessage(error)}`);
          for (const item of batch) if (settle(item, failure)) this.counts.failed++;
          continue;
        }
        this.connection.producerFailed(error);
        const delay = this.connection.retryDelay(attempt++);
        await sleep(Math.min(delay, Math.max(0, this.deadline - Date.now())), this.abort.signal);
      }
    }
    this.stopped = true;
    this.failRemaining(reason ?? this.deadlineReason());
  }

  private deadlineReason(): string {
    const { status, error } = this.connection.state;
    const broker = status !== 'connected' && error ? ` (broker ${status}: ${error})` : '';
    return `not acknowledged by the broker within the close timeout of ${this.closeTimeoutMs / 1000} s${broker}`;
  }

  private countNotSent(reason: string): void {
    this.notSent++;
    this.notSentReason ??= reason;
  }

  private failClosed(item: Queued, reason: string): void {
    if (!settle(item, new ProducerClosedError(reason))) return;
    this.counts.failed++;
    this.countNotSent(reason);
  }

  private async withDeadline<T>(promise: Promise<T>): Promise<T | undefined> {
    if (!this.closing) return promise;
    const left = this.deadline - Date.now();
    if (left <= 0) return undefined;
    return Promise.race([promise, sleep(left).then(() => undefined)]);
  }

  private failRemaining(reason: string): void {
    const rest = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const item of rest) this.failClosed(item, reason);
  }

  /**
   * Sends what is queued, and what arrives meanwhile, within `timeoutMs`, then stops. Records it could not send
   * fail with a ProducerClosedError each and are counted in the result.
   */
  async close(timeoutMs: number): Promise<CloseResult> {
    this.closing = true;
    this.closeTimeoutMs = timeoutMs;
    this.deadline = Date.now() + timeoutMs;
    this.flushNow.abort();
    this.wakeSender?.();
    if (!this.running) {
      this.stopped = true;
      this.failRemaining('the producer had not started');
      return this.closeResult();
    }
    const timer = setTimeout(() => this.abort.abort(), timeoutMs);
    // A send already under way is not interrupted by the deadline (kafkajs has its own timeouts): past it, its
    // records fail here, and the loop drops the send's outcome when it comes back.
    let finished = false;
    await atMost(
      this.running.then(() => {
        finished = true;
      }),
      timeoutMs + 100,
    );
    clearTimeout(timer);
    if (!finished) {
      this.abandoned = true;
      this.stopped = true;
      this.failRemaining(this.deadlineReason());
    }
    return this.closeResult();
  }

  private closeResult(): CloseResult {
    return this.notSent > 0 ? { notSent: this.notSent, reason: this.notSentReason } : { notSent: 0 };
  }
}
