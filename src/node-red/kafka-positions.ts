// The position of each record of a message from the Kafka consumer node (msg.kafka): its source is the topic and
// partition, its position the offset. The model's LearnedPositions key on these to know a replayed record.

export class KafkaPositions {
  /** `${topic}/${partition}` of the message read last, or undefined when it has no usable msg.kafka. */
  source: string | undefined;
  private offset = 0;
  private offsets: number[] | undefined;
  private lastTopic = '';
  private lastPartition = -1;
  private lastSource = '';

  /** Reads msg.kafka for a message of `count` records (a batch carries one offset per record). */
  read(msg: object, count: number): void {
    this.source = undefined;
    this.offsets = undefined;
    const kafka = (msg as { kafka?: unknown }).kafka;
    if (typeof kafka !== 'object' || kafka === null) return;
    const { topic, partition, offset, offsets } = kafka as {
      topic?: unknown;
      partition?: unknown;
      offset?: unknown;
      offsets?: unknown;
    };
    if (typeof topic !== 'string' || typeof partition !== 'number' || !Number.isInteger(partition)) return;
    if (Array.isArray(offsets)) {
      if (offsets.length !== count) return;
      const numbers = new Array<number>(count);
      for (let i = 0; i < count; i++) {
        const n = positionOf(offsets[i]);
        if (n === undefined) return;
        numbers[i] = n;
      }
      this.offsets = numbers;
    } else {
      const n = count === 1 ? positionOf(offset) : undefined;
      if (n === undefined) return;
      this.offset = n;
    }
    // One string per partition, not per message.
    if (topic !== this.lastTopic || partition !== this.lastPartition) {
      this.lastTopic = topic;
      this.lastPartition = partition;
      this.lastSource = `${topic}/${partition}`;
    }
    this.source = this.lastSource;
  }

  /** `${topic}/${partition}` of a message from the Kafka consumer node, without reading its offsets. */
  static sourceOf(msg: object): string | undefined {
    const kafka = (msg as { kafka?: { topic?: unknown; partition?: unknown } }).kafka;
    if (typeof kafka !== 'object' || kafka === null) return undefined;
    const { topic, partition } = kafka;
    return typeof topic === 'string' && typeof partition === 'number' ? `${topic}/${partition}` : undefined;
  }

  /** The offset of the message's record at index (only when source is set). */
  at(index: number): number {
    return this.offsets === undefined ? this.offset : this.offsets[index];
  }
}

/** A Kafka offset (a decimal string, or a number) as a number; past 2^53 it would not be exact, so none. */
function positionOf(offset: unknown): number | undefined {
  const n = typeof offset === 'string' ? Number(offset) : offset;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
