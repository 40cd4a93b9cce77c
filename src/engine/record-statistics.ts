// Statistics of records without a detector: the schema's encoding plus RunningStatistics, for flows (and
// benchmarks) that only want the numbers. Invalid values are skipped and counted per attribute, as in a model.
import { RecordEncoder, validateSchema } from './schema';
import { RunningStatistics, type RunningStatisticsSnapshot } from './statistics';
import type { AttributeSpec, DataRecord, LearnResult, StatisticsReport } from './types';

export interface RecordStatisticsOptions {
  attributes: AttributeSpec[];
  /** Exponential forgetting, in records. */
  halfLife?: number;
}

export interface RecordStatisticsSnapshot {
  format: 'stream-ml-statistics';
  version: 1;
  attributes: AttributeSpec[];
  categories: Record<string, string[]>;
  invalidCounts: number[];
  statistics: RunningStatisticsSnapshot;
}

const LEARNED: LearnResult = Object.freeze({ learned: true });

export class RecordStatistics {
  private readonly encoder: RecordEncoder;
  private stats: RunningStatistics;
  private readonly counts: number[];
  private x: Float64Array;
  private readonly onNewFeature = (): Float64Array => this.grow();

  constructor(options: RecordStatisticsOptions, restore?: RecordStatisticsSnapshot) {
    this.encoder = new RecordEncoder(validateSchema(options.attributes), restore?.categories);
    const quantiles = this.encoder.featureAttribute.map((a) => this.encoder.attributes[a].type === 'C');
    this.stats = restore
      ? RunningStatistics.fromJSON(restore.statistics)
      : new RunningStatistics(this.encoder.dimension, { halfLife: options.halfLife, quantiles });
    this.counts = restore ? restore.invalidCounts.slice() : new Array(this.encoder.attributes.length).fill(0);
    this.x = new Float64Array(Math.max(this.encoder.dimension, 1));
  }

  get recordsLearned(): number {
    return this.stats.records;
  }

  /** The underlying feature statistics (read them, do not learn into them). */
  get running(): RunningStatistics {
    return this.stats;
  }

  learnOne(record: DataRecord): LearnResult {
    const bad = this.encoder.encode(record, this.x, true, this.onNewFeature);
    if (bad > 0) {
      const flags = this.encoder.invalidFlags;
      for (let a = 0; a < flags.length; a++) if (flags[a]) this.counts[a]++;
      return { learned: false, reason: this.encoder.describeInvalid(record) };
    }
    this.stats.learn(this.x);
    return LEARNED;
  }

  learnMany(records: DataRecord[]): LearnResult[] {
    return records.map((r) => this.learnOne(r));
  }

  /** The exact inverse of learnOne for the moments, comoments and quantile sketches. */
  forgetOne(record: DataRecord): LearnResult {
    if (this.encoder.encode(record, this.x, false) > 0)
      return { learned: false, reason: this.encoder.describeInvalid(record) };
    this.stats.forget(this.x);
    return LEARNED;
  }

  /** Adds other's statistics (same attributes; category values must have appeared in the same order). */
  merge(other: RecordStatistics): void {
    if (this.encoder.featureNames.join('\u0000') !== other.encoder.featureNames.join('\u0000'))
      throw new Error('cannot merge statistics of different features');
    this.stats.merge(other.stats);
    for (let a = 0; a < this.counts.length; a++) this.counts[a] += other.counts[a];
  }

  statistics(): StatisticsReport {
    const missing = this.encoder.featureAttribute.map((a) => this.counts[a]);
    return this.stats.report(this.encoder.featureNames, missing);
  }

  invalidCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    this.encoder.attributes.forEach((a, i) => (out[a.name] = this.counts[i]));
    return out;
  }

  toJSON(): RecordStatisticsSnapshot {
    return {
      format: 'stream-ml-statistics',
      version: 1,
      attributes: this.encoder.attributes.map((a) => ({ ...a })),
      categories: this.encoder.categoryValues(),
      invalidCounts: this.counts.slice(),
      statistics: this.stats.toJSON(),
    };
  }

  static fromJSON(snapshot: unknown): RecordStatistics {
    const s = snapshot as RecordStatisticsSnapshot;
    if (!s || typeof s !== 'object' || s.format !== 'stream-ml-statistics')
      throw new Error('not a statistics snapshot');
    if (s.version !== 1) throw new Error(`unsupported statistics snapshot version ${String(s.version)}`);
    const restored = new RecordStatistics({ attributes: s.attributes }, s);
    if (restored.stats.dimension !== restored.encoder.dimension || restored.counts.length !== s.attributes.length)
      throw new Error('damaged statistics snapshot: features do not match the attributes');
    return restored;
  }

  private grow(): Float64Array {
    this.stats.addFeature(false);
    if (this.x.length < this.encoder.dimension) {
      const x = new Float64Array(this.encoder.dimension * 2);
      x.set(this.x);
      this.x = x;
    }
    return this.x;
  }
}
