// `stream-ml evaluate`: replays a CSV through an engine model, score then learn, and measures it.
import { averagePrecision, rocAuc, StreamingEvaluator } from '../engine/evaluation';
import { EvaluateArgs, Threshold, UsageError } from './args';
import { ColumnType, GUESS_ROWS, convert, guessTypes, labelOf } from './columns';
import { CsvError, CsvRow, readCsvBatches } from './csv';

/** The part of the engine's API the command uses (src/engine/index.ts implements it). */
export interface EngineApi {
  createModel(options?: {
    attributes?: { name: string; type: ColumnType; role?: 'label' }[];
    detector?: EvaluateArgs['detector'];
    threshold?: Threshold;
    warmupRecords?: number;
    seed?: number;
  }): {
    scoreOne(r: unknown[]): {
      score: number;
      isAnomaly: boolean;
      threshold: number;
      warmingUp: boolean;
      invalid?: string;
    };
    learnOne(r: unknown[]): { learned: boolean; reason?: string };
  };
}

export interface EvaluateResult {
  file: string;
  records: number;
  detector: string;
  types: string;
  typesGuessed: boolean;
  label: string | null;
  labelled: number;
  anomalies: number;
  rocAuc: number | null;
  averagePrecision: number | null;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  threshold: { spec: string; last: number | null };
  flagged: number;
  warmup: number;
  invalid: number;
  recordsPerSecond: number;
  seconds: number;
}

/** Above this many records the scores are no longer all kept: AUC and AP come from the bucketed evaluator. */
const MAX_EXACT = 20_000_000;

function thresholdText(t: Threshold | undefined): string {
  if (!t) return 'default';
  if (t.kind === 'fixed') return String(t.value);
  if (t.kind === 'quantile') return `q${+(t.q * 100).toPrecision(12)}`;
  return `spot:${t.risk}`;
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Growable typed arrays for the scores and labels of every labelled record. */
class Kept {
  scores = new Float64Array(1 << 16);
  labels = new Uint8Array(1 << 16);
  n = 0;
  push(score: number, label: number): void {
    if (this.n === this.scores.length) {
      const s = new Float64Array(this.n * 2);
      s.set(this.scores);
      this.scores = s;
      const l = new Uint8Array(this.n * 2);
      l.set(this.labels);
      this.labels = l;
    }
    this.scores[this.n] = score;
    this.labels[this.n++] = label;
  }
}

export async function evaluate(
  args: EvaluateArgs,
  engine: EngineApi,
  warn: (s: string) => void,
): Promise<EvaluateResult> {
  const started = process.hrtime.bigint();
  let names: string[] | undefined;
  let width = 0;
  let labelIndex = -1;
  let types: ColumnType[] | undefined = args.types;
  let typesGuessed = false;
  let model: ReturnType<EngineApi['createModel']> | undefined;
  const pending: CsvRow[] = [];

  const evaluator = new StreamingEvaluator({ buckets: 1 << 16 });
  const kept = new Kept();
  let exact = true;
  let records = 0;
  let flagged = 0;
  let warmup = 0;
  let invalid = 0;
  let lastThreshold: number | null = null;
  let engineNs = 0n;

  const setUp = (sample: CsvRow[]): void => {
    if (!names) throw new Error('no header');
    if (!types) {
      types = guessTypes(
        width,
        sample.map((r) => r.fields),
        labelIndex,
      );
      typesGuessed = true;
      warn(`guessed types: ${types.join(',')} (from ${sample.length} rows; pass --types to set them)`);
    } else if (types.length === width - 1 && labelIndex >= 0) {
      types = [...types.slice(0, labelIndex), 'X', ...types.slice(labelIndex)];
    } else if (types.length !== width) {
      throw new UsageError(`--types gives ${types.length} types for ${width} columns`);
    }
    const t = types;
    const attributes = names.map((name, i) =>
      i === labelIndex ? { name, type: 'X' as const, role: 'label' as const } : { name, type: t[i] },
    );
    model = engine.createModel({
      attributes,
      detector: args.detector,
      threshold: args.threshold,
      seed: args.seed,
      warmupRecords: args.warmup,
    });
  };

  const replay = (rows: CsvRow[]): void => {
    const t = types as ColumnType[];
    const m = model as NonNullable<typeof model>;
    const recs: unknown[][] = new Array(rows.length);
    const labels = new Float64Array(rows.length);
    for (let k = 0; k < rows.length; k++) {
      const { fields, line } = rows[k];
      if (fields.length !== width) throw new CsvError(line, `expected ${width} fields, found ${fields.length}`);
      const rec = new Array(width);
      for (let i = 0; i < width; i++) rec[i] = i === labelIndex ? undefined : convert(t[i], fields[i]);
      labels[k] = labelIndex >= 0 ? labelOf(fields[labelIndex]) : NaN;
      if (labelIndex >= 0 && !Number.isNaN(labels[k])) rec[labelIndex] = labels[k];
      recs[k] = rec;
    }
    // Only the engine's work is timed.
    const results = new Array(rows.length);
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < recs.length; k++) {
      results[k] = m.scoreOne(recs[k]);
      m.learnOne(recs[k]);
    }
    engineNs += process.hrtime.bigint() - t0;
    for (let k = 0; k < results.length; k++) {
      const r = results[k];
      records++;
      if (r.warmingUp) warmup++;
      if (r.invalid !== undefined || !Number.isFinite(r.score)) {
        invalid++;
        continue;
      }
      if (r.isAnomaly) flagged++;
      lastThreshold = r.threshold;
      const y = labels[k];
      if (Number.isNaN(y)) continue;
      evaluator.add(r.score, y, r.isAnomaly);
      if (exact) {
        if (kept.n < MAX_EXACT) kept.push(r.score, y);
        else exact = false;
      }
    }
  };

  for await (const batch of readCsvBatches(args.file, args.delimiter)) {
    let rows = batch;
    if (!names) {
      const first = rows[0];
      width = first.fields.length;
      if (args.header) {
        names = first.fields.map((f, i) => f.trim() || `c${i + 1}`);
        rows = rows.slice(1);
      } else {
        names = first.fields.map((_, i) => `c${i + 1}`);
      }
      const dup = names.find((n, i) => names?.indexOf(n) !== i);
      if (dup !== undefined) throw new CsvError(first.line, `the column name ${JSON.stringify(dup)} occurs twice`);
      if (args.label !== undefined) {
        labelIndex = names.indexOf(args.label);
        if (labelIndex < 0)
          throw new UsageError(`--label ${args.label}: no such column (columns: ${names.join(', ')})`);
      } else {
        warn('no --label: the data is scored but the quality figures are null');
      }
    }
    if (!model) {
      if (!types) {
        // Keep the first rows to guess the types from; replay them once the model exists.
        pending.push(...rows);
        if (pending.length < GUESS_ROWS) continue;
      }
      rows = pending.length > 0 ? pending.splice(0) : rows;
      setUp(rows.slice(0, GUESS_ROWS));
    }
    replay(rows);
  }
  if (!names) throw new CsvError(1, 'the file is empty');
  if (!model) {
    setUp(pending);
    replay(pending);
  }

  const summary = evaluator.summary();
  const haveBoth = summary.positives > 0 && summary.negatives > 0;
  const auc = exact ? rocAuc(kept.scores.subarray(0, kept.n), kept.labels.subarray(0, kept.n)) : summary.rocAuc;
  const ap = exact
    ? averagePrecision(kept.scores.subarray(0, kept.n), kept.labels.subarray(0, kept.n))
    : summary.averagePrecision;
  const labelled = summary.records;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    file: args.file,
    records,
    detector: args.detector,
    types: (types as ColumnType[] | undefined)?.join(',') ?? '',
    typesGuessed,
    label: args.label ?? null,
    labelled,
    anomalies: summary.positives,
    rocAuc: haveBoth ? finiteOrNull(auc) : null,
    averagePrecision: summary.positives > 0 ? finiteOrNull(ap) : null,
    precision: labelled > 0 ? summary.precision : null,
    recall: labelled > 0 ? summary.recall : null,
    f1: labelled > 0 ? summary.f1 : null,
    tp: summary.tp,
    fp: summary.fp,
    tn: summary.tn,
    fn: summary.fn,
    threshold: { spec: thresholdText(args.threshold), last: lastThreshold },
    flagged,
    warmup,
    invalid,
    recordsPerSecond: engineNs > 0n ? Math.round(records / (Number(engineNs) / 1e9)) : 0,
    seconds: Math.round(seconds * 1000) / 1000,
  };
}
