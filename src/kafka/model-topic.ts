// A compacted topic of keyed values that every member both writes and reads in full: fleet learning's exchange
// of contributions. Compaction keeps the latest value per key, so a member that starts late reads what matters
// and no history. Knows nothing of models or Node-RED: keys and values are the caller's.
import { CompressionTypes, type Admin, type Consumer } from 'kafkajs';
import type { KafkaConnection } from './connection';
import { classifyError, errorMessage } from './errors';
import { sleep } from './sleep';

export interface ModelTopicHandlers {
  /** A record read from the topic; value null is a tombstone (the key was deleted). */
  record(key: string, value: Buffer | null): void;
  /** Something the user should hear of once (a failed read, a topic that is not compacted). */
  warn(message: string): void;
}

export interface ModelTopicStats {
  published: number;
  publishedBytes: number;
  lastPublishedBytes: number;
  read: number;
  readBytes: number;
}

/** Bigger than a broker's 1 MB default: a wide model's snapshot may need it. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Uncompressed bytes per send of publishAll: well under the topic's limit on a batch. */
const SEND_BYTES = 4 * 1024 * 1024;

export class ModelTopic {
  private readonly abort = new AbortController();
  private admin: Admin | undefined;
  private reader: Consumer | undefined;
  /** Per partition, the next offset to read. */
  private readonly next = new Map<number, bigint>();
  private ensured: Promise<void> | undefined;
  readonly stats: ModelTopicStats = { published: 0, publishedBytes: 0, lastPublishedBytes: 0, read: 0, readBytes: 0 };

  constructor(
    private readonly connection: KafkaConnection,
    readonly topic: string,
    private readonly readerGroup: string,
    private readonly handlers: ModelTopicHandlers,
  ) {
    connection.register(this);
  }

  /** Starts reading the topic from its beginning, for as long as it is open. */
  start(): void {
    void this.read();
  }

  /** Writes a value under a key, compressed; resolves once every in-sync replica has it. */
  async publish(key: string, value: Buffer): Promise<void> {
    await this.ensureTopic();
    const producer = await this.connection.producerReady();
    try {
      await producer.send({
        topic: this.topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: [{ key, value }],
      });
    } catch (error) {
      if (classifyError(error) === 'retry') this.connection.producerFailed(error);
      throw error;
    }
    this.stats.published++;
    this.stats.publishedBytes += value.length;
    this.stats.lastPublishedBytes = value.length;
  }

  /** Writes several keyed values in sends of at most about 4 MB each; resolves once every one is acknowledged. */
  async publishAll(messages: { key: string; value: Buffer }[]): Promise<void> {
    if (messages.length === 0) return;
    await this.ensureTopic();
    const producer = await this.connection.producerReady();
    for (let start = 0; start < messages.length;) {
      let end = start;
      for (let bytes = 0; end < messages.length && (end === start || bytes + messages[end].value.length < SEND_BYTES);)
        bytes += messages[end++].value.length;
      const part = messages.slice(start, end);
      try {
        await producer.send({ topic: this.topic, acks: -1, compression: CompressionTypes.GZIP, messages: part });
      } catch (error) {
        if (classifyError(error) === 'retry') this.connection.producerFailed(error);
        throw error;
      }
      for (const m of part) {
        this.stats.published++;
        this.stats.publishedBytes += m.value.length;
        this.stats.lastPublishedBytes = m.value.length;
      }
      start = end;
    }
  }

  /**
   * Resolves once everything on the topic when this was called has been read and handed over: after it, the
   * handlers have seen every value published (and acknowledged) before. Retries while the broker is away.
   */
  async caughtUp(): Promise<void> {
    let ends: Map<number, bigint> | undefined;
    for (let attempt = 0; !ends; attempt++) {
      if (this.abort.signal.aborted) return;
      try {
        await this.ensureTopic();
        const admin = await this.adminClient();
        const offsets = await admin.fetchTopicOffsets(this.topic);
        ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
      } catch (error) {
        await this.dropAdmin();
        this.ensured = undefined;
        if (attempt === 3) this.handlers.warn(`model topic ${this.topic}: ${errorMessage(error)}; retrying`);
        await sleep(this.connection.retryDelay(attempt), this.abort.signal);
      }
    }
    const done = (): boolean => [...ends!].every(([p, high]) => high === 0n || (this.next.get(p) ?? 0n) >= high);
    while (!done() && !this.abort.signal.aborted) await sleep(10, this.abort.signal);
  }

  async close(): Promise<void> {
    this.abort.abort();
    const reader = this.reader;
    this.reader = undefined;
    await Promise.all([reader?.disconnect().catch(() => undefined), this.dropAdmin()]);
    await this.connection.deregister(this);
  }

  private ensureTopic(): Promise<void> {
    this.ensured ??= (async () => {
      const admin = await this.adminClient();
      const created = await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: this.topic,
            numPartitions: 1,
            configEntries: [
              { name: 'cleanup.policy', value: 'compact' },
              { name: 'max.message.bytes', value: String(MAX_MESSAGE_BYTES) },
            ],
          },
        ],
      });
      if (!created) await this.checkCompacted(admin);
    })().catch((error) => {
      this.ensured = undefined;
      throw error;
    });
    return this.ensured;
  }

  /** A topic made by someone else may delete old contributions by age: say so, once. */
  private async checkCompacted(admin: Admin): Promise<void> {
    try {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: this.topic, configNames: ['cleanup.policy'] }],
      });
      const policy = described.resources[0]?.configEntries.find((e) => e.configName === 'cleanup.policy');
      if (policy && !policy.configValue.includes('compact'))
        this.handlers.warn(
          `model topic ${this.topic} has cleanup.policy=${policy.configValue}: a member's contribution may be ` +
            `deleted by age and drop out of the fleet's model; make it compact`,
        );
    } catch {
      // Not allowed to describe it (ACLs): nothing to say.
    }
  }

  private async adminClient(): Promise<Admin> {
    if (this.admin) return this.admin;
    const admin = this.connection.kafka.admin();
    await admin.connect();
    this.admin = admin;
    return admin;
  }

  private async dropAdmin(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.disconnect().catch(() => undefined);
  }

  /** The reader: a consumer of its own group that never commits, so every start reads the whole topic. */
  private async read(): Promise<void> {
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      const reader = this.connection.createConsumer({
        groupId: `${this.readerGroup}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
        maxWaitTimeInMs: 250,
        allowAutoTopicCreation: false,
        retry: { initialRetryTime: 300, retries: 3, maxRetryTime: 3_000, restartOnFailure: async () => false },
      });
      this.reader = reader;
      this.next.clear();
      const crashed = new Promise<unknown>((resolve) =>
        reader.on(reader.events.CRASH, (e) => resolve(e.payload.error)),
      );
      const closed = new Promise<undefined>((resolve) =>
        this.abort.signal.addEventListener('abort', () => resolve(undefined), { once: true }),
      );
      try {
        await this.ensureTopic();
        await reader.connect();
        await reader.subscribe({ topics: [this.topic], fromBeginning: true });
        await reader.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            for (const message of batch.messages) {
              if (message.key) {
                this.stats.read++;
                this.stats.readBytes += message.value?.length ?? 0;
                this.handlers.record(message.key.toString(), message.value);
              }
              this.next.set(batch.partition, BigInt(message.offset) + 1n);
            }
          },
        });
        const error = await Promise.race([crashed, closed]);
        if (this.abort.signal.aborted) return;
        throw error;
      } catch (error) {
        if (this.abort.signal.aborted) return;
        if (attempt === 3)
          this.handlers.warn(`reading model topic ${this.topic} failed: ${errorMessage(error)}; retrying`);
        this.ensured = undefined;
        await reader.disconnect().catch(() => undefined);
        await sleep(this.connection.retryDelay(attempt), this.abort.signal);
      }
    }
  }
}
