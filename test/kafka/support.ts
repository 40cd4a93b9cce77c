// Shared by the Kafka node tests: loading the nodes into node-red-node-test-helper, topics on the test broker,
// and bounded waiting.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import type { NodeAPI } from 'node-red';
import { after, before } from 'node:test';
import helper from 'node-red-node-test-helper';
import { kafkaBrokers, nodeRedPath, projectRoot } from '../support/env';

type NodeModule = (RED: NodeAPI) => void;

/** The test helper on the Node-RED under test, its server started before a file's tests and stopped after them. */
export function useTestRuntime(): void {
  helper.init(nodeRedPath());
  before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
}

function load(type: string): NodeModule {
  return require(path.join(projectRoot, 'dist', 'nodes', type, `${type}.js`)) as NodeModule;
}

/**
 * The three Kafka node modules. The test helper builds its RED without `hooks` (the real runtime has them), so
 * the runtime's own hooks are handed in: the consumer needs them to know when the flow is done with a message.
 */
export function kafkaNodes(): NodeModule[] {
  const runtimeHooks = (require(nodeRedPath()) as { hooks?: unknown }).hooks;
  const withHooks =
    (mod: NodeModule): NodeModule =>
    (RED) => {
      const red = RED as unknown as { hooks?: unknown };
      if (!red.hooks) red.hooks = runtimeHooks;
      return mod(RED);
    };
  return ['stream-ml-kafka-broker', 'stream-ml-kafka-consumer', 'stream-ml-kafka-producer'].map((t) =>
    withHooks(load(t)),
  );
}

export const brokers = (): string => kafkaBrokers().join(',');

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function client(): Kafka {
  return new Kafka({
    clientId: 'stream-ml-test',
    brokers: kafkaBrokers(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = client().admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(prefix: string, partitions = 1): Promise<string> {
  const topic = uniqueName(prefix);
  await withAdmin((admin) =>
    admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true }),
  );
  return topic;
}

export async function produceRaw(
  topic: string,
  messages: {
    key?: string | Buffer | null;
    value: string | Buffer | null;
    partition?: number;
    headers?: Record<string, string>;
  }[],
): Promise<void> {
  const producer = client().producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages });
  } finally {
    await producer.disconnect();
  }
}

/** Reads a topic from the beginning with plain kafkajs until `count` records arrived or `timeoutMs` passed. */
export async function consumeRaw(
  topic: string,
  count: number,
  timeoutMs = 30_000,
): Promise<{ key: Buffer | null; value: Buffer | null; headers: Record<string, unknown>; partition: number }[]> {
  const consumer = client().consumer({ groupId: uniqueName('raw-reader') });
  const out: { key: Buffer | null; value: Buffer | null; headers: Record<string, unknown>; partition: number }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      void consumer.run({
        eachMessage: async ({ message, partition }) => {
          out.push({ key: message.key, value: message.value, headers: message.headers ?? {}, partition });
          if (out.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** The group's committed offset per partition of `topic` ('-1' where it has committed nothing). */
export async function committedOffsets(groupId: string, topic: string): Promise<Record<number, string>> {
  const [entry] = await withAdmin((admin) => admin.fetchOffsets({ groupId, topics: [topic] }));
  const out: Record<number, string> = {};
  for (const p of entry?.partitions ?? []) out[p.partition] = p.offset;
  return out;
}

/** Polls the asynchronous `check` every 100 ms until it is true; fails with `what` after `timeoutMs`. */
export async function waitForAsync(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls `check` every 50 ms until it is true; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function brokerNode(id = 'broker', extra: Record<string, unknown> = {}): FlowNode {
  return { id, type: 'stream-ml-kafka-broker', name: 'test broker', brokers: brokers(), clientId: 'test', ...extra };
}

/**
 * A kafka consumer node on the broker node `broker`, reading `topic` from the earliest offset as JSON and committing
 * every 200 ms; `extra` sets anything else (wires, id, options).
 */
export function consumerNode(topic: string, groupId: string, extra: Record<string, unknown> = {}): FlowNode {
  return {
    id: 'consumer',
    type: 'stream-ml-kafka-consumer',
    broker: 'broker',
    topics: topic,
    groupId,
    fromBeginning: 'earliest',
    valueEncoding: 'json',
    commitInterval: 200,
    ...extra,
  };
}

export interface FlowNode {
  id: string;
  type: string;
  [key: string]: unknown;
}

/** A node of the loaded flow, typed loosely: tests send into it and listen to it. */
export interface TestNode {
  id: string;
  receive(msg: object): void;
  on(event: 'input', listener: (msg: never) => void): void;
  on(event: string, listener: (...args: never[]) => void): void;
  credentials?: Record<string, unknown>;
}

export async function loadFlow(
  flow: FlowNode[],
  credentials?: Record<string, unknown>,
  extraModules: unknown[] = [],
): Promise<void> {
  const load = helper.load.bind(helper) as unknown as (nodes: unknown, f: unknown, c?: unknown) => Promise<void>;
  await load([...kafkaNodes(), ...extraModules], onTab(flow), credentials);
}

/** Redeploys the flow as the editor would ('nodes' restarts only what changed). */
export async function redeploy(flow: FlowNode[], type: 'full' | 'nodes' | 'flows' = 'nodes'): Promise<void> {
  await helper.setFlows(onTab(flow) as never, type);
}

// The runtime takes a node without x and y for a config node: put every other node on a tab, as the editor does.
function onTab(flow: FlowNode[]): FlowNode[] {
  const placed = flow.map((n) =>
    n.type === 'tab' || n.type === 'stream-ml-kafka-broker' ? n : { x: 100, y: 100, z: 'f1', ...n },
  );
  return flow.some((n) => n.id === 'f1') ? placed : [{ id: 'f1', type: 'tab', label: 'test' }, ...placed];
}

export function flowNode(id: string): TestNode {
  const found = helper.getNode(id) as unknown as TestNode | null;
  if (!found) throw new Error(`node ${id} is not in the flow`);
  return found;
}

/** Collects every message that reaches the node `id`. */
export function collect<T>(id: string): T[] {
  const out: T[] = [];
  flowNode(id).on('input', (msg: never) => out.push(msg as T));
  return out;
}

/** Log entries a node wrote through node.warn / node.error (helper.log() spies on the runtime log). */
export function logged(id: string, level: 'warn' | 'error'): string[] {
  const spy = helper.log() as unknown as { args: [{ id?: string; level?: number; msg?: unknown }][] };
  const wanted = level === 'warn' ? 30 : 20;
  return spy.args
    .map((a) => a[0])
    .filter((e) => e && e.id === id && e.level === wanted)
    .map((e) => String(e.msg));
}

/** Node-RED's own Catch node, from the runtime under test. */
export function catchNodeModule(): unknown {
  const nodesDir = path.join(path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [nodeRedDir()] })));
  return require(path.join(nodesDir, 'core', 'common', '25-catch.js'));
}

/** Node-RED's own function node, from the runtime under test. */
export function functionNodeModule(): unknown {
  const nodesDir = path.join(path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [nodeRedDir()] })));
  return require(path.join(nodesDir, 'core', 'function', '10-function.js'));
}

function nodeRedDir(): string {
  return path.dirname(nodeRedPath());
}
