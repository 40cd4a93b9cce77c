// `npm run bench:engine`: detection quality, speed and size of every stream-ml detector on the Shuttle
// stream, beside River and PySAD measured in the same run on the same CSV. Prints one table and writes
// bench/results/engine.json. Figures only: nothing here fails on time.
//
//   npm run bench:engine [-- --data DIR | --csv FILE] [--seeds 5] [--runs 7] [--no-peers] [--peers a,b]
//                         [--out FILE]
// The data folder defaults to SHUTTLE_DATA_DIR, else ../shared/data/shuttle beside the project, else .cache/shuttle
// (downloaded there once if it is nowhere yet).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as engine from '../src/engine';
import { averagePrecision, rocAuc } from '../src/engine/evaluation';
import { LABEL, readLabelledCsv } from './labelled-csv';
import { shuttleCsvPath } from './shuttle-csv';

const root = path.resolve(__dirname, '..', '..');
const DETECTORS: engine.DetectorName[] = ['auto', 'gaussian', 'histogram', 'hst', 'ecod'];

// Figures to reach, from the engine issue.
const TARGETS = {
  defaultRocAuc: 0.99,
  defaultAveragePrecision: 0.9,
  defaultRecordsPerSecond: 500_000,
  defaultVsRiverHst: 10,
  detectorRecordsPerSecond: 250_000,
  statisticsRecordsPerSecond: 2_000_000,
  modelBytes: 1_000_000,
};

interface Quality {
  mean: number;
  worst: number;
  all: number[];
}

interface DetectorResult {
  name: engine.DetectorName;
  rocAuc: Quality;
  averagePrecision: Quality;
  recordsPerSecond: number;
  timedRuns: number[];
  warmupRecords: number;
  modelBytes: number;
  heapGrowthBytes: number | null;
  error?: string;
}

interface PeerResult {
  name: string;
  library: string;
  version: string | null;
  setup: string;
  seeds?: number;
  partial?: boolean;
  rocAuc?: Quality;
  averagePrecision?: Quality;
  recordsPerSecond?: number;
  notes?: string[];
  error?: string;
}

function quality(values: number[]): Quality {
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, worst: Math.min(...values), all: values };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function gitCommit(): string | null {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) return null;
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src', 'bench'], { cwd: root, encoding: 'utf8' });
  return r.stdout.trim() + (dirty.stdout.trim() ? ' (modified)' : '');
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

function loadData(csvPath: string): { names: string[]; records: number[][]; labels: Uint8Array; label: string } {
  return { ...readLabelledCsv(csvPath), label: LABEL };
}

/** One prequential pass: scores of every record, and the seconds spent in score + learn. */
function pass(model: engine.Model, records: number[][], scores?: Float64Array): { seconds: number; warmup: number } {
  let warmup = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < records.length; i++) {
    const r = model.scoreOne(records[i]);
    model.learnOne(records[i]);
    if (scores) scores[i] = r.score;
    if (r.warmingUp) warmup++;
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, warmup };
}

function fmtRate(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '-';
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)}M`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)}k`;
  return r.toFixed(0);
}

function fmtBytes(b: number | null | undefined): string {
  if (b === null || b === undefined) return '-';
  if (b >= 1e6) return `${(b / 1e6).toFixed(2)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`;
  return `${b} B`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string =>
    cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const { values: o } = parseArgs({
    options: {
      data: { type: 'string' },
      csv: { type: 'string' },
      seeds: { type: 'string', default: '5' },
      runs: { type: 'string', default: '7' },
      peers: { type: 'string' },
      'no-peers': { type: 'boolean' },
      'peer-slow-seconds': { type: 'string' },
      out: { type: 'string', default: path.join(root, 'bench', 'results', 'engine.json') },
    },
  });
  const csvPath = o.csv ?? (o.data ? path.join(o.data, 'shuttle.csv') : await shuttleCsvPath());
  if (!fs.existsSync(csvPath)) throw new Error(`${csvPath} not found (set SHUTTLE_DATA_DIR, --data or --csv)`);
  // The machine is shared: the load average says how quiet it was.
  const loadAtStart = os.loadavg();
  const seeds = Number(o.seeds);
  const runs = Number(o.runs);
  const log = (s: string): void => {
    process.stderr.write(`[bench] ${s}\n`);
  };

  const { names, records, labels, label } = loadData(csvPath);
  const attributes = names.map((name) =>
    name === label ? { name, type: 'X' as const, role: 'label' as const } : { name, type: 'C' as const },
  );
  const anomalies = labels.reduce((a, b) => a + b, 0);
  log(`${path.basename(csvPath)}: ${records.length} records, ${anomalies} anomalies; records passed as arrays`);
  if (!(globalThis as { gc?: unknown }).gc) log('no --expose-gc: heap growth is not measured');

  const detectors: DetectorResult[] = [];
  for (const name of DETECTORS) {
    const res: DetectorResult = {
      name,
      rocAuc: quality([NaN]),
      averagePrecision: quality([NaN]),
      recordsPerSecond: NaN,
      timedRuns: [],
      warmupRecords: 0,
      modelBytes: NaN,
      heapGrowthBytes: null,
    };
    detectors.push(res);
    try {
      // Quality over the seeds; these passes are also the warm-up for the timed runs.
      const aucs: number[] = [];
      const aps: number[] = [];
      const scores = new Float64Array(records.length);
      for (let seed = 0; seed < seeds; seed++) {
        const model = engine.createModel({ attributes, detector: name, seed });
        const { warmup } = pass(model, records, scores);
        aucs.push(rocAuc(scores, labels));
        aps.push(averagePrecision(scores, labels));
        res.warmupRecords = warmup;
      }
      res.rocAuc = quality(aucs);
      res.averagePrecision = quality(aps);
      // Speed: a fresh model per run, the whole stream, score then learn each record.
      for (let r = 0; r < runs; r++) {
        const model = engine.createModel({ attributes, detector: name, seed: r });
        res.timedRuns.push(records.length / pass(model, records).seconds);
      }
      res.recordsPerSecond = median(res.timedRuns);
      const size = measureSize(name, attributes, records);
      res.modelBytes = size.snapshotBytes;
      res.heapGrowthBytes = size.heapGrowthBytes;
      log(
        `${name}: AUC ${res.rocAuc.mean.toFixed(4)} (worst ${res.rocAuc.worst.toFixed(4)}) AP ${res.averagePrecision.mean.toFixed(4)} ` +
          `${fmtRate(res.recordsPerSecond)} rec/s, snapshot ${fmtBytes(res.modelBytes)}`,
      );
    } catch (e) {
      res.error = (e as Error).stack ?? String(e);
      log(`${name}: failed: ${(e as Error).message}`);
    }
  }

  // Statistics alone: learning only, through whatever the engine offers for it.
  const statistics = measureStatistics(attributes, records, runs, log);

  let peers: PeerResult[] = [];
  let peerRun: Record<string, unknown> = {};
  if (!o['no-peers']) {
    log('running the Python peers (River, PySAD); the first run installs them into .cache/bench-venv');
    const python = process.env.PYTHON ?? 'python3';
    const args = [path.join(root, 'bench', 'peers', 'run_peers.py'), '--csv', csvPath, '--label', label];
    args.push('--seeds', String(seeds));
    if (o.peers) args.push('--peers', o.peers);
    if (o['peer-slow-seconds']) args.push('--slow-seconds', o['peer-slow-seconds']);
    const r = spawnSync(python, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status === 0) {
      peerRun = JSON.parse(r.stdout) as Record<string, unknown>;
      peers = (peerRun.peers as PeerResult[]) ?? [];
    } else {
      log(`the peers did not run (exit ${r.status ?? r.signal}${r.error ? `, ${r.error.message}` : ''})`);
      peerRun = { error: `run_peers.py exited with ${r.status ?? r.signal}` };
    }
  }

  const riverHst = peers.find((p) => p.name === 'river-hst')?.recordsPerSecond;
  const ratio = (rps: number | undefined): string =>
    riverHst && rps && Number.isFinite(rps) ? `${(rps / riverHst).toFixed(1)}x` : '-';
  const q = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(4));
  const rows: string[][] = detectors.map((d) => [
    `stream-ml ${d.name}${d.error ? ' (failed)' : ''}`,
    q(d.rocAuc.mean),
    q(d.rocAuc.worst),
    q(d.averagePrecision.mean),
    q(d.averagePrecision.worst),
    fmtRate(d.recordsPerSecond),
    fmtBytes(d.modelBytes),
    fmtBytes(d.heapGrowthBytes),
    ratio(d.recordsPerSecond),
  ]);
  for (const p of peers) {
    const note = p.error
      ? ' (not run)'
      : p.partial
        ? ' (partial)'
        : p.seeds && p.seeds < seeds
          ? ` (${p.seeds} seed)`
          : '';
    rows.push([
      `${p.library} ${p.name.replace(/^[a-z]+-/, '')}${note}`,
      q(p.rocAuc?.mean),
      q(p.rocAuc?.worst),
      q(p.averagePrecision?.mean),
      q(p.averagePrecision?.worst),
      fmtRate(p.recordsPerSecond),
      '-',
      '-',
      ratio(p.recordsPerSecond),
    ]);
  }
  const header = [
    'detector',
    'ROC-AUC mean',
    'worst',
    'AP mean',
    'worst',
    'records/s',
    'model size',
    'heap',
    'vs River HST',
  ];
  const printed = table(header, rows);

  const auto = detectors.find((d) => d.name === 'auto');
  const mark = (ok: boolean | undefined): string => (ok === undefined ? '?' : ok ? 'met' : 'NOT met');
  const slowest = Math.min(...detectors.map((d) => d.recordsPerSecond).filter(Number.isFinite));
  const largest = Math.max(
    ...detectors.map((d) => Math.max(d.modelBytes, d.heapGrowthBytes ?? 0)).filter(Number.isFinite),
  );
  const autoRatio = auto && riverHst ? auto.recordsPerSecond / riverHst : undefined;
  const targets = [
    `default ROC-AUC mean >= ${TARGETS.defaultRocAuc}: ${q(auto?.rocAuc.mean)} ${mark(auto && auto.rocAuc.mean >= TARGETS.defaultRocAuc)}`,
    `default AP mean >= ${TARGETS.defaultAveragePrecision}: ${q(auto?.averagePrecision.mean)} ${mark(auto && auto.averagePrecision.mean >= TARGETS.defaultAveragePrecision)}`,
    `default records/s >= ${fmtRate(TARGETS.defaultRecordsPerSecond)}: ${fmtRate(auto?.recordsPerSecond)} ${mark(auto && auto.recordsPerSecond >= TARGETS.defaultRecordsPerSecond)}`,
    `default vs River HST >= ${TARGETS.defaultVsRiverHst}x: ${autoRatio ? autoRatio.toFixed(1) + 'x' : '-'} ${mark(autoRatio === undefined ? undefined : autoRatio >= TARGETS.defaultVsRiverHst)}`,
    `every detector >= ${fmtRate(TARGETS.detectorRecordsPerSecond)} records/s: slowest ${fmtRate(slowest)} ${mark(slowest >= TARGETS.detectorRecordsPerSecond)}`,
    `statistics (learn only) >= ${fmtRate(TARGETS.statisticsRecordsPerSecond)} records/s: ${fmtRate(statistics.recordsPerSecond)} ${mark(statistics.recordsPerSecond >= TARGETS.statisticsRecordsPerSecond)} (${statistics.how})`,
    `model < 1 MB (snapshot and heap growth): largest ${fmtBytes(largest)} ${mark(largest < TARGETS.modelBytes)}`,
  ];

  const cpu = os.cpus()[0]?.model ?? 'unknown';
  console.log(
    `\nstream-ml engine benchmark: ${path.basename(csvPath)}, ${records.length} records (${anomalies} anomalies), prequential ` +
      `(score then learn), ${seeds} seeds, records/s = median of ${runs} timed passes after warm-up, one core\n` +
      `Node ${process.version}, ${cpu}, ${new Date().toISOString()}\n`,
  );
  console.log(printed);
  console.log(
    'model size = JSON bytes of the snapshot after the whole stream; heap = heap growth per model after it; ' +
      'vs River HST = records/s ratio',
  );
  console.log('\nTargets (issue 3):\n  ' + targets.join('\n  '));
  const notes = peers.flatMap((p) =>
    p.error ? [`${p.name}: ${p.error}`] : (p.notes ?? []).map((n) => `${p.name}: ${n}`),
  );
  if (notes.length) console.log('\nPeer notes:\n  ' + notes.join('\n  '));

  const result = {
    generated: new Date().toISOString(),
    commit: gitCommit(),
    machine: {
      node: process.version,
      cpu,
      cpus: os.cpus().length,
      platform: `${os.platform()} ${os.release()}`,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: os.loadavg(),
    },
    data: {
      file: path.basename(csvPath),
      sha256: crypto.createHash('sha256').update(fs.readFileSync(csvPath)).digest('hex'),
      records: records.length,
      anomalies,
      attributes: attributes.map((a) => `${a.name}:${a.type}${a.role ? ':' + a.role : ''}`).join(','),
    },
    protocol:
      'prequential: each record scored by the model as it stands, then learnt; one pass in stream order; labels used only to evaluate; exact ROC-AUC and average precision (sklearn definitions) over the whole stream, warm-up included',
    seeds,
    timedRuns: runs,
    targets: TARGETS,
    detectors,
    statistics,
    peers: peerRun,
    table: printed,
    targetsMet: targets,
  };
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
  log(`wrote ${path.relative(process.cwd(), o.out)}`);
}

/**
 * Size after the whole stream: the snapshot's JSON bytes, and the heap the model holds (the growth with a few
 * models alive at once, divided by their number, so that garbage left from earlier passes weighs less).
 */
function measureSize(
  name: engine.DetectorName,
  attributes: engine.AttributeSpec[],
  records: number[][],
): { snapshotBytes: number; heapGrowthBytes: number | null } {
  const keep = 10;
  gc();
  const before = process.memoryUsage().heapUsed;
  const models: engine.Model[] = [];
  for (let k = 0; k < keep; k++) {
    const model = engine.createModel({ attributes, detector: name, seed: k });
    pass(model, records);
    models.push(model);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  const snapshotBytes = Buffer.byteLength(JSON.stringify(models[0].toJSON()));
  const measured = (globalThis as { gc?: unknown }).gc !== undefined;
  return { snapshotBytes, heapGrowthBytes: measured ? Math.round((after - before) / keep) : null };
}

/** Statistics alone: RunningStatistics.learn on the numeric vectors, as the model feeds it, quantile sketches on. */
function measureStatistics(
  attributes: engine.AttributeSpec[],
  records: number[][],
  runs: number,
  log: (s: string) => void,
): { recordsPerSecond: number; how: string; timedRuns: number[]; withoutSketchesRecordsPerSecond: number } {
  const features = attributes.flatMap((a, i) => (a.type === 'C' && a.role !== 'label' ? [i] : []));
  const d = features.length;
  const vectors = records.map((r) => Float64Array.from(features, (i) => r[i]));
  const time = (quantiles: boolean): number => {
    const stats = new engine.RunningStatistics(d, { quantiles });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < vectors.length; i++) stats.learn(vectors[i]);
    return vectors.length / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
  time(true); // warm-up
  const timedRuns: number[] = [];
  for (let r = 0; r < runs; r++) timedRuns.push(time(true));
  time(false);
  const plain: number[] = [];
  for (let r = 0; r < runs; r++) plain.push(time(false));
  const res = {
    recordsPerSecond: median(timedRuns),
    how: `RunningStatistics.learn, ${d} features, moments + covariances + quantile sketches`,
    timedRuns,
    withoutSketchesRecordsPerSecond: median(plain),
  };
  log(
    `statistics: ${fmtRate(res.recordsPerSecond)} rec/s (${fmtRate(res.withoutSketchesRecordsPerSecond)} without sketches)`,
  );
  return res;
}

main().catch((error: Error) => {
  process.stderr.write(`[bench] ${error.message}\n`);
  process.exitCode = 1;
});
