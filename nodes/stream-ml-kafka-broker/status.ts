// Status text shared by the nodes that use a broker: the connection's state first, the node's own figures after.
import type { NodeStatus } from 'node-red';
import type { ConnectionState } from '../../src/kafka/connection';

/** Status for a connection that is not (yet) connected, or undefined when it is and the node may say its own. */
export function connectionStatus(state: ConnectionState, now = Date.now()): NodeStatus | undefined {
  switch (state.status) {
    case 'connected':
      return undefined;
    case 'idle':
    case 'connecting':
      return { fill: 'yellow', shape: 'ring', text: 'connecting' };
    case 'reconnecting': {
      // The due time is known for our own retries; a lost socket is retried by kafkajs on its own schedule.
      if (state.nextRetryAt === undefined)
        return { fill: 'yellow', shape: 'ring', text: `reconnecting: ${shorten(state.error ?? '')}` };
      const seconds = Math.max(0, Math.round((state.nextRetryAt - now) / 1000));
      return { fill: 'yellow', shape: 'ring', text: `reconnecting in ${seconds}s: ${shorten(state.error ?? '')}` };
    }
    case 'authFailed':
      return { fill: 'red', shape: 'ring', text: `auth failed: ${shorten(state.error ?? '')}` };
    case 'closed':
      return { fill: 'grey', shape: 'ring', text: 'closed' };
  }
}

function shorten(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** 1234 → "1.2k", for a status line that must stay short. */
export function compact(n: number): string {
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** Records per second between two readings of a counter. */
export class RateMeter {
  private lastCount = 0;
  private lastAt = Date.now();
  rate = 0;

  update(count: number, now = Date.now()): number {
    const seconds = (now - this.lastAt) / 1000;
    if (seconds >= 0.5) {
      this.rate = (count - this.lastCount) / seconds;
      this.lastCount = count;
      this.lastAt = now;
    }
    return this.rate;
  }
}
