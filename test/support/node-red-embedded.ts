// Node-RED embedded in this process (RED.init on an http server of our own), with this package installed in
// its user folder the way the palette manager leaves it: listed in the folder's package.json and present in
// its node_modules (a symlink to the project, so a rebuild shows up without reinstalling). Node-RED then loads
// the package as a user module, with its examples under Import > Examples. Used by `npm run demo` and the
// browser tests. Modules installed beside Node-RED (the Dashboard, a devDependency) load as well.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export const projectRoot = path.resolve(__dirname, '..', '..', '..');
export const packageName = 'node-red-contrib-stream-ml';

export interface FlowNode {
  id: string;
  type: string;
  [key: string]: unknown;
}

export interface LogEntry {
  level: number;
  msg: unknown;
  type?: string;
  id?: string;
}

export interface EmbeddedOptions {
  userDir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Written to <userDir>/flows.json before the start; left as it is when absent. */
  flows?: FlowNode[];
  /** Console log level: 'fatal', 'error', 'warn', 'info', … ('warn' by default). */
  logLevel?: string;
  /** The node-red module to run (Node-RED 4 from node_modules by default). */
  nodeRedPath?: string;
}

export interface EmbeddedNodeRed {
  url: string;
  port: number;
  userDir: string;
  /** Every warning and error Node-RED logged, the runtime's and the nodes'. */
  problems: LogEntry[];
  version: string;
  stop(): Promise<void>;
}

// Node-RED's numeric log levels (@node-red/util log.js).
const ERROR = 20;
const WARN = 30;

/** Makes `userDir` a Node-RED user folder with this package installed in it. */
export function prepareUserDir(userDir: string): void {
  const modules = path.join(userDir, 'node_modules');
  fs.mkdirSync(modules, { recursive: true });
  const manifest = {
    name: 'node-red-user-folder',
    description: 'Node-RED user folder of the stream-ml demo and tests',
    version: '0.0.0',
    private: true,
    dependencies: { [packageName]: `file:${projectRoot}` },
  };
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  const link = path.join(modules, packageName);
  let current: string | undefined;
  try {
    current = fs.readlinkSync(link);
  } catch {
    current = undefined;
  }
  if (current !== projectRoot) {
    fs.rmSync(link, { recursive: true, force: true });
    fs.symlinkSync(projectRoot, link, 'dir');
  }
}

interface RedModule {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: http.RequestListener;
  httpNode: http.RequestListener;
  events: { once(event: string, listener: () => void): void };
}

/** Starts Node-RED on `userDir`; resolves once the flows are started and the port listens. */
export async function startNodeRed(options: EmbeddedOptions): Promise<EmbeddedNodeRed> {
  const { userDir, host = '127.0.0.1', logLevel = 'warn' } = options;
  // A folder (as NODE_RED_PATH may be) resolves to its main file, whose folder's parent holds package.json.
  const nodeRedPath = require.resolve(options.nodeRedPath ?? 'node-red');
  prepareUserDir(userDir);
  if (options.flows) fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(options.flows, null, 2));

  const RED = require(nodeRedPath) as RedModule;
  const express = require(require.resolve('express', { paths: [path.dirname(nodeRedPath)] })) as () => {
    use(route: string, handler: http.RequestListener): void;
  } & http.RequestListener;

  const problems: LogEntry[] = [];
  const app = express();
  const server = http.createServer(app);
  const settings = {
    userDir,
    flowFile: 'flows.json',
    // Demo and test folders hold no secrets worth a key of their own.
    credentialSecret: false,
    uiHost: host,
    uiPort: options.port ?? 0,
    httpAdminRoot: '/',
    httpNodeRoot: '/',
    // No opt-in prompt, no welcome tour: they would cover the editor in screenshots.
    telemetry: { enabled: false },
    editorTheme: { tours: false },
    logging: {
      console: { level: logLevel, metrics: false, audit: false },
      problems: {
        level: 'warn',
        metrics: false,
        audit: false,
        handler: () => (entry: LogEntry) => {
          if (entry.level <= WARN) problems.push(entry);
        },
      },
    },
  };
  RED.init(server, settings);
  app.use(settings.httpAdminRoot, RED.httpAdmin);
  app.use(settings.httpNodeRoot, RED.httpNode);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // RED.start() resolves before the flows run; wait for them (bounded: flows waiting on missing node types
  // never start, and the editor shows why).
  const flowsStarted = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    RED.events.once('flows:started', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  try {
    await RED.start();
  } catch (error) {
    server.close();
    throw error;
  }
  if (!(await flowsStarted)) problems.push({ level: WARN, msg: 'the flows did not start within 20 s' });
  let stopped = false;
  return {
    url: `http://${host}:${port}/`,
    port,
    userDir,
    problems,
    // RED.version() adds "-git" whenever the project around node_modules is a git checkout.
    version: (require(path.join(path.dirname(nodeRedPath), '..', 'package.json')) as { version: string }).version,
    async stop() {
      if (stopped) return;
      stopped = true;
      await RED.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The entries of `problems` at error level or worse, as readable lines. */
export function errorsOf(problems: LogEntry[]): string[] {
  return problems
    .filter((p) => p.level <= ERROR)
    .map((p) => `${p.type ? `[${p.type}${p.id ? ':' + p.id : ''}] ` : ''}${String(p.msg)}`);
}
