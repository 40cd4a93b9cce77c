// Holds a node's messages, in order, until its start-up work (reading the model from context) is done; after
// that, messages run at once, with no promise per message on the hot path.
export class StartGate {
  private open = false;
  private queue: Promise<unknown>;

  constructor(startup: Promise<unknown>) {
    this.queue = startup.then(() => {
      this.open = true;
    });
  }

  run(task: () => void): void {
    if (this.open) task();
    else this.queue = this.queue.then(task);
  }

  /** Resolves once start-up and every held message are done (for close). */
  settled(): Promise<unknown> {
    return this.queue;
  }
}
