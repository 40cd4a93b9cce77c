// What a node tells the Kafka consumer about a message it completes without having finished its work: it was
// stopping (a producer's records not sent at close, a learner's checkpoint not written), or it is still holding
// the message on purpose. The consumer's flow tracker reads these marks, so such a message is never committed as
// if its work were done. Marks live on the message object a node completes, and in a set of held message ids.

const NOT_FINISHED = Symbol.for('stream-ml.not-finished');

/** Before done(): this node stopped before it could finish `msg`; `reason` says why. */
export function markNotFinished(msg: object, reason: string): void {
  (msg as Record<symbol, string>)[NOT_FINISHED] = reason;
}

/** The reason a node gave with markNotFinished, if any. */
export function notFinishedReason(msg: unknown): string | undefined {
  if (!msg || typeof msg !== 'object') return undefined;
  const reason = (msg as Record<symbol, unknown>)[NOT_FINISHED];
  return typeof reason === 'string' ? reason : undefined;
}

// Ids of messages a node holds on purpose (waiting for a checkpoint): the stuck timeout does not apply to them.
const held = new Map<string, number>();

export function holdMessage(id: string | undefined): void {
  if (id !== undefined) held.set(id, (held.get(id) ?? 0) + 1);
}

export function releaseMessage(id: string | undefined): void {
  if (id === undefined) return;
  const n = (held.get(id) ?? 0) - 1;
  if (n > 0) held.set(id, n);
  else held.delete(id);
}

export function isHeld(id: string): boolean {
  return held.has(id);
}

/**
 * For a node that passes messages on. Once its close has begun, the runtime no longer routes what it sends, so a
 * message it would handle then is completed unfinished instead: the consumer does not commit it and delivers it
 * again, to the next flow.
 */
export class ClosingState {
  closing = false;

  constructor(private readonly what: string) {}

  /** True when the node is closing and `msg` has been completed unfinished: the caller must not handle it. */
  refused(msg: object, done: () => void): boolean {
    if (!this.closing) return false;
    markNotFinished(msg, `${this.what} was closing`);
    done();
    return true;
  }
}
