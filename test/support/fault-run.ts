// What the fault tests (test/faults) share: a stream of records written into the input topic at a steady pace, and
// `node-red` processes, each on a user folder of its own with the persistent settings, whose output is kept across
// restarts for a failure's report.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { client } from '../kafka/support';
import { projectRoot } from './env';
import {
  PERSISTENT_SETTINGS,
  prepareUserFolder,
  startNodeRed,
  warningsIn,
  type NodeRedProcess,
} from './node-red-process';

export interface PacedStream {
  /** Starts the stream, when it was made waiting for this. */
  release(): void;
  /** Holds the stream (resolving once no send is under way) or lets it go on. */
  hold(held: boolean): Promise<void>;
  /** Resolves once every record is in the topic. */
  done: Promise<void>;
  /** Lets the stream finish and disconnects its producer. */
  close(): Promise<void>;
}

/**
 * Writes `records` into `topic`, `perTick` every 100 ms, each keyed by its id. The producer is idempotent: kafkajs
 * retries a send that a restarted broker wrote but did not acknowledge, and a duplicate in the input would (rightly)
 * be learned twice.
 */
export async function pacedStream(
  topic: string,
  records: { id: number }[],
  perTick: number,
  options: { waitForRelease?: boolean } = {},
): Promise<PacedStream> {
  const producer = client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let release: () => void = () => undefined;
  const go = options.waitForRelease ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve();
  let held = false;
  let sending = false;
  const done = (async () => {
    await go;
    for (let next = 0; next < records.length;) {
      while (held) await new Promise((r) => setTimeout(r, 50));
      const batch = records.slice(next, next + perTick);
      sending = true;
      await producer.send({
        topic,
        messages: batch.map((r) => ({ key: String(r.id), value: JSON.stringify(r) })),
      });
      sending = false;
      next += batch.length;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    release: () => release(),
    async hold(hold) {
      held = hold;
      // A send cut off by the broker's death would be retried into duplicates: wait until none is under way.
      while (hold && sending) await new Promise((r) => setTimeout(r, 10));
    },
    done,
    async close() {
      held = false;
      release();
      await done.catch(() => undefined);
      await producer.disconnect();
    },
  };
}

/** Why the broker cannot be killed and restarted here (KAFKA_BROKERS is not the one scripts/kafka.mjs started), or false. */
export function brokerNotRestartable(): string | false {
  const stateFile = path.join(
    process.env.STREAM_ML_CACHE ?? path.join(projectRoot, '.cache'),
    'kafka',
    'run',
    'state.json',
  );
  try {
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { brokers: string };
    if (state.brokers === process.env.KAFKA_BROKERS) return false;
  } catch {
    // No broker of the script's.
  }
  return 'KAFKA_BROKERS is not a broker started by scripts/kafka.mjs';
}

function kafkaScript(command: 'suspend' | 'resume'): void {
  execFileSync(process.execPath, [path.join(projectRoot, 'scripts', 'kafka.mjs'), command], {
    stdio: 'inherit',
    timeout: 150_000,
  });
}

/**
 * SIGKILLs the broker, waits `downMs` and starts it again on the same ports and data (scripts/kafka.mjs suspend,
 * resume), the stream held meanwhile: a send cut off by the kill would be retried into duplicates.
 */
export async function killAndRestartBroker(stream: Pick<PacedStream, 'hold'>, downMs: number): Promise<void> {
  await stream.hold(true);
  kafkaScript('suspend');
  try {
    await new Promise((r) => setTimeout(r, downMs));
  } finally {
    kafkaScript('resume');
  }
  await stream.hold(false);
}

/** `node-red` processes by name, each on a user folder of its own that a restart starts on again. */
export class NodeRedProcesses {
  readonly processes = new Map<string, NodeRedProcess>();
  private readonly folders = new Map<string, string>();
  /** Output of processes that have ended (stopped, killed, restarted). */
  private readonly earlier: string[] = [];

  constructor(private readonly prefix: string) {}

  async start(name: string, flows: unknown[]): Promise<NodeRedProcess> {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), `${this.prefix}-${name}-`));
    this.folders.set(name, userDir);
    prepareUserFolder(userDir, PERSISTENT_SETTINGS, flows);
    const nodeRed = await startNodeRed(userDir);
    this.processes.set(name, nodeRed);
    return nodeRed;
  }

  /** Starts the process again on its user folder (after a stop or a kill). */
  async restart(name: string): Promise<NodeRedProcess> {
    this.earlier.push(this.processes.get(name)!.output());
    const nodeRed = await startNodeRed(this.folders.get(name)!);
    this.processes.set(name, nodeRed);
    return nodeRed;
  }

  /** Every process's warnings and errors, those that ended included. */
  warnings(): string {
    return warningsIn([...this.earlier, ...[...this.processes.values()].map((p) => p.output())].join('\n'));
  }

  /** Stops every process and removes the user folders. */
  async close(): Promise<void> {
    for (const p of this.processes.values()) {
      this.earlier.push(p.output());
      await p.stop();
    }
    for (const dir of this.folders.values()) fs.rmSync(dir, { recursive: true, force: true });
  }
}
