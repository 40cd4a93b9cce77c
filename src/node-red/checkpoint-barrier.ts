// Holds the done() of messages whose records were learned until a durable checkpoint includes them. A Kafka
// consumer commits an offset only once the flow has finished its message, so it then never commits past what a
// saved model has learned: after a crash it resumes at or before that point, and the model skips what it has.
// Checkpoints are taken one at a time, soon after messages are held (at once when many are), so the consumer's
// in-flight window keeps moving.

/** Called once: `durable` says whether a written checkpoint has the message's records. */
type Done = (durable: boolean) => void;

export interface CheckpointBarrierOptions {
  /** Writes the checkpoint; takes the snapshot synchronously, when called. */
  save: () => Promise<void>;
  onError: (error: Error) => void;
  /** How long held messages wait for company before a checkpoint (ms). */
  delayMs?: number;
  /** Held records that start a checkpoint at once. */
  eagerRecords?: number;
  /** The wait before trying again after a failed checkpoint (ms). */
  retryMs?: number;
  /** On close: no message held for this long means the flow has stopped sending (ms). */
  quietMs?: number;
  /** On close: the longest wait for that quiet (ms). */
  closeWaitMs?: number;
}

export class CheckpointBarrier {
  private held: Done[] = [];
  private heldRecords = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private lastHeldAt = 0;
  private readonly quietMs: number;
  private readonly closeWaitMs: number;
  /** The last checkpoint failed. */
  private failing = false;
  private readonly delayMs: number;
  private readonly eagerRecords: number;
  private readonly retryMs: number;
  /** Checkpoints written, for the status. */
  checkpoints = 0;

  constructor(private readonly options: CheckpointBarrierOptions) {
    this.delayMs = options.delayMs ?? 50;
    this.eagerRecords = options.eagerRecords ?? 500;
    this.retryMs = options.retryMs ?? 1_000;
    this.quietMs = options.quietMs ?? 100;
    this.closeWaitMs = options.closeWaitMs ?? 2_000;
  }

  /** Messages waiting for a checkpoint. */
  get waiting(): number {
    return this.held.length;
  }

  /** Calls done once a checkpoint taken after this call has been written. */
  hold(done: Done, records: number): void {
    if (this.closed) return done(false);
    this.lastHeldAt = Date.now();
    this.held.push(done);
    this.heldRecords += records;
    this.schedule();
  }

  /**
   * Once messages stop coming (the consumer stops fetching when it closes; those on their way still arrive), the
   * last checkpoint, then every held done(), saying whether it could be written (the node is going either way).
   */
  async close(): Promise<void> {
    const started = Date.now();
    while (Date.now() - this.lastHeldAt < this.quietMs && Date.now() - started < this.closeWaitMs)
      await new Promise((resolve) => setTimeout(resolve, this.quietMs / 2));
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    const dones = this.take();
    let durable = false;
    try {
      await this.options.save();
      durable = true;
    } finally {
      for (const done of dones) done(durable);
    }
  }

  /** After a failure, the next try waits retryMs however many records wait. */
  private schedule(): void {
    if (this.running || this.closed || this.held.length === 0) return;
    if (this.failing) this.timer ??= setTimeout(() => this.checkpoint(), this.retryMs);
    else if (this.heldRecords >= this.eagerRecords) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.checkpoint();
    } else this.timer ??= setTimeout(() => this.checkpoint(), this.delayMs);
  }

  private take(): Done[] {
    const dones = this.held;
    this.held = [];
    this.heldRecords = 0;
    return dones;
  }

  private checkpoint(): void {
    this.timer = undefined;
    const records = this.heldRecords;
    const dones = this.take();
    this.running = this.options
      .save()
      .then(
        () => {
          this.failing = false;
          this.checkpoints++;
          for (const done of dones) done(true);
        },
        (error: Error) => {
          // Not durable: they wait for the next checkpoint.
          this.held = dones.concat(this.held);
          this.heldRecords += records;
          this.failing = true;
          this.options.onError(error);
        },
      )
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
  }
}
