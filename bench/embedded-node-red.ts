// Node-RED embedded with RED.init for the node benchmarks (bench:nodes, bench:keyed): the test helper spies on every
// node call, which would skew the figures. Two helper nodes come with it: bench-pass (the least a node can do) and
// bench-sink (counts what arrives), and pump() drives a flow at a bounded number of unanswered messages.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Node, NodeMessage } from 'node-red';

const root = path.resolve(__dirname, '..', '..');

const BENCH_NODES: Record<string, string> = {
  'bench-pass.js': `module.exports = function (RED) {
  RED.nodes.registerType('bench-pass', function (config) {
    RED.nodes.createNode(this, config);
    this.on('input', (msg, send, done) => { send(msg); done(); });
  });
};`,
  'bench-sink.js': `module.exports = function (RED) {
  RED.nodes.registerType('bench-sink', function (config) {
    RED.nodes.createNode(this, config);
    this.on('input', (msg, send, done) => { this.emit('arrived', msg); done(); });
  });
};`,
};

export interface Runtime {
  init(server: http.Server, settings: object): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  nodes: { getNode(id: string): Node };
}

/** Starts Node-RED with this package and the bench nodes on `flows`; resolves once the flows' first node exists. */
export async function startRuntime(
  flows: { id: string }[],
  settings: { userDirPrefix: string; contextStorage?: object; logLevel?: string },
): Promise<Runtime> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), settings.userDirPrefix));
  const nodesDir = path.join(userDir, 'bench-nodes');
  fs.mkdirSync(nodesDir);
  for (const [file, code] of Object.entries(BENCH_NODES)) {
    fs.writeFileSync(path.join(nodesDir, file), code);
    fs.writeFileSync(path.join(nodesDir, file.replace('.js', '.html')), '');
  }
  fs.mkdirSync(path.join(userDir, 'node_modules'));
  fs.symlinkSync(root, path.join(userDir, 'node_modules', 'node-red-contrib-stream-ml'), 'dir');
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flows));
  const RED = require('node-red') as Runtime;
  RED.init(http.createServer(), {
    userDir,
    flowFile: 'flows.json',
    nodesDir: [nodesDir],
    httpAdminRoot: false,
    httpNodeRoot: false,
    ...(settings.contextStorage ? { contextStorage: settings.contextStorage } : {}),
    logging: { console: { level: settings.logLevel ?? 'warn' } },
  });
  await RED.start();
  // Flows start after the runtime resolves; wait until the first node exists.
  await waitFor(() => RED.nodes.getNode(flows[1].id));
  return RED;
}

export async function waitFor<T>(probe: () => T | undefined | null): Promise<T> {
  for (;;) {
    const value = probe();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends every payload into `first`, at most `inFlight` unanswered, and resolves with messages per second. */
export async function pump(
  RED: Runtime,
  payloads: unknown[],
  firstId: string,
  sinkId: string,
  inFlight: number,
): Promise<number> {
  const first = RED.nodes.getNode(firstId);
  const sink = RED.nodes.getNode(sinkId) as Node & NodeJS.EventEmitter;
  let sent = 0;
  let received = 0;
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const top = () => {
      while (sent < payloads.length && sent - received < inFlight)
        first.receive({ payload: payloads[sent++] } as NodeMessage);
    };
    sink.on('arrived', () => {
      received++;
      if (received === payloads.length) resolve();
      else if (sent - received < inFlight / 2) top();
    });
    top();
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  sink.removeAllListeners('arrived');
  return payloads.length / seconds;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
