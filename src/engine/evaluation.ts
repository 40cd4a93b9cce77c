// Live evaluation of an anomaly detector against labels: running ROC-AUC, average precision, and
// precision / recall / F1 with confusion counts at the threshold in force when each record was judged.
//
// StreamingEvaluator keeps, per class, the count of scores in each of B equal buckets over [0, 1]
// (B = 4096 by default) plus a Fenwick tree over those counts, so that:
//   - add() is O(log B): it updates the Mann-Whitney U statistic with the pairs the new record forms;
//   - rocAuc() is O(1); averagePrecision() is O(B), cached until the next add();
//   - metricsAt(t) for any threshold is O(log B).
// Approximation: scores that share a bucket are treated as tied, which is exactly what the
// exact functions below give on scores rounded down to the bucket grid. The ROC-AUC error is at most
// aucErrorBound() = 0.5 * (positive-negative pairs sharing a bucket) / (all positive-negative pairs),
// which is tracked exactly (1 / (2B) for scores spread uniformly; it reports the real figure).
// Scores outside [0, 1] are clamped into the end buckets; NaN scores and records without a usable
// label are counted as skipped and change nothing else.

/** A label: true or a non-zero number = anomaly, false or 0 = normal; NaN, null, undefined are not labels. */
export type Label = number | boolean | null | undefined;

export interface EvaluatorOptions {
  /** Number of score buckets over [0, 1] (default 4096, at least 2). */
  buckets?: number;
  /** Threshold used by add() when the caller does not say whether the record was flagged (default 0.5). */
  threshold?: number;
}

export interface ConfusionCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface ThresholdMetrics extends ConfusionCounts {
  precision: number;
  recall: number;
  f1: number;
}

export interface EvaluationSummary extends ThresholdMetrics {
  records: number;
  positives: number;
  negatives: number;
  skipped: number;
  /** NaN until both classes have been seen. */
  rocAuc: number;
  /** NaN until a positive has been seen. */
  averagePrecision: number;
  /** Largest possible difference between rocAuc and the exact ROC-AUC of the unrounded scores. */
  aucErrorBound: number;
}

export interface EvaluatorSnapshot {
  format: 'stream-ml/evaluator';
  version: 1;
  buckets: number;
  threshold: number;
  /** Non-empty buckets as [index, count, index, count, ...]. */
  positives: number[];
  negatives: number[];
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  skipped: number;
}

const FORMAT = 'stream-ml/evaluator';
const VERSION = 1;
const DEFAULT_BUCKETS = 4096;

/** 1 for an anomaly, 0 for normal, -1 for no usable label. */
function labelValue(label: Label): number {
  if (label === true) return 1;
  if (label === false) return 0;
  if (typeof label === 'number' && Number.isFinite(label)) return label !== 0 ? 1 : 0;
  return -1;
}

function ratio(a: number, b: number): number {
  return b > 0 ? a / b : 0;
}

function f1Of(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function withRates(c: ConfusionCounts): ThresholdMetrics {
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  return { ...c, precision, recall, f1: f1Of(precision, recall) };
}

/** Counts per bucket with prefix sums in O(log n) (a Fenwick tree beside the plain counts). */
class BucketCounts {
  readonly counts: Float64Array;
  private readonly tree: Float64Array;
  total = 0;

  constructor(readonly size: number) {
    this.counts = new Float64Array(size);
    this.tree = new Float64Array(size + 1);
  }

  add(bucket: number, n: number): void {
    this.counts[bucket] += n;
    this.total += n;
    for (let i = bucket + 1; i <= this.size; i += i & -i) this.tree[i] += n;
  }

  /** Sum of the counts of buckets 0 .. bucket-1. */
  below(bucket: number): number {
    let s = 0;
    for (let i = bucket; i > 0; i -= i & -i) s += this.tree[i];
    return s;
  }

  /** Non-empty buckets as [index, count, ...]. */
  toSparse(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.counts[i] !== 0) out.push(i, this.counts[i]);
    return out;
  }
}

export class StreamingEvaluator {
  readonly buckets: number;
  /** Threshold for add() calls that do not pass isAnomaly; may be changed at any time. */
  threshold: number;
  private readonly pos: BucketCounts;
  private readonly neg: BucketCounts;
  // Twice the Mann-Whitney U statistic (kept as an integer), and the pairs that share a bucket.
  private u2 = 0;
  private sharedPairs = 0;
  private confusion: ConfusionCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  private skippedCount = 0;
  private apCache: number | undefined;

  constructor(options: EvaluatorOptions = {}) {
    const buckets = options.buckets ?? DEFAULT_BUCKETS;
    if (!Number.isInteger(buckets) || buckets < 2 || buckets > 1 << 24)
      throw new RangeError(`buckets must be an integer from 2 to ${1 << 24}, got ${buckets}`);
    const threshold = options.threshold ?? 0.5;
    if (!Number.isFinite(threshold)) throw new RangeError(`threshold must be a finite number, got ${threshold}`);
    this.buckets = buckets;
    this.threshold = threshold;
    this.pos = new BucketCounts(buckets);
    this.neg = new BucketCounts(buckets);
  }

  /** Bucket of a score: [0, 1] in B equal parts, the top one closed; outside values go to the ends. */
  bucketOf(score: number): number {
    if (!(score > 0)) return 0;
    if (score >= 1) return this.buckets - 1;
    return Math.floor(score * this.buckets);
  }

  /**
   * Adds one judged record. `isAnomaly` is the decision taken for it (e.g. ScoreResult.isAnomaly, with a
   * threshold that moves); without it the record is flagged when score >= this.threshold.
   * Returns false (and counts the record as skipped) when the score is NaN or the label is not usable.
   */
  add(score: number, label: Label, isAnomaly?: boolean): boolean {
    const y = labelValue(label);
    if (y < 0 || Number.isNaN(score)) {
      this.skippedCount++;
      return false;
    }
    const b = this.bucketOf(score);
    const flagged = isAnomaly ?? score >= this.threshold;
    if (y === 1) {
      const same = this.neg.counts[b];
      this.u2 += 2 * this.neg.below(b) + same;
      this.sharedPairs += same;
      this.pos.add(b, 1);
      if (flagged) this.confusion.tp++;
      else this.confusion.fn++;
    } else {
      const same = this.pos.counts[b];
      this.u2 += 2 * (this.pos.total - this.pos.below(b) - same) + same;
      this.sharedPairs += same;
      this.neg.add(b, 1);
      if (flagged) this.confusion.fp++;
      else this.confusion.tn++;
    }
    this.apCache = undefined;
    return true;
  }

  get records(): number {
    return this.pos.total + this.neg.total;
  }

  get skipped(): number {
    return this.skippedCount;
  }

  rocAuc(): number {
    const pairs = this.pos.total * this.neg.total;
    return pairs > 0 ? this.u2 / (2 * pairs) : NaN;
  }

  aucErrorBound(): number {
    const pairs = this.pos.total * this.neg.total;
    return pairs > 0 ? (0.5 * this.sharedPairs) / pairs : NaN;
  }

  averagePrecision(): number {
    if (this.apCache !== undefined) return this.apCache;
    const P = this.pos.total;
    let ap = NaN;
    if (P > 0) {
      // From the top bucket down, each bucket is one threshold (its scores tied).
      ap = 0;
      let tp = 0;
      let fp = 0;
      const pc = this.pos.counts;
      const nc = this.neg.counts;
      for (let b = this.buckets - 1; b >= 0; b--) {
        const t = pc[b];
        fp += nc[b];
        if (t === 0) continue;
        tp += t;
        ap += (t / P) * (tp / (tp + fp));
      }
    }
    this.apCache = ap;
    return ap;
  }

  /** Confusion counts from the decisions passed to add() (or this.threshold when none was passed). */
  confusionCounts(): ConfusionCounts {
    return { ...this.confusion };
  }

  /** Precision, recall, F1 and confusion counts from the decisions taken as records arrived. */
  metrics(): ThresholdMetrics {
    return withRates(this.confusion);
  }

  /** What a fixed threshold t would have given on every record so far (scores at the bucket grid). */
  metricsAt(t: number): ThresholdMetrics {
    // score >= t, on the grid: buckets from the one holding t upwards (exact when t is a bucket edge).
    const b = t > 1 ? this.buckets : this.bucketOf(t);
    const tp = this.pos.total - this.pos.below(b);
    const fp = this.neg.total - this.neg.below(b);
    return withRates({ tp, fp, tn: this.neg.total - fp, fn: this.pos.total - tp });
  }

  summary(): EvaluationSummary {
    return {
      records: this.records,
      positives: this.pos.total,
      negatives: this.neg.total,
      skipped: this.skippedCount,
      rocAuc: this.rocAuc(),
      averagePrecision: this.averagePrecision(),
      aucErrorBound: this.aucErrorBound(),
      ...this.metrics(),
    };
  }

  toJSON(): EvaluatorSnapshot {
    return {
      format: FORMAT,
      version: VERSION,
      buckets: this.buckets,
      threshold: this.threshold,
      positives: this.pos.toSparse(),
      negatives: this.neg.toSparse(),
      ...this.confusion,
      skipped: this.skippedCount,
    };
  }

  static fromJSON(snapshot: unknown): StreamingEvaluator {
    const fail = (why: string): never => {
      throw new Error(`not a valid stream-ml evaluator snapshot: ${why}`);
    };
    if (typeof snapshot !== 'object' || snapshot === null) return fail('not an object');
    const s = snapshot as Partial<EvaluatorSnapshot>;
    if (s.format !== FORMAT) return fail(`format is ${JSON.stringify(s.format)}`);
    if (s.version !== VERSION) return fail(`version ${JSON.stringify(s.version)} is not supported (expected 1)`);
    const count = (v: unknown, name: string): number =>
      typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fail(`${name} is not a count`);
    const ev = new StreamingEvaluator({
      buckets: count(s.buckets, 'buckets'),
      threshold: typeof s.threshold === 'number' ? s.threshold : fail('threshold is not a number'),
    });
    for (const [name, list] of [
      ['positives', s.positives],
      ['negatives', s.negatives],
    ] as const) {
      if (!Array.isArray(list) || list.length % 2 !== 0) return fail(`${name} is not a list of index, count pairs`);
      const y = name === 'positives' ? 1 : 0;
      for (let i = 0; i < list.length; i += 2) {
        const b = count(list[i], `${name} index`);
        if (b >= ev.buckets) fail(`${name} index ${b} is out of range`);
        ev.addBucket(b, y, count(list[i + 1], `${name} count`));
      }
    }
    ev.confusion = {
      tp: count(s.tp, 'tp'),
      fp: count(s.fp, 'fp'),
      tn: count(s.tn, 'tn'),
      fn: count(s.fn, 'fn'),
    };
    ev.skippedCount = count(s.skipped, 'skipped');
    return ev;
  }

  // Adds n records of one class in one bucket, updating U as n single adds would (used to restore).
  private addBucket(b: number, y: number, n: number): void {
    if (n === 0) return;
    if (y === 1) {
      const same = this.neg.counts[b];
      this.u2 += n * (2 * this.neg.below(b) + same);
      this.sharedPairs += n * same;
      this.pos.add(b, n);
    } else {
      const same = this.pos.counts[b];
      this.u2 += n * (2 * (this.pos.total - this.pos.below(b) - same) + same);
      this.sharedPairs += n * same;
      this.neg.add(b, n);
    }
    this.apCache = undefined;
  }
}

// ---- exact metrics on whole arrays (used by the benchmark and the CLI) ----

/** Distinct scores from high to low, with the positives and negatives at each; NaN scores are refused. */
function tiedGroups(scores: ArrayLike<number>, labels: ArrayLike<Label>): { pos: number[]; neg: number[] } {
  if (scores.length !== labels.length)
    throw new RangeError(`scores (${scores.length}) and labels (${labels.length}) differ in length`);
  const n = scores.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) throw new RangeError(`score ${i} is NaN`);
    if (labelValue(labels[i]) < 0) throw new RangeError(`label ${i} is not 0/1 or a boolean`);
    order[i] = i;
  }
  // Comparisons, not subtraction, so that infinite scores sort too.
  order.sort((a, b) => (scores[b] > scores[a] ? 1 : scores[b] < scores[a] ? -1 : 0));
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < n;) {
    const s = scores[order[i]];
    let p = 0;
    let q = 0;
    for (; i < n && scores[order[i]] === s; i++) {
      if (labelValue(labels[order[i]]) === 1) p++;
      else q++;
    }
    pos.push(p);
    neg.push(q);
  }
  return { pos, neg };
}

/**
 * Exact ROC-AUC: the probability that a random anomaly scores above a random normal record, ties counting
 * one half (the trapezoidal area sklearn.metrics.roc_auc_score gives). NaN unless both classes occur.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<Label>): number {
  const { pos, neg } = tiedGroups(scores, labels);
  const P = pos.reduce((a, b) => a + b, 0);
  const N = neg.reduce((a, b) => a + b, 0);
  if (P === 0 || N === 0) return NaN;
  let u2 = 0;
  let negBelow = N;
  for (let g = 0; g < pos.length; g++) {
    negBelow -= neg[g];
    u2 += pos[g] * (2 * negBelow + neg[g]);
  }
  return u2 / (2 * P * N);
}

/**
 * Exact average precision as sklearn.metrics.average_precision_score defines it: the sum over distinct
 * thresholds, from high to low, of (recall gained) x (precision at that threshold). NaN with no anomaly.
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<Label>): number {
  const { pos, neg } = tiedGroups(scores, labels);
  const P = pos.reduce((a, b) => a + b, 0);
  if (P === 0) return NaN;
  let ap = 0;
  let tp = 0;
  let fp = 0;
  for (let g = 0; g < pos.length; g++) {
    tp += pos[g];
    fp += neg[g];
    if (pos[g] > 0) ap += (pos[g] / P) * (tp / (tp + fp));
  }
  return ap;
}
