// Knows when the flow has finished with a message the consumer sent. Node-RED's hooks see every delivery of a
// message to a node (preDeliver) and every node's done() (onComplete); a message is finished when every delivery
// of its _msgid has been completed. Nodes that never call done() would hold a message forever, so an entry older
// than the stuck timeout counts as finished (and is counted, so the status can say so).
import type { Node, NodeAPI, NodeMessage } from 'node-red';

interface Entry {
  deliveries: number;
  sentAt: number;
  finish: () => void;
}

interface HooksApi {
  add(name: string, hook: (event: unknown) => void): void;
  remove(name: string): void;
}

const LABEL = 'stream-ml-kafka-consumer';

export class FlowTracker {
  private readonly pending = new Map<string, Entry>();
  private users = 0;
  private sweeper?: NodeJS.Timeout;
  stuck = 0;

  constructor(
    private readonly hooks: HooksApi | undefined,
    private readonly stuckTimeoutMs: number,
  ) {}

  // Node-RED's generateId() draws random bytes per call; a random prefix and a counter are as unique, and cheaper.
  private readonly idPrefix = Math.random().toString(16).slice(2, 10);
  private idCounter = 0;
  private nextId(): string {
    return `${this.idPrefix}${(this.idCounter++).toString(16)}`;
  }

  /** False when this Node-RED gives nodes no hooks: messages then count as finished when sent. */
  get tracking(): boolean {
    return this.hooks !== undefined;
  }

  acquire(): void {
    if (this.users++ > 0 || !this.hooks) return;
    this.hooks.add(`preDeliver.${LABEL}`, (event) => {
      const e = event as { msg?: NodeMessage; destination?: { node?: { _expectedDoneCount?: number } } };
      const id = e.msg?._msgid;
      if (id === undefined) return;
      // A node whose input handler takes no done() never completes anything: its delivery is over once handled,
      // so it is not counted. (_expectedDoneCount is how the runtime itself knows; absent, assume done() is used.)
      if (e.destination?.node?._expectedDoneCount === 0) return;
      const entry = this.pending.get(id);
      if (entry) entry.deliveries++;
    });
    this.hooks.add(`onComplete.${LABEL}`, (event) => {
      this.completed((event as { msg?: NodeMessage }).msg?._msgid);
    });
    this.sweeper = setInterval(() => this.sweep(), Math.min(5_000, this.stuckTimeoutMs));
    this.sweeper.unref();
  }

  release(): void {
    if (--this.users > 0) return;
    this.users = 0;
    if (this.hooks) this.hooks.remove(`*.${LABEL}`);
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Sends `out` from `node` (a message, or one per output) and calls `finish` once the flow is done with it. */
  send(node: Node, out: NodeMessage | (NodeMessage | null)[], finish: () => void): void {
    const msg = Array.isArray(out) ? out.find((m): m is NodeMessage => m !== null) : out;
    if (!msg || !this.hooks) {
      node.send(out);
      finish();
      return;
    }
    const id = (msg._msgid ??= this.nextId());
    const entry: Entry = { deliveries: 0, sentAt: Date.now(), finish };
    this.pending.set(id, entry);
    node.send(out);
    // Delivery is decided synchronously inside send(): no delivery means nothing is wired to take it.
    if (entry.deliveries === 0) this.finish(id, entry);
  }

  private completed(id: string | undefined): void {
    if (id === undefined) return;
    const entry = this.pending.get(id);
    if (entry && --entry.deliveries <= 0) this.finish(id, entry);
  }

  private finish(id: string, entry: Entry): void {
    this.pending.delete(id);
    entry.finish();
  }

  private sweep(): void {
    const cutoff = Date.now() - this.stuckTimeoutMs;
    for (const [id, entry] of this.pending) {
      if (entry.sentAt < cutoff) {
        this.stuck++;
        this.finish(id, entry);
      }
    }
  }
}

const trackers = new WeakMap<NodeAPI, FlowTracker>();

/** One tracker per Node-RED runtime, since hooks are per runtime. */
export function flowTracker(RED: NodeAPI, stuckTimeoutMs: number): FlowTracker {
  let tracker = trackers.get(RED);
  if (!tracker) {
    const hooks = (RED as unknown as { hooks?: HooksApi }).hooks;
    tracker = new FlowTracker(hooks, stuckTimeoutMs);
    trackers.set(RED, tracker);
  }
  return tracker;
}
