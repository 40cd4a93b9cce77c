// `npm run bench:e2e`: the whole pipeline, Kafka in → score → learn → Kafka out, beside references from the same run,
// against the local broker (KAFKA_BROKERS, else the one scripts/kafka.mjs runs, or starts: it is left running, as
// other runs may have found it meanwhile; `npm run kafka:stop` stops it). Each
// variant runs in a process of its own:
//   kafkajs  a plain kafkajs consume → produce pipe (bench/e2e-pipe.ts): the ceiling of the client on this machine;
//   record   our consumer → anomaly scorer → online learner → producer in a real `node-red` process, one message per
//            record;
//   batch    the same flow on the consumer's batch output (one message per chunk of a partition's records); the
//            producer writes one record per element of the chunk (its "one record per element" option), so the
//            output topic gets one prediction per input record, as in a and b;
//   floor    our consumer → two pass-through nodes → our producer, one message per record: what Node-RED and our
//            Kafka nodes cost per record with no model at all, the floor of any per-record flow in this design;
//   peer     node-red-contrib-kafkajs's consumer and producer with two nodes between them: one taking the record's
//            value out of the message that consumer sends (what its producer needs), one passing it on. Installed
//            for the benchmark only, into .cache/bench-e2e/peer; never a dependency of this package.
// The nodes keep their defaults, except: the scorer writes its result into the record (payload.anomaly) so that the
// prediction reaches the output topic; the learner has the Shuttle attribute table (the record's id is no feature);
// consumers start from the earliest offset (the peer's needs its advanced options on for that, left at their
// defaults otherwise).
// Each variant is measured twice:
//   full speed  a topic of Shuttle records (repeated, each with a unique id) holds enough for --seconds at 100k/s;
//               records/s from the first output record's Kafka timestamp to the last's (the group join is left out,
//               as in bench:kafka), and the process's CPU seconds per million records over that time;
//   fixed load  --rate records/s offered for --seconds after a warm-up; latency from each input record's Kafka
//               timestamp to its output record's (p50, p99, max).
// Peak RSS is the process's VmHWM over both. Figures only: nothing fails on time. Writes bench/results/e2e.json.
//   npm run bench:e2e -- --seconds 5 --variants kafkajs,record      a short run
//   --runs 3  median of three full-speed runs;  --cpu-prof  CPU profiles of the Node-RED processes, into
//   .cache/bench-e2e/profiles;  --probe  counters of what the pipeline waits on (bench/e2e-probe.ts), into
//   .cache/bench-e2e/probes and the results
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, type Consumer, type KafkaMessage, type Producer } from 'kafkajs';
import { rocAuc } from '../src/engine/evaluation';
import { readShuttleRecords } from '../src/datasets/shuttle';
import { startNodeRed, type NodeRedProcess } from '../test/support/node-red-process';
import { shuttleCsvPath } from './shuttle-csv';

const root = path.resolve(__dirname, '..', '..');
const cacheDir = process.env.STREAM_ML_CACHE ?? path.join(root, '.cache');
const workDir = path.join(cacheDir, 'bench-e2e');

const VARIANTS = ['kafkajs', 'record', 'batch', 'peer', 'floor'] as const;
type Variant = (typeof VARIANTS)[number];
const LABELS: Record<Variant, string> = {
  kafkajs: 'a. kafkajs consume → produce',
  record: 'b. stream-ml flow, per record',
  batch: 'c. stream-ml flow, batches',
  peer: 'd. node-red-contrib-kafkajs',
  floor: 'e. our Kafka nodes, no model',
};
const PEER_PACKAGE = 'node-red-contrib-kafkajs';
const PEER_VERSION = '0.0.7';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    variants: { type: 'string', default: VARIANTS.join(',') },
    rate: { type: 'string', default: '5000' },
    partitions: { type: 'string', default: '6' },
    records: { type: 'string' },
    runs: { type: 'string', default: '1' },
    'cpu-prof': { type: 'boolean', default: false },
    probe: { type: 'boolean', default: false },
    options: { type: 'string' },
    'node-args': { type: 'string', default: '' },
    out: { type: 'string', default: path.join(root, 'bench', 'results', 'e2e.json') },
  },
});
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate);
const PARTITIONS = Number(args.partitions);
const RUNS = Number(args.runs);
// Enough for --seconds of the fastest variant seen on this machine (the kafkajs pipe, well under 100k/s).
const RECORDS = Number(args.records ?? SECONDS * 100_000);
const CPU_PROF = args['cpu-prof'] === true;
const PROBE = args.probe === true;
// Settings that differ from the defaults, by node id (consumer, scorer, learner, producer): for measuring what an
// option changes, e.g. --options '{"consumer":{"maxInFlight":4000}}'. The results say which were used.
// Options for node itself in the Node-RED processes, e.g. --node-args=--max-semi-space-size=32 (GC).
const NODE_ARGS = args['node-args'].split(' ').filter(Boolean);
const OPTIONS = JSON.parse(args.options ?? '{}') as Record<string, Record<string, unknown>>;
const chosen = args.variants.split(',').map((v) => v.trim()) as Variant[];
for (const v of chosen) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}: use ${VARIANTS.join(',')}`);

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User plus system CPU seconds of a process so far (/proc/<pid>/stat, fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The most resident memory the process has had (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** What the output topic of one measurement has shown so far. */
class OutputTally {
  records = 0;
  duplicates = 0;
  minTs = Infinity;
  recordsAtMinTs = 0;
  maxTs = -Infinity;
  firstSeenAt = 0;
  /** Next offset to read, per partition. */
  readonly nextOffset = new Map<number, number>();
  readonly latencies: number[] = [];
  warmRecords = 0;
  private seen?: Uint8Array;

  /** Score and label of each output record from the first pass over Shuttle (ids below `firstPass`). */
  readonly scores: number[] = [];
  readonly labels: number[] = [];
  private parsed = 0;

  /** With a load: input timestamps by id, and which ids are measured. */
  constructor(
    private readonly load?: LoadGenerator,
    private readonly firstPass = 0,
  ) {
    if (load) this.seen = new Uint8Array(16);
  }

  take(partition: number, messages: KafkaMessage[]): void {
    for (const m of messages) {
      const ts = Number(m.timestamp);
      const value = m.value as Buffer;
      let n = 1;
      if (this.load) n = this.takeIds(ts, JSON.parse(value.toString()) as unknown);
      else if (this.parsed < 3 * this.firstPass && value[0] === 0x7b) this.takeScore(value);
      else if (value[0] === 0x5b) n = (JSON.parse(value.toString()) as unknown[]).length;
      if (this.records === 0) this.firstSeenAt = performance.now();
      this.records += n;
      if (ts < this.minTs) {
        this.minTs = ts;
        this.recordsAtMinTs = n;
      }
      if (ts > this.maxTs) this.maxTs = ts;
      this.nextOffset.set(partition, Number(m.offset) + 1);
    }
  }

  private takeScore(value: Buffer): void {
    this.parsed++;
    const r = JSON.parse(value.toString()) as { id: number; outlier?: number; anomaly?: { score?: number } };
    if (r.id >= this.firstPass || typeof r.anomaly?.score !== 'number') return;
    this.scores.push(r.anomaly.score);
    this.labels.push(Number(r.outlier));
  }

  /** Prequential ROC-AUC of the first pass, as the flow ran (how far scoring ran ahead of learning shows here). */
  get firstPassRocAuc(): number | null {
    return this.scores.length >= this.firstPass * 0.99 ? rocAuc(this.scores, this.labels) : null;
  }

  private takeIds(ts: number, value: unknown): number {
    const load = this.load!;
    const records = (Array.isArray(value) ? value : [value]) as { id: number }[];
    for (const { id } of records) {
      if (this.seen!.length <= id) {
        const grown = new Uint8Array(Math.max(id + 1, this.seen!.length * 2));
        grown.set(this.seen!);
        this.seen = grown;
      }
      if (this.seen![id]) {
        this.duplicates++;
        continue;
      }
      this.seen![id] = 1;
      if (load.isMeasured(id)) this.latencies.push(ts - load.sentAt[id]);
      else this.warmRecords++;
    }
    return records.length;
  }

  /** Records per second from the first output record to the last. */
  get rate(): number {
    return (this.records - this.recordsAtMinTs) / ((this.maxTs - this.minTs) / 1000);
  }
}

/** Offers records at a fixed rate, each stamped with its send time, first warm-up ones, then measured ones. */
class LoadGenerator {
  readonly sentAt: number[] = [];
  measuredFrom = Infinity;
  measuredTo = Infinity;
  private timer?: NodeJS.Timeout;
  private pending = 0;
  private started = 0;
  behind = 0;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly bodies: string[],
  ) {}

  isMeasured(id: number): boolean {
    return id >= this.measuredFrom && id < this.measuredTo;
  }

  get sent(): number {
    return this.sentAt.length;
  }

  start(): void {
    this.started = performance.now();
    // Every 5 ms, what is due by then: the offered rate holds even when one tick comes late.
    this.timer = setInterval(() => this.tick(), 5);
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.started) / 1000) * RATE) - this.sent;
    if (due <= 0) return;
    // Sends are not awaited one by one (that would cap the rate at one round trip per tick), but bounded.
    if (this.pending >= 50) {
      this.behind++;
      return;
    }
    const now = Date.now();
    const messages = [];
    for (let i = 0; i < due; i++) {
      const id = this.sent;
      this.sentAt.push(now);
      messages.push({ value: withId(this.bodies, id), timestamp: String(now) });
    }
    this.pending++;
    void this.producer
      .sendBatch({ topicMessages: [{ topic: this.topic, messages }], acks: -1 })
      .catch((error: unknown) => process.stderr.write(`[e2e] load send failed: ${String(error)}\n`))
      .finally(() => this.pending--);
  }

  measureFromNow(): void {
    this.measuredFrom = this.sent;
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.measuredFrom !== Infinity && this.measuredTo === Infinity) this.measuredTo = this.sent;
  }
}

/** A Shuttle record as JSON with `id` first: bodies hold the records without it. */
function withId(bodies: string[], id: number): string {
  return `{"id":${id},${bodies[id % bodies.length].slice(1)}`;
}

interface Target {
  pid: number;
  /** Tells the probe, if there is one in the process, that the measurement starts. */
  measuring(): void;
  /** Ends the process (SIGKILL, or SIGINT when CPU profiles are written, which needs a clean exit). */
  end(): Promise<void>;
  output(): string;
}

function startPipe(brokers: string, input: string, output: string, group: string): Target {
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(__dirname, 'e2e-pipe.js'), brokers, input, output, group, String(PARTITIONS)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout?.on('data', (d) => (text += d));
  child.stderr?.on('data', (d) => (text += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid ?? 0,
    output: () => text,
    measuring: () => undefined,
    async end() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

type FlowNode = { id: string; type: string; [key: string]: unknown };

const SHUTTLE_ATTRIBUTES = [
  ...Array.from({ length: 9 }, (_, i) => ({ name: `f${i + 1}`, type: 'C' })),
  { name: 'outlier', type: 'X', label: true },
];

function ourFlow(
  variant: 'record' | 'batch' | 'floor',
  brokers: string,
  input: string,
  out: string,
  group: string,
): FlowNode[] {
  const z = 'e2e';
  const output = variant === 'batch' ? 'batch' : 'record';
  const nodes: FlowNode[] = [
    { id: z, type: 'tab', label: 'e2e' },
    { id: 'broker', type: 'stream-ml-kafka-broker', brokers, clientId: 'bench-e2e' },
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      z,
      broker: 'broker',
      topics: input,
      groupId: group,
      fromBeginning: 'earliest',
      output,
      wires: [['scorer']],
    },
    {
      id: 'scorer',
      type: 'stream-ml-anomaly-scorer',
      z,
      model: 'e2e',
      field: 'payload',
      thresholdKind: 'spot',
      thresholdValue: '0.001',
      output: 'payload',
      outputs: 1,
      topContributions: '3',
      onInvalid: 'error',
      wires: [['learner']],
    },
    {
      id: 'learner',
      type: 'stream-ml-online-learner',
      z,
      model: 'e2e',
      field: 'payload',
      attributes: SHUTTLE_ATTRIBUTES,
      detector: 'auto',
      invalidValues: 'skip',
      commandProperty: 'topic',
      saveInterval: '10',
      wires: [['producer'], []],
    },
    {
      id: 'producer',
      type: 'stream-ml-kafka-producer',
      z,
      broker: 'broker',
      topic: out,
      acks: 'all',
      // A batch's predictions go out as one record each, like a's and b's.
      arrays: variant === 'batch' ? 'each' : 'record',
      wires: [],
    },
  ];
  if (variant === 'floor') {
    // The scorer and learner replaced by nodes that only pass the message on (and call done()).
    nodes[3] = { id: 'scorer', type: 'bench-pass', z, wires: [['learner']] };
    nodes[4] = { id: 'learner', type: 'bench-pass', z, wires: [['producer']] };
  }
  return nodes.map((n) => ({ ...n, ...OPTIONS[n.id] }));
}

// The two nodes between the peer's consumer and producer: its consumer sends the kafkajs message object as
// msg.payload, its producer writes msg.payload as the value.
const PEER_GLUE_NODES = `module.exports = function (RED) {
  RED.nodes.registerType('bench-record-value', function (config) {
    RED.nodes.createNode(this, config);
    this.on('input', (msg, send, done) => { msg.payload = msg.payload.value; send(msg); done(); });
  });
  RED.nodes.registerType('bench-pass', function (config) {
    RED.nodes.createNode(this, config);
    this.on('input', (msg, send, done) => { send(msg); done(); });
  });
};
`;

function peerFlow(brokers: string, input: string, out: string, group: string): FlowNode[] {
  const z = 'e2e';
  return [
    { id: z, type: 'tab', label: 'e2e' },
    {
      id: 'client',
      type: 'kafkajs-client',
      brokers,
      clientid: 'bench-e2e-peer',
      connectiontimeout: 3000,
      requesttimeout: 25000,
      advancedretry: false,
      auth: 'none',
      loglevel: 'error',
    },
    {
      id: 'consumer',
      type: 'kafkajs-consumer',
      z,
      client: 'client',
      groupid: group,
      topic: input,
      // Its only way to start from the earliest offset; the other advanced options keep the editor's defaults.
      advancedoptions: true,
      autocommitinterval: 5000,
      autocommitthreshold: 100,
      sessiontimeout: 30000,
      rebalancetimeout: 60000,
      heartbeatinterval: 3000,
      metadatamaxage: 300000,
      maxbytesperpartition: 1048576,
      minbytes: 1,
      maxbytes: 10485760,
      maxwaittimeinms: 5000,
      frombeginning: true,
      clearoffsets: false,
      allowautotopiccreation: false,
      wires: [['value']],
    },
    { id: 'value', type: 'bench-record-value', z, wires: [['pass']] },
    { id: 'pass', type: 'bench-pass', z, wires: [['producer']] },
    {
      id: 'producer',
      type: 'kafkajs-producer',
      z,
      client: 'client',
      topic: out,
      advancedoptions: false,
      acknowledge: 'all',
      partition: null,
      headeritems: {},
      key: null,
      responsetimeout: 30000,
      transactiontimeout: 60000,
      metadatamaxage: 300000,
      allowautotopiccreation: false,
      wires: [],
    },
  ];
}

/** The peer package in its own folder under .cache, installed from npm the first time. */
function ensurePeer(): string {
  const dir = path.join(workDir, 'peer');
  const installed = path.join(dir, 'node_modules', PEER_PACKAGE);
  try {
    const version = (JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as { version: string })
      .version;
    if (version === PEER_VERSION) return installed;
  } catch {
    // not there yet
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'bench-e2e-peer', private: true, description: 'peer nodes for npm run bench:e2e' }),
  );
  process.stderr.write(`[e2e] installing ${PEER_PACKAGE}@${PEER_VERSION} into ${path.relative(root, dir)}\n`);
  const npm = spawnSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error', `${PEER_PACKAGE}@${PEER_VERSION}`],
    { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (npm.status !== 0) throw new Error(`npm could not install ${PEER_PACKAGE}@${PEER_VERSION}`);
  return installed;
}

/** A Node-RED user folder with only the package(s) the variant uses, and the flow. */
function userFolder(variant: Variant, flow: FlowNode[]): string {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), `stream-ml-e2e-${variant}-`));
  const modules = path.join(userDir, 'node_modules');
  fs.mkdirSync(modules);
  const linked: Record<string, string> =
    variant === 'peer' ? { [PEER_PACKAGE]: ensurePeer() } : { 'node-red-contrib-stream-ml': root };
  for (const [name, target] of Object.entries(linked)) fs.symlinkSync(target, path.join(modules, name), 'dir');
  const dependencies = Object.fromEntries(Object.entries(linked).map(([name, target]) => [name, `file:${target}`]));
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'e2e', private: true, dependencies }));
  const nodesDir = path.join(userDir, 'bench-nodes');
  fs.mkdirSync(nodesDir);
  if (variant === 'peer' || variant === 'floor') {
    fs.writeFileSync(path.join(nodesDir, 'bench-glue.js'), PEER_GLUE_NODES);
    fs.writeFileSync(path.join(nodesDir, 'bench-glue.html'), '');
  }
  const settings = {
    flowFile: 'flows.json',
    credentialSecret: false,
    nodesDir: [nodesDir],
    // 'Started flows', which startNodeRed waits for, is an info line.
    logging: { console: { level: 'info', metrics: false, audit: false } },
    telemetry: { enabled: false },
  };
  fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow, null, 2));
  return userDir;
}

const probeFile = (name: string): string => path.join(workDir, 'probes', `${name}.json`);

/** What the probe wrote for a process, if it ran in it. */
function probeOf(name: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(probeFile(name), 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Starts a variant's process; its console output goes to .cache/bench-e2e/logs/<name>.log when it ends. */
async function startTarget(
  variant: Variant,
  brokers: string,
  input: string,
  output: string,
  group: string,
  name: string,
): Promise<Target> {
  const target = await startProcess(variant, brokers, input, output, group, name);
  const logDir = path.join(workDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  let ended: Promise<void> | undefined;
  return {
    ...target,
    end() {
      ended ??= target.end().finally(() => fs.writeFileSync(path.join(logDir, `${name}.log`), target.output()));
      return ended;
    },
  };
}

async function startProcess(
  variant: Variant,
  brokers: string,
  input: string,
  output: string,
  group: string,
  name: string,
): Promise<Target> {
  if (variant === 'kafkajs') return startPipe(brokers, input, output, group);
  const flow =
    variant === 'peer' ? peerFlow(brokers, input, output, group) : ourFlow(variant, brokers, input, output, group);
  const userDir = userFolder(variant, flow);
  const profileDir = path.join(workDir, 'profiles');
  if (CPU_PROF) fs.mkdirSync(profileDir, { recursive: true });
  const nodeArgs: string[] = CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}.cpuprofile`]
    : [];
  nodeArgs.push(...NODE_ARGS);
  if (PROBE) {
    fs.mkdirSync(path.join(workDir, 'probes'), { recursive: true });
    nodeArgs.push('-r', path.join(__dirname, 'e2e-probe.js'));
  }
  // The child inherits this environment: the probe's file is set for this start only.
  process.env.STREAM_ML_E2E_PROBE = PROBE ? probeFile(name) : '';
  const red: NodeRedProcess = await startNodeRed(userDir, 60_000, nodeArgs);
  delete process.env.STREAM_ML_E2E_PROBE;
  let ended: Promise<void> | undefined;
  return {
    pid: red.pid,
    output: red.output,
    measuring: () => {
      if (PROBE) process.kill(red.pid, 'SIGWINCH');
    },
    end() {
      ended ??= (async () => {
        // The process may have ended by itself (its output, in the log, says why).
        if (!CPU_PROF) killQuietly(red.pid);
        await red.stop();
        fs.rmSync(userDir, { recursive: true, force: true });
      })();
      return ended;
    },
  };
}

interface FullSpeed {
  recordsPerSecond: number;
  records: number;
  windowSeconds: number;
  cpuSecondsPerMillion: number;
  peakRssMiB: number;
  /** For the flows that score: ROC-AUC over the first pass of Shuttle's records. */
  firstPassRocAuc: number | null;
  probe?: unknown;
}

interface FixedLoad {
  /** False when the flow fell behind the offered load for good: then it has no latency figures. */
  sustained: boolean;
  offeredPerSecond: number;
  /** CPU time from the start of the measured load until its last record was out. */
  cpuSecondsPerMillion?: number;
  deliveredPerSecond?: number;
  backlog?: number;
  measured: number;
  lost: number;
  duplicates: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  peakRssMiB: number;
  probe?: unknown;
}

async function main(): Promise<void> {
  if (!process.env.KAFKA_BROKERS) {
    // scripts/kafka.mjs is an ES module; this file compiles to CommonJS, whose require() cannot load it on Node 20.
    const importModule = new Function('p', 'return import(p)') as (p: string) => Promise<Record<string, unknown>>;
    const kafkaScript = await importModule(path.join(root, 'scripts', 'kafka.mjs'));
    const state = (await (kafkaScript.startKafka as () => Promise<{ brokers: string; reused?: boolean }>)()) ?? {};
    process.env.KAFKA_BROKERS = state.brokers;
  }
  const brokers = process.env.KAFKA_BROKERS ?? '';
  if (chosen.includes('peer')) ensurePeer();
  const bodies = readShuttleRecords(await shuttleCsvPath()).map((r) => JSON.stringify(r));
  const loadAtStart = os.loadavg();

  const kafka = new Kafka({ clientId: 'bench-e2e', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const stamp = `e2e-${Date.now()}`;
  const fullInput = `${stamp}-in`;
  const fullOutput = (v: Variant, run: number): string => `${stamp}-out-${v}-${run}`;
  const loadInput = (v: Variant): string => `${stamp}-load-in-${v}`;
  const loadOutput = (v: Variant): string => `${stamp}-load-out-${v}`;
  const outputs = [
    ...chosen.flatMap((v) => Array.from({ length: RUNS }, (_, run) => fullOutput(v, run))),
    ...chosen.map(loadOutput),
  ];
  const topics = [fullInput, ...chosen.map(loadInput), ...outputs];
  await admin.createTopics({
    topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS })),
    waitForLeaders: true,
  });

  const producer = kafka.producer();
  await producer.connect();
  // One reader of every output topic for the whole run: a consumer group's join costs seconds.
  const tallies = new Map<string, OutputTally>();
  const reader: Consumer = kafka.consumer({ groupId: `${stamp}-reader`, maxWaitTimeInMs: 200 });
  await reader.connect();
  await reader.subscribe({ topics: outputs, fromBeginning: true });
  const joined = new Promise<void>((resolve) => reader.on(reader.events.GROUP_JOIN, () => resolve()));
  await reader.run({
    eachBatch: async ({ batch }) => {
      tallies.get(batch.topic)?.take(batch.partition, batch.messages);
    },
  });

  try {
    process.stderr.write(`[e2e] writing ${RECORDS} records into ${fullInput} (${PARTITIONS} partitions)\n`);
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < RECORDS; i += 2000) {
      const messages = Array.from({ length: Math.min(2000, RECORDS - i) }, (_, j) => ({
        value: withId(bodies, i + j),
      }));
      sends.push(producer.sendBatch({ topicMessages: [{ topic: fullInput, messages }], acks: -1 }));
      if (sends.length >= 4) await sends.shift();
    }
    await Promise.all(sends);
    await joined;

    /** Waits until the reader has read everything in `topic` (bounded: 30 s). */
    const drained = async (topic: string, tally: OutputTally): Promise<void> => {
      for (let i = 0; i < 150; i++) {
        const ends = await admin.fetchTopicOffsets(topic);
        if (ends.every((p) => Number(p.high) <= (tally.nextOffset.get(p.partition) ?? 0))) return;
        await sleep(200);
      }
    };

    const fullSpeed = async (variant: Variant, run: number): Promise<FullSpeed> => {
      const topic = fullOutput(variant, run);
      const tally = new OutputTally(undefined, bodies.length);
      tallies.set(topic, tally);
      const target = await startTarget(
        variant,
        brokers,
        fullInput,
        topic,
        `${stamp}-${variant}-${run}`,
        `full-${variant}-${run}`,
      );
      try {
        const started = performance.now();
        // Bounded: the first output within 60 s, then --seconds, or all records out.
        while (tally.records === 0) {
          if (performance.now() - started > 60_000)
            throw new Error(`${variant}: no output within 60 s\n${target.output()}`);
          await sleep(20);
        }
        const cpuAtFirst = cpuSeconds(target.pid);
        target.measuring();
        const recordsAtFirst = tally.records;
        while (tally.records < RECORDS && performance.now() - tally.firstSeenAt < SECONDS * 1000) await sleep(50);
        const cpu = cpuSeconds(target.pid) - cpuAtFirst;
        const peak = peakRssMiB(target.pid);
        const recordsAtEnd = tally.records;
        await target.end();
        await drained(topic, tally);
        return {
          recordsPerSecond: tally.rate,
          records: tally.records,
          windowSeconds: (tally.maxTs - tally.minTs) / 1000,
          cpuSecondsPerMillion: (cpu / Math.max(1, recordsAtEnd - recordsAtFirst)) * 1e6,
          peakRssMiB: peak,
          firstPassRocAuc: tally.firstPassRocAuc,
          ...(PROBE ? { probe: probeOf(`full-${variant}-${run}`) } : {}),
        };
      } finally {
        await target.end();
        tallies.delete(topic);
      }
    };

    const fixedLoad = async (variant: Variant): Promise<FixedLoad> => {
      const topic = loadOutput(variant);
      const load = new LoadGenerator(producer, loadInput(variant), bodies);
      const tally = new OutputTally(load);
      tallies.set(topic, tally);
      const target = await startTarget(
        variant,
        brokers,
        loadInput(variant),
        topic,
        `${stamp}-${variant}-load`,
        `load-${variant}`,
      );
      try {
        load.start();
        const started = performance.now();
        // Warm-up: until the flow has joined its group and worked off what waited meanwhile. A flow still behind
        // after 20 s of output does not sustain the load: its latency only grows, so it is not measured.
        for (;;) {
          const now = performance.now();
          if (tally.records === 0 && now - started > 60_000)
            throw new Error(`${variant}: no output within 60 s\n${target.output()}`);
          const backlog = load.sent - tally.warmRecords;
          if (tally.records > 0 && now - tally.firstSeenAt > 2_000 && backlog < RATE * 0.2) break;
          if (tally.records > 0 && now - tally.firstSeenAt > 20_000) {
            const deliveredPerSecond = tally.records / ((now - tally.firstSeenAt) / 1000);
            process.stderr.write(
              `[e2e] ${variant}: behind after 20 s at ${RATE}/s (${Math.round(deliveredPerSecond)}/s out)\n`,
            );
            return {
              sustained: false,
              offeredPerSecond: load.sent / ((now - started) / 1000),
              deliveredPerSecond,
              backlog,
              measured: 0,
              lost: 0,
              duplicates: tally.duplicates,
              p50Ms: null,
              p99Ms: null,
              maxMs: null,
              peakRssMiB: peakRssMiB(target.pid),
            };
          }
          await sleep(20);
        }
        load.measureFromNow();
        target.measuring();
        const offeredFrom = performance.now();
        const cpuAtMeasure = cpuSeconds(target.pid);
        await sleep(SECONDS * 1000);
        load.stop();
        const offered = (load.measuredTo - load.measuredFrom) / ((performance.now() - offeredFrom) / 1000);
        const expected = load.measuredTo - load.measuredFrom;
        // Until every measured record is out, or nothing more came for 10 s.
        let last = -1;
        let quietSince = performance.now();
        while (tally.latencies.length < expected && performance.now() - quietSince < 10_000) {
          if (tally.latencies.length !== last) {
            last = tally.latencies.length;
            quietSince = performance.now();
          }
          await sleep(100);
        }
        const peak = peakRssMiB(target.pid);
        const cpu = cpuSeconds(target.pid) - cpuAtMeasure;
        const sorted = [...tally.latencies].sort((a, b) => a - b);
        return {
          sustained: true,
          offeredPerSecond: offered,
          cpuSecondsPerMillion: (cpu / Math.max(1, tally.latencies.length)) * 1e6,
          measured: sorted.length,
          lost: expected - sorted.length,
          duplicates: tally.duplicates,
          p50Ms: percentile(sorted, 50),
          p99Ms: percentile(sorted, 99),
          maxMs: sorted[sorted.length - 1] ?? NaN,
          peakRssMiB: peak,
          ...(PROBE ? { probe: probeOf(`load-${variant}`) } : {}),
        };
      } finally {
        load.stop();
        await target.end();
        tallies.delete(topic);
      }
    };

    const full: Partial<Record<Variant, (FullSpeed | { error: string })[]>> = {};
    const fixed: Partial<Record<Variant, FixedLoad | { error: string }>> = {};
    // Once more after a failure: other users of a shared local broker may restart it (fault tests do).
    const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | { error: string }> => {
      for (let tries = 1; ; tries++) {
        try {
          return await fn();
        } catch (error) {
          process.stderr.write(`[e2e] ${what} failed: ${(error as Error).message}\n`);
          if (tries === 2) return { error: (error as Error).message.split('\n')[0] };
          await sleep(5_000);
        }
      }
    };
    // Variants alternate within each run, so a busy moment of the machine does not fall on one of them only.
    for (let run = 0; run < RUNS; run++) {
      for (const v of chosen) {
        process.stderr.write(`[e2e] full speed, ${v}, run ${run + 1}/${RUNS}\n`);
        (full[v] ??= []).push(await attempt(`${v} at full speed`, () => fullSpeed(v, run)));
      }
    }
    for (const v of chosen) {
      process.stderr.write(`[e2e] ${RATE} records/s, ${v}\n`);
      fixed[v] = await attempt(`${v} at ${RATE}/s`, () => fixedLoad(v));
    }

    const ok = <T>(x: T | { error: string } | undefined): x is T => x !== undefined && !('error' in (x as object));
    const variants = chosen.map((v) => {
      const runs = (full[v] ?? []).filter(ok);
      const f = fixed[v];
      const peaks = [...runs.map((r) => r.peakRssMiB), ...(ok(f) ? [f.peakRssMiB] : [])];
      const aucs = runs.flatMap((r) => (r.firstPassRocAuc === null ? [] : [r.firstPassRocAuc]));
      return {
        name: LABELS[v],
        key: v,
        recordsPerSecond: runs.length ? Math.round(median(runs.map((r) => r.recordsPerSecond))) : null,
        p50Ms: ok(f) ? f.p50Ms : null,
        p99Ms: ok(f) ? f.p99Ms : null,
        maxMs: ok(f) ? f.maxMs : null,
        sustainsLoad: ok(f) ? f.sustained : null,
        peakRssMb: peaks.length ? Math.round(Math.max(...peaks)) : null,
        cpuSecondsPerMillion: runs.length ? Number(median(runs.map((r) => r.cpuSecondsPerMillion)).toFixed(1)) : null,
        firstPassRocAuc: aucs.length ? Number(median(aucs).toFixed(4)) : null,
        fullSpeed: full[v],
        fixedLoad: f,
      };
    });
    const byKey = (k: Variant) => variants.find((v) => v.key === k);
    const ratio = (a: Variant, b: Variant): number | null => {
      const x = byKey(a)?.recordsPerSecond;
      const y = byKey(b)?.recordsPerSecond;
      return x && y ? Number((x / y).toFixed(3)) : null;
    };
    const ours = variants.filter((v) => v.key === 'record' || v.key === 'batch');
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      loadAverageAtStart: loadAtStart.map((x) => Number(x.toFixed(2))),
      loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
      seconds: SECONDS,
      fullSpeedRecords: RECORDS,
      partitions: PARTITIONS,
      offeredPerSecond: RATE,
      runs: RUNS,
      optionsChanged: OPTIONS,
      nodeArgs: NODE_ARGS,
      rssUnit: 'MiB',
      variants,
      ratios: {
        perRecordVsKafkajs: ratio('record', 'kafkajs'),
        batchVsKafkajs: ratio('batch', 'kafkajs'),
        perRecordVsPeer: ratio('record', 'peer'),
        batchVsPeer: ratio('batch', 'peer'),
        floorVsKafkajs: ratio('floor', 'kafkajs'),
        perRecordVsFloor: ratio('record', 'floor'),
      },
      p99MsAt5000: byKey('record')?.p99Ms ?? null,
      peakRssMb: ours.some((v) => v.peakRssMb !== null) ? Math.max(...ours.map((v) => v.peakRssMb ?? 0)) : null,
    };
    printTable(result.variants, result.ratios);
    fs.mkdirSync(path.dirname(args.out), { recursive: true });
    fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await reader.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  }
}

function printTable(
  variants: {
    name: string;
    key: Variant;
    recordsPerSecond: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    maxMs: number | null;
    sustainsLoad: boolean | null;
    peakRssMb: number | null;
    cpuSecondsPerMillion: number | null;
    firstPassRocAuc: number | null;
  }[],
  ratios: Record<string, number | null>,
): void {
  const reference = variants.find((v) => v.key === 'kafkajs')?.recordsPerSecond;
  const cell = (x: number | null | undefined, width: number, digits = 0): string =>
    (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits)).padStart(width);
  console.log(
    `\nKafka → Kafka, ${PARTITIONS} partitions, Shuttle records; full speed over ${SECONDS} s of output, latency at ` +
      `${RATE} records/s for ${SECONDS} s (${process.version}, ${os.cpus().length} cores, load ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')})`,
  );
  console.log(
    `${'variant'.padEnd(32)}${'rec/s'.padStart(9)}${'vs a'.padStart(7)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}` +
      `${'max ms'.padStart(9)}${'peak RSS MiB'.padStart(14)}${'CPU s/M rec'.padStart(13)}${'ROC-AUC'.padStart(9)}`,
  );
  for (const v of variants) {
    const latency =
      v.sustainsLoad === false
        ? `${'falls behind'.padStart(27)}`
        : `${cell(v.p50Ms, 9)}${cell(v.p99Ms, 9)}${cell(v.maxMs, 9)}`;
    console.log(
      `${v.name.padEnd(32)}${cell(v.recordsPerSecond, 9)}${cell(reference && v.recordsPerSecond ? v.recordsPerSecond / reference : null, 7, 2)}` +
        `${latency}${cell(v.peakRssMb, 14)}${cell(v.cpuSecondsPerMillion, 13, 1)}${cell(v.firstPassRocAuc, 9, 4)}`,
    );
  }
  console.log(
    `ratios: b/a ${cell(ratios.perRecordVsKafkajs, 0, 2)}, c/a ${cell(ratios.batchVsKafkajs, 0, 2)}, b/d ${cell(ratios.perRecordVsPeer, 0, 2)}, c/d ${cell(ratios.batchVsPeer, 0, 2)}, ` +
      `e/a ${cell(ratios.floorVsKafkajs, 0, 2)}, b/e ${cell(ratios.perRecordVsFloor, 0, 2)}`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
