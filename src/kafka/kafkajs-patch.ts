// kafkajs 2.2.4 (its last release) re-arms a timer in every broker connection's request queue about once per
// millisecond, forever, even with nothing queued (tulios/kafkajs#1556, #1704; the fixes were never merged). On an
// idle gateway that is ~1000 wake-ups per second per connection, and a connection dropped mid-request (a broker
// restart) keeps its loop after its client is closed, holding the process open. The guard below stops scheduling
// when nothing is pending and no throttle is in force; every other path is kafkajs's own.
interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: unknown;
  scheduleCheckPendingRequests(): void;
}

let applied = false;

export function applyKafkajsIdleLoopFix(): boolean {
  if (applied) return true;
  let RequestQueue: { prototype: RequestQueueLike } | undefined;
  try {
    // An internal, untyped module of kafkajs: required by path, as there is no import to give it a type.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    RequestQueue = require('kafkajs/src/network/requestQueue') as { prototype: RequestQueueLike };
  } catch {
    return false; // a kafkajs whose layout differs: leave it alone
  }
  const original = RequestQueue.prototype.scheduleCheckPendingRequests;
  // Only the known shape of the method gets the guard.
  if (typeof original !== 'function' || !/throttledUntil\s*-\s*Date\.now\(\)/.test(original.toString())) return false;
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueueLike): void {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    original.call(this);
  };
  applied = true;
  return true;
}
