// `npm run bench:suite`: detection quality of every stream-ml detector beside the River and PySAD peers on the
// tuning suite (bench/suite/make_sets.py: scikit-learn's bundled data as one-class-versus-rest sets, synthetic
// streams with global, local, clustered and dependency anomalies, drifting streams; 3 to 50 attributes). The
// protocol of bench/engine.ts: each record scored by the model as it stands, then learnt; one pass in the order of
// the file; nothing about the data given in advance; mean and worst of several seeds. Prints one table and writes
// bench/results/suite.json. Figures only.
//
//   npm run bench:suite [-- --seeds 3] [--sets a,b] [--peers river-hst,...] [--no-peers] [--quick] [--data DIR]
//                        [--out FILE]
// --sets keeps the sets whose name contains one of the words; --quick is 1 seed, 6 sets and the two fast peers
// (each still overridable). The sets are made once into .cache/bench-suite (again when make_sets.py changes).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as engine from '../src/engine';
import { averagePrecision, rocAuc } from '../src/engine/evaluation';
import { LABEL, readLabelledCsv } from './labelled-csv';

const root = path.resolve(__dirname, '..', '..');
const DETECTORS: engine.DetectorName[] = ['auto', 'gaussian', 'histogram', 'hst', 'ecod'];
// RRCF is left out by default: at about 140 records/s it alone would take longer than all the others together.
const DEFAULT_PEERS = ['river-hst', 'river-loda', 'pysad-xstream', 'pysad-rshash', 'pysad-loda'];
const QUICK_PEERS = ['river-hst', 'pysad-loda'];
const QUICK_SETS = ['breast-cancer', 'digits-3', 'synth-local-d10', 'synth-dependency-d25', 'synth-global-d50'];
const QUICK_SETS_ALSO = ['drift-abrupt-d5'];
const PEER_LABELS: Record<string, string> = {
  'river-hst': 'River HST',
  'river-loda': 'River LODA',
  'pysad-xstream': 'xStream',
  'pysad-rshash': 'RS-Hash',
  'pysad-loda': 'PySAD LODA',
  'pysad-rrcf': 'RRCF',
};
// Figures are compared as printed: auto "at least equal" to the best peer means not below it at 3 decimals.
const DECIMALS = 3;

interface Quality {
  mean: number;
  worst: number;
  all: number[];
}

interface Entry {
  rocAuc: Quality;
  averagePrecision: Quality;
  seeds: number;
  partial?: boolean;
  error?: string;
}

interface SetInfo {
  name: string;
  file: string;
  records: number;
  attributes: number;
  anomalies: number;
  order: string;
  description: string;
}

interface SetResult extends SetInfo {
  detectors: Record<string, Entry>;
  peers: Record<string, Entry>;
  bestPeer: string | null;
  autoAtLeastBestPeer: { rocAuc: boolean | null; averagePrecision: boolean | null };
}

interface PeerOutput {
  name: string;
  library: string;
  version: string | null;
  setup: string;
  seeds?: number;
  partial?: boolean;
  rocAuc?: Quality;
  averagePrecision?: Quality;
  error?: string;
}

function quality(values: number[]): Quality {
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, worst: Math.min(...values), all: values };
}

const round = (v: number): number => Number(v.toFixed(DECIMALS));

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string =>
    cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function gitCommit(): string | null {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) return null;
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src', 'bench'], { cwd: root, encoding: 'utf8' });
  return r.stdout.trim() + (dirty.stdout.trim() ? ' (modified)' : '');
}

/** The suite's index, made (again) by make_sets.py when it is missing or the script changed since. */
function ensureSets(dir: string, log: (s: string) => void): SetInfo[] {
  const script = path.join(root, 'bench', 'suite', 'make_sets.py');
  const hash = crypto.createHash('sha256').update(fs.readFileSync(script)).digest('hex');
  const stamp = path.join(dir, 'make_sets.sha256');
  const indexPath = path.join(dir, 'index.json');
  const current = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === hash && fs.existsSync(indexPath);
  if (!current) {
    log(`making the suite's sets into ${path.relative(process.cwd(), dir) || dir} (the first run also makes the venv)`);
    const python = process.env.PYTHON ?? 'python3';
    const r = spawnSync(python, [script, '--out', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`make_sets.py exited with ${r.status ?? r.signal}`);
    fs.writeFileSync(stamp, hash + '\n');
  }
  return (JSON.parse(fs.readFileSync(indexPath, 'utf8')) as { sets: SetInfo[] }).sets;
}

function loadSet(csvPath: string): { attributes: engine.AttributeSpec[]; records: number[][]; labels: Uint8Array } {
  const { names, records, labels } = readLabelledCsv(csvPath);
  const attributes = names.map((name) =>
    name === LABEL ? { name, type: 'X' as const, role: 'label' as const } : { name, type: 'C' as const },
  );
  return { attributes, records, labels };
}

/** One detector over the seeds: score then learn each record, one pass. */
function runDetector(
  name: engine.DetectorName,
  data: ReturnType<typeof loadSet>,
  seeds: number,
): { entry: Entry; seconds: number } {
  const aucs: number[] = [];
  const aps: number[] = [];
  const scores = new Float64Array(data.records.length);
  const t0 = process.hrtime.bigint();
  for (let seed = 0; seed < seeds; seed++) {
    const model = engine.createModel({ attributes: data.attributes, detector: name, seed });
    for (let i = 0; i < data.records.length; i++) {
      scores[i] = model.scoreOne(data.records[i]).score;
      model.learnOne(data.records[i]);
    }
    aucs.push(rocAuc(scores, data.labels));
    aps.push(averagePrecision(scores, data.labels));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { entry: { rocAuc: quality(aucs), averagePrecision: quality(aps), seeds }, seconds };
}

function main(): void {
  const { values: o } = parseArgs({
    options: {
      seeds: { type: 'string' },
      sets: { type: 'string' },
      peers: { type: 'string' },
      'no-peers': { type: 'boolean' },
      quick: { type: 'boolean' },
      data: { type: 'string' },
      out: { type: 'string', default: path.join(root, 'bench', 'results', 'suite.json') },
    },
  });
  const log = (s: string): void => {
    process.stderr.write(`[suite] ${s}\n`);
  };
  const quick = o.quick === true;
  const seeds = Number(o.seeds ?? (quick ? 1 : 3));
  if (!(Number.isInteger(seeds) && seeds >= 1)) throw new Error(`--seeds must be a whole number >= 1`);
  const peerNames = o['no-peers'] ? [] : (o.peers?.split(',').filter(Boolean) ?? (quick ? QUICK_PEERS : DEFAULT_PEERS));
  const unknownPeer = peerNames.find((p) => !(p in PEER_LABELS));
  if (unknownPeer)
    throw new Error(`unknown peer ${unknownPeer} (expected some of ${Object.keys(PEER_LABELS).join(', ')})`);
  const dataDir = o.data ?? path.join(process.env.STREAM_ML_CACHE ?? path.join(root, '.cache'), 'bench-suite');
  const loadAtStart = os.loadavg();
  const started = Date.now();

  const allSets = ensureSets(dataDir, log);
  const words = o.sets?.split(',').filter(Boolean) ?? (quick ? [...QUICK_SETS, ...QUICK_SETS_ALSO] : []);
  const sets = words.length ? allSets.filter((s) => words.some((w) => s.name.includes(w))) : allSets;
  if (!sets.length)
    throw new Error(`no set matches ${words.join(',')} (sets: ${allSets.map((s) => s.name).join(', ')})`);
  log(
    `${sets.length} sets, ${seeds} seed(s), detectors ${DETECTORS.join(', ')}, peers ${peerNames.join(', ') || 'none'}`,
  );

  const results: SetResult[] = [];
  const detectorSeconds: Record<string, number> = Object.fromEntries(DETECTORS.map((d) => [d, 0]));
  for (const set of sets) {
    const data = loadSet(path.join(dataDir, set.file));
    const detectors: Record<string, Entry> = {};
    for (const name of DETECTORS) {
      try {
        const { entry, seconds } = runDetector(name, data, seeds);
        detectors[name] = entry;
        detectorSeconds[name] += seconds;
      } catch (e) {
        detectors[name] = { rocAuc: quality([NaN]), averagePrecision: quality([NaN]), seeds: 0, error: String(e) };
      }
    }
    const a = detectors.auto;
    log(`${set.name}: auto AUC ${a.rocAuc.mean.toFixed(4)} AP ${a.averagePrecision.mean.toFixed(4)}`);
    results.push({
      ...set,
      detectors,
      peers: {},
      bestPeer: null,
      autoAtLeastBestPeer: { rocAuc: null, averagePrecision: null },
    });
  }

  // The peers: one Python process for all the sets, so the libraries are imported once.
  let peerRun: Record<string, unknown> = {};
  const versions: Record<string, string> = {};
  if (peerNames.length) {
    log('running the Python peers (River, PySAD); the first run installs them into .cache/bench-venv');
    const python = process.env.PYTHON ?? 'python3';
    const args = [path.join(root, 'bench', 'peers', 'run_peers.py'), '--csv-list'];
    args.push(...sets.map((s) => path.join(dataDir, s.file)));
    args.push('--seeds', String(seeds), '--peers', peerNames.join(','), '--timed-runs', '0');
    const r = spawnSync(python, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status === 0) {
      const runs = (JSON.parse(r.stdout) as { runs: { peers: PeerOutput[]; python: string }[] }).runs;
      peerRun = { python: runs[0]?.python, setups: runs[0]?.peers.map((p) => ({ name: p.name, setup: p.setup })) };
      runs.forEach((run, i) => {
        for (const p of run.peers) {
          if (p.version) versions[p.library] = p.version;
          results[i].peers[p.name] = p.error
            ? { rocAuc: quality([NaN]), averagePrecision: quality([NaN]), seeds: 0, error: p.error }
            : { rocAuc: p.rocAuc!, averagePrecision: p.averagePrecision!, seeds: p.seeds ?? 0, partial: p.partial };
        }
      });
    } else {
      log(`the peers did not run (exit ${r.status ?? r.signal}${r.error ? `, ${r.error.message}` : ''})`);
      peerRun = { error: `run_peers.py exited with ${r.status ?? r.signal}` };
    }
  }

  // Best peer of each set by mean ROC-AUC (AP compared with the best peer by AP).
  for (const res of results) {
    const ok = Object.entries(res.peers).filter(([, e]) => !e.error && Number.isFinite(e.rocAuc.mean));
    if (!ok.length) continue;
    const byAuc = ok.reduce((b, c) => (c[1].rocAuc.mean > b[1].rocAuc.mean ? c : b));
    const bestAp = Math.max(...ok.map(([, e]) => e.averagePrecision.mean));
    res.bestPeer = byAuc[0];
    const auto = res.detectors.auto;
    res.autoAtLeastBestPeer = {
      rocAuc: round(auto.rocAuc.mean) >= round(byAuc[1].rocAuc.mean),
      averagePrecision: round(auto.averagePrecision.mean) >= round(bestAp),
    };
  }

  const columns = [
    ...DETECTORS.map((d) => ({ kind: 'detectors' as const, name: d })),
    ...peerNames.map((p) => ({ kind: 'peers' as const, name: p })),
  ];
  const f = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(DECIMALS));
  const cell = (e: Entry | undefined): string =>
    e && !e.error ? `${f(e.rocAuc.mean)} ${f(e.averagePrecision.mean)}` : '-';
  const rows: string[][] = results.map((res) => [
    res.name,
    String(res.attributes),
    String(res.records),
    `${((100 * res.anomalies) / res.records).toFixed(1)}`,
    ...columns.map((c) => cell(res[c.kind][c.name])),
    res.bestPeer ? (PEER_LABELS[res.bestPeer] ?? res.bestPeer) : '-',
    res.autoAtLeastBestPeer.rocAuc === null ? '-' : res.autoAtLeastBestPeer.rocAuc ? 'yes' : 'no',
  ]);
  const meanOf = (c: (typeof columns)[number], key: 'rocAuc' | 'averagePrecision', which: 'mean' | 'worst'): number => {
    const vs = results
      .map((r) => r[c.kind][c.name])
      .filter((e) => e && !e.error)
      .map((e) => e[key][which]);
    return vs.length === results.length ? vs.reduce((a, b) => a + b, 0) / vs.length : NaN;
  };
  const judged = results.filter((r) => r.autoAtLeastBestPeer.rocAuc !== null);
  const winsAuc = judged.filter((r) => r.autoAtLeastBestPeer.rocAuc).length;
  const winsAp = judged.filter((r) => r.autoAtLeastBestPeer.averagePrecision).length;
  rows.push(
    [
      'mean',
      '',
      '',
      '',
      ...columns.map((c) => `${f(meanOf(c, 'rocAuc', 'mean'))} ${f(meanOf(c, 'averagePrecision', 'mean'))}`),
      '',
      judged.length ? `${winsAuc}/${judged.length}` : '-',
    ],
    [
      'mean of worst seeds',
      '',
      '',
      '',
      ...columns.map((c) => `${f(meanOf(c, 'rocAuc', 'worst'))} ${f(meanOf(c, 'averagePrecision', 'worst'))}`),
      '',
      '',
    ],
  );
  const label = (c: (typeof columns)[number]): string =>
    c.kind === 'detectors' ? c.name : (PEER_LABELS[c.name] ?? c.name);
  const header = ['set', 'd', 'records', 'anom %', ...columns.map(label), 'best peer', 'auto >= best'];
  const printed = table(header, rows);

  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const peerVersions = Object.entries(versions)
    .map(([lib, v]) => `${lib} ${v}`)
    .join(', ');
  console.log(
    `\nstream-ml tuning suite: ${results.length} sets, prequential (score then learn), one pass, ${seeds} seed(s); ` +
      `each cell is ROC-AUC and AP, means over the seeds\nNode ${process.version}, ${cpu}${peerVersions ? ', ' + peerVersions : ''}, ` +
      `${new Date().toISOString()}\n`,
  );
  console.log(printed);
  const summary =
    judged.length > 0
      ? `auto at least equal to the best peer (at ${DECIMALS} decimals): ROC-AUC on ${winsAuc} of ${judged.length} sets, ` +
        `AP on ${winsAp} of ${judged.length}`
      : 'no peers ran';
  console.log(`\n${summary}; best peer = the peer with the highest mean ROC-AUC on that set`);
  log(
    `stream-ml detectors took ${Object.entries(detectorSeconds)
      .map(([d, s]) => `${d} ${s.toFixed(1)} s`)
      .join(', ')}`,
  );

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
    protocol:
      'prequential: each record scored by the model as it stands, then learnt; one pass in the order of the file; labels used only to evaluate; exact ROC-AUC and average precision over the whole stream, warm-up included',
    seeds,
    peers: { names: peerNames, versions, ...peerRun },
    seconds: (Date.now() - started) / 1000,
    sets: results,
    summary: {
      autoAtLeastBestPeerRocAuc: winsAuc,
      autoAtLeastBestPeerAp: winsAp,
      judgedSets: judged.length,
      text: summary,
    },
    table: printed,
  };
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
  log(`wrote ${path.relative(process.cwd(), o.out)}`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`[suite] ${(error as Error).message}\n`);
  process.exitCode = 1;
}
