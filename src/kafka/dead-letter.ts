// Writing records the flow kept failing to a dead-letter topic, through the connection's shared producer: the raw
// key, value and headers as they were read, plus headers saying why and where from (x-error, x-source-topic,
// x-source-partition, x-source-offset, x-attempts). A write is retried until Kafka acknowledges it, so the
// consumer commits a failed record only once its copy is safe.
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { KafkaConnection } from './connection';
import { classifyError, errorMessage } from './errors';
import { sleep } from './sleep';

export interface DeadLetterSource {
  topic: string;
  partition: number;
  /** How many times the flow was given the records. */
  attempts: number;
  /** Why the last attempt failed. */
  error: string;
}

/** The record to write for `message`: its own bytes and headers, then the dead-letter headers (which win). */
export function deadLetterMessage(message: KafkaMessage, source: DeadLetterSource): Message {
  const headers: IHeaders = {};
  for (const name in message.headers ?? {}) {
    const value = message.headers?.[name];
    if (value !== undefined) headers[name] = value;
  }
  headers['x-error'] = source.error;
  headers['x-source-topic'] = source.topic;
  headers['x-source-partition'] = String(source.partition);
  headers['x-source-offset'] = message.offset;
  headers['x-attempts'] = String(source.attempts);
  return { key: message.key, value: message.value, headers };
}

export class DeadLetterWriter {
  /** What keeps the latest write from going through, while it does; for the status. */
  problem?: string;

  constructor(
    private readonly connection: KafkaConnection,
    readonly topic: string,
    private readonly warn: (message: string) => void,
    /** Aborted when the consumer closes: writes not yet acknowledged then give up. */
    private readonly signal: AbortSignal,
  ) {}

  /**
   * Writes the records and resolves true once Kafka acknowledged them all (acks from every in-sync replica).
   * Failures are retried with the connection's backoff; resolves false, without writing, once the consumer closes
   * or `wanted()` turns false (its partition went to another consumer, which will deliver the records again).
   */
  async write(messages: KafkaMessage[], source: DeadLetterSource, wanted: () => boolean): Promise<boolean> {
    const records = messages.map((m) => deadLetterMessage(m, source));
    let lastProblem = '';
    // Bounded by close(): every pass ends in an acknowledgement, or in a backoff the abort signal cuts short.
    for (let attempt = 0; ; attempt++) {
      if (this.signal.aborted || !wanted()) return false;
      try {
        const producer = await this.untilClosed(this.connection.producerReady());
        if (!producer || !wanted()) return false;
        await producer.send({ topic: this.topic, messages: records, acks: -1 });
        this.problem = undefined;
        return true;
      } catch (error) {
        if (this.signal.aborted) return false;
        if (classifyError(error) === 'retry') this.connection.producerFailed(error);
        const problem = errorMessage(error);
        // One warning per distinct problem, not one per attempt of a long outage.
        if (problem !== lastProblem) this.warn(`dead-letter write to ${this.topic} failed (${problem}); retrying`);
        lastProblem = problem;
        this.problem = problem;
        await sleep(this.connection.retryDelay(attempt), this.signal);
      }
    }
  }

  private untilClosed<T>(promise: Promise<T>): Promise<T | undefined> {
    if (this.signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => resolve(undefined);
      this.signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          this.signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          this.signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }
}
