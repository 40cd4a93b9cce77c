// The real `node-red` command in a child process, on a user folder with this package installed as a symlink:
// for tests that restart Node-RED or need its admin security, which the test helper's mock runtime lacks.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { nodeRedPath } from './env';
import { prepareUserDir } from './node-red-embedded';

export interface NodeRedProcess {
  url: string;
  /** The node-red process's id (benchmarks read its memory and CPU time from /proc). */
  pid: number;
  output: () => string;
  stop(): Promise<void>;
  /** SIGKILL: the process ends at once, as in a crash or power loss. */
  kill(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The node-red package folder of the line under test (NODE_RED_PATH names the folder; else it is resolved). */
export function nodeRedPackageDir(): string {
  const resolved = nodeRedPath();
  return fs.statSync(resolved).isDirectory() ? resolved : path.dirname(require.resolve('node-red/package.json'));
}

/** Installs the package in the folder (as the demo does) and writes settings.js and flows.json. */
export function prepareUserFolder(userDir: string, settings: Record<string, unknown>, flows: unknown[]): void {
  prepareUserDir(userDir);
  fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flows, null, 2));
}

/** Starts node-red on the folder and resolves once it has started its flows. `nodeArgs` go to node itself
 * (--cpu-prof, heap options), before red.js. */
export async function startNodeRed(
  userDir: string,
  timeoutMs = 60_000,
  nodeArgs: string[] = [],
): Promise<NodeRedProcess> {
  const port = await freePort();
  const redJs = path.join(nodeRedPackageDir(), 'red.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, redJs, '--userDir', userDir, '--settings', path.join(userDir, 'settings.js'), '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = Date.now();
  while (!/Started flows/.test(output)) {
    if (child.exitCode !== null) throw new Error(`node-red exited during start-up:\n${output}`);
    if (Date.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`node-red did not start its flows within ${timeoutMs / 1000}s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Settings of a user folder whose models outlive the process (the localfilesystem store), on loopback only; info
 * logging, since startNodeRed waits for its "Started flows". */
export const PERSISTENT_SETTINGS: Record<string, unknown> = {
  flowFile: 'flows.json',
  uiHost: '127.0.0.1',
  logging: { console: { level: 'info' } },
  contextStorage: { default: { module: 'localfilesystem' } },
};

/** What the sidebar's route says of every model of a running Node-RED. */
export async function modelSummaries<T>(url: string): Promise<T[]> {
  const res = await fetch(`${url}/stream-ml/models`);
  if (res.status !== 200) throw new Error(`GET ${url}/stream-ml/models: ${res.status}`);
  return (await res.json()) as T[];
}

/** The warning and error lines of Node-RED's output, without the two every start prints. */
export function warningsIn(output: string): string {
  return output
    .split('\n')
    .filter((line) => /\[(warn|error)\]/.test(line) && !/Projects disabled|Encrypted credentials/.test(line))
    .join('\n');
}
