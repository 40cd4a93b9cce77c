// Knows when the flow has finished with a message the consumer sent, and whether it failed. Node-RED's hooks see
// every delivery of a message to a node (preDeliver) and every node's done() (onComplete, which carries the error
// of a done(error)); a message is finished when every delivery of its _msgid has been completed, and failed when
// any of them completed with an error. Nodes that never call done() would hold a message forever, so an entry
// older than its stuck timeout is finished as a failure marked stuck. A node that completes a message it could not
// finish (it was closing) marks it so (src/node-red/unfinished.ts), and one held on purpose is never stuck. A
// message routed to a node the runtime no longer has (stopped by a redeploy) is dropped by Node-RED without a word:
// each route (preRoute) is either delivered (preDeliver) or dropped at once, so a route left over when the message
// is done means it was lost on the way, and the message is finished unfinished (delivered again, not committed).
// Catch and Complete nodes get their copy without a route, right after the done() that sends it to them: they are
// counted when they receive it, and a message is finished a microtask after its count reaches 0, once they have.
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import type { DeliveryOutcome } from '../../src/kafka/consumer';
import { isHeld, notFinishedReason } from '../../src/node-red/unfinished';

interface Entry {
  deliveries: number;
  /** Routes taken (preRoute) not yet delivered (preDeliver): left over at the end, a destination had stopped. */
  routes: number;
  /** When it counts as stuck (epoch ms). */
  deadline: number;
  stuckTimeoutMs: number;
  /** The first error a node completed it with. */
  error?: string;
  /** Why a node completed it unfinished, if one did. */
  unfinished?: string;
  finish: (outcome: DeliveryOutcome) => void;
}

interface HooksApi {
  add(name: string, hook: (event: unknown) => void): void;
  remove(name: string): void;
}

const LABEL = 'stream-ml-kafka-consumer';
const SUCCESS: DeliveryOutcome = {};

/** How long a stuck timeout reads in the status and in messages: `60 s`, `1.5 s`. */
export function formatTimeout(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

export class FlowTracker {
  private readonly pending = new Map<string, Entry>();
  private users = 0;
  private sweeper?: NodeJS.Timeout;
  private sweepEveryMs = 5_000;

  constructor(private readonly hooks: HooksApi | undefined) {}

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

  /** A consumer starts using the tracker; its stuck timeout sets how often pending messages are looked at. */
  acquire(stuckTimeoutMs: number): void {
    const every = Math.max(50, Math.min(5_000, Math.floor(stuckTimeoutMs / 4)));
    if (every < this.sweepEveryMs) {
      this.sweepEveryMs = every;
      this.startSweeper();
    }
    if (this.users++ > 0 || !this.hooks) return;
    this.hooks.add(`preRoute.${LABEL}`, (event) => {
      const id = (event as { msg?: NodeMessage }).msg?._msgid;
      const entry = id === undefined ? undefined : this.pending.get(id);
      if (entry) entry.routes++;
    });
    this.hooks.add(`preDeliver.${LABEL}`, (event) => {
      const e = event as { msg?: NodeMessage; destination?: { node?: { _expectedDoneCount?: number } } };
      const id = e.msg?._msgid;
      if (id === undefined) return;
      const entry = this.pending.get(id);
      if (!entry) return;
      entry.routes--;
      // A node whose input handler takes no done() never completes anything: its delivery is over once handled,
      // so it is not counted. (_expectedDoneCount is how the runtime itself knows; absent, assume done() is used.)
      if (e.destination?.node?._expectedDoneCount !== 0) entry.deliveries++;
    });
    this.hooks.add(`onReceive.${LABEL}`, (event) => {
      const e = event as { msg?: NodeMessage; destination?: { node?: { type?: string } } };
      const type = e.destination?.node?.type;
      if (type !== 'catch' && type !== 'complete') return;
      const id = e.msg?._msgid;
      const entry = id === undefined ? undefined : this.pending.get(id);
      if (entry) entry.deliveries++;
    });
    this.hooks.add(`onComplete.${LABEL}`, (event) => {
      const e = event as { msg?: NodeMessage; error?: unknown };
      this.completed(e.msg?._msgid, e.error, notFinishedReason(e.msg));
    });
    this.startSweeper();
  }

  release(): void {
    if (--this.users > 0) return;
    this.users = 0;
    if (this.hooks) this.hooks.remove(`*.${LABEL}`);
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.sweepEveryMs = 5_000;
  }

  private startSweeper(): void {
    if (!this.hooks || (this.users === 0 && !this.sweeper)) return;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = setInterval(() => this.sweep(), this.sweepEveryMs);
    this.sweeper.unref();
  }

  /**
   * Sends `out` from `node` (a message, or one per output) and calls `finish` once the flow is done with it: with
   * the error a node failed it with, or as stuck once `stuckTimeoutMs` has passed.
   */
  send(
    node: Node,
    out: NodeMessage | (NodeMessage | null)[],
    stuckTimeoutMs: number,
    finish: (outcome: DeliveryOutcome) => void,
  ): void {
    const msg = Array.isArray(out) ? out.find((m): m is NodeMessage => m !== null) : out;
    if (!msg || !this.hooks) {
      node.send(out);
      finish(SUCCESS);
      return;
    }
    const id = (msg._msgid ??= this.nextId());
    const entry: Entry = { deliveries: 0, routes: 0, deadline: Date.now() + stuckTimeoutMs, stuckTimeoutMs, finish };
    this.pending.set(id, entry);
    node.send(out);
    // Delivery is decided synchronously inside send(): no delivery means nothing is wired to take it.
    if (entry.deliveries === 0) this.finish(id, entry);
  }

  private completed(id: string | undefined, error: unknown, unfinished: string | undefined): void {
    if (id === undefined) return;
    const entry = this.pending.get(id);
    if (!entry) return;
    if (error !== undefined && error !== null && entry.error === undefined) entry.error = errorText(error);
    if (unfinished !== undefined) entry.unfinished ??= unfinished;
    // Node-RED hands a done(error) to Catch nodes (and a done() to Complete nodes) just after this hook returns.
    if (--entry.deliveries <= 0)
      queueMicrotask(() => {
        if (entry.deliveries <= 0 && this.pending.get(id) === entry) this.finish(id, entry);
      });
  }

  private finish(id: string, entry: Entry, outcome?: DeliveryOutcome): void {
    this.pending.delete(id);
    if (entry.routes > 0 && !outcome?.stuck) entry.unfinished ??= 'sent on to a node that had stopped (a redeploy)';
    if (entry.unfinished !== undefined) entry.finish({ error: entry.unfinished, unfinished: true });
    else entry.finish(outcome ?? (entry.error === undefined ? SUCCESS : { error: entry.error }));
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, entry] of this.pending) {
      if (entry.deadline <= now && isHeld(id)) entry.deadline = now + entry.stuckTimeoutMs;
      else if (entry.deadline <= now) {
        const error = `not finished by the flow within ${formatTimeout(entry.stuckTimeoutMs)} (stuck)`;
        this.finish(id, entry, { error: entry.error ?? error, stuck: true });
      }
    }
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' ? message : String(error);
}

const trackers = new WeakMap<NodeAPI, FlowTracker>();

/** One tracker per Node-RED runtime, since hooks are per runtime. */
export function flowTracker(RED: NodeAPI): FlowTracker {
  let tracker = trackers.get(RED);
  if (!tracker) {
    const hooks = (RED as unknown as { hooks?: HooksApi }).hooks;
    tracker = new FlowTracker(hooks);
    trackers.set(RED, tracker);
  }
  return tracker;
}
