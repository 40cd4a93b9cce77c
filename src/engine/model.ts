// The model: schema + statistics + detector + threshold behind one record-level API, with versioned snapshots.
import { createDetector, detectorFromJSON, type Detector, DETECTOR_NAMES } from './detectors';
import { guessSchema, RecordEncoder, validateSchema } from './schema';
import { RunningStatistics, type RunningStatisticsSnapshot } from './statistics';
import { createThreshold, thresholdFromJSON, type Threshold } from './thresholds';
import type {
  AttributeSpec,
  Contribution,
  DataRecord,
  DetectorName,
  InvalidValuePolicy,
  LearnResult,
  ModelOptions,
  ScoreResult,
  StatisticsReport,
  ThresholdSpec,
} from './types';

/** The answer of a successful learnOne, shared (frozen) rather than allocated per record. */
const LEARNED: LearnResult = Object.freeze({ learned: true });

export const SNAPSHOT_FORMAT = 'stream-ml-model';
/** 2: sketches keep bucket weights beside the tree, the ensemble's calibrators their tail (version 1 had neither). */
export const SNAPSHOT_VERSION = 2;
export const DEFAULT_WARMUP_RECORDS = 256;
export const DEFAULT_THRESHOLD: ThresholdSpec = { kind: 'spot', risk: 1e-3 };
/** Records looked at to guess a schema when none is given. */
export const GUESS_RECORDS = 64;

export interface ModelSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  options: ResolvedOptions;
  schema: AttributeSpec[] | null;
  categories: Record<string, string[]>;
  invalidCounts: number[];
  /** Records waiting for the schema to be guessed. */
  pending: DataRecord[];
  statistics: RunningStatisticsSnapshot | null;
  detector: unknown;
  threshold: unknown;
  recordsLearned: number;
}

interface ResolvedOptions {
  detector: DetectorName;
  threshold: ThresholdSpec;
  warmupRecords: number;
  halfLife: number | null;
  invalidValues: InvalidValuePolicy;
  skipAnomalies: boolean;
  seed: number;
}

export interface Model {
  /** The schema in use: as given, or as guessed from the first records (empty until then). */
  readonly schema: AttributeSpec[];
  /** Records learned (minus records forgotten). */
  readonly recordsLearned: number;
  /** Scores a record with the model as it stands; does not learn it. */
  scoreOne(record: DataRecord): ScoreResult;
  /**
   * Learns a record (never its label). Scoring a record and then learning the same record object reuses its score
   * for the threshold and calibration. With skipAnomalies, a record flagged anomalous is not learned.
   */
  learnOne(record: DataRecord): LearnResult;
  scoreMany(records: DataRecord[]): ScoreResult[];
  learnMany(records: DataRecord[]): LearnResult[];
  /**
   * Removes a record learned earlier: the exact inverse of learnOne for the statistics and the detector (with a
   * half-life, exact for the record learned last). Minimum and maximum, score calibration and threshold keep what
   * they saw. The hst detector cannot forget (the answer says so).
   */
  forgetOne(record: DataRecord): LearnResult;
  /**
   * Adds what another model (same options and schema) learned: the statistics become those of one model that saw
   * both streams. Quantile sketches and histograms merge exactly when their bucket grids agree, else to a bucket;
   * hst models merge only when they share trees (one copied from the other's snapshot).
   */
  merge(other: Model): void;
  /** Univariate and pairwise statistics of the features, plain JSON. */
  statistics(): StatisticsReport;
  /** Per attribute, the values found invalid in records given to learnOne. */
  invalidCounts(): Record<string, number>;
  /** Plain, versioned JSON: modelFromJSON restores it exactly. */
  toJSON(): ModelSnapshot;
}

function resolveOptions(options: ModelOptions): ResolvedOptions {
  const detector = options.detector ?? 'auto';
  if (!DETECTOR_NAMES.includes(detector))
    throw new Error(`unknown detector "${String(detector)}" (expected one of ${DETECTOR_NAMES.join(', ')})`);
  const invalidValues = options.invalidValues ?? 'skip';
  if (!['skip', 'impute', 'error'].includes(invalidValues))
    throw new Error(`invalidValues must be skip, impute or error, not ${String(invalidValues)}`);
  const warmupRecords = options.warmupRecords ?? DEFAULT_WARMUP_RECORDS;
  if (!(Number.isInteger(warmupRecords) && warmupRecords >= 0))
    throw new Error('warmupRecords must be a non-negative integer');
  const halfLife = options.halfLife ?? null;
  if (halfLife !== null && !(halfLife > 0)) throw new Error('halfLife must be a positive number of records');
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  createThreshold(threshold); // validates
  return {
    detector,
    threshold,
    warmupRecords,
    halfLife,
    invalidValues,
    skipAnomalies: options.skipAnomalies === true,
    seed: options.seed ?? 1,
  };
}

class StreamModel implements Model {
  private readonly options: ResolvedOptions;
  private encoder: RecordEncoder | null = null;
  private stats: RunningStatistics | null = null;
  private detector: Detector | null = null;
  private threshold: Threshold;
  private counts: number[] = [];
  private pending: DataRecord[] = [];
  private learned = 0;
  /** Scratch vectors, reused for every record. */
  private x = new Float64Array(0);
  private parts = new Float64Array(0);
  private attributeParts = new Float64Array(0);
  private attributeNames: string[] = [];
  private featureAttributeNames: string[] = [];
  private contributionOrder = new Int32Array(1);
  /** The dimension when every attribute with features has exactly one (no category attributes): -1 otherwise. */
  private oneFeatureAttributes = -1;
  /** The last record scored and its score, reused when that record is learned next (score, then learn). */
  private lastRecord: DataRecord | null = null;
  private lastScore = 0;
  private lastVersion = -1;
  private version = 0;
  /** Bound once: a closure per learned record would be garbage. */
  private readonly onNewFeature = (feature: number): Float64Array => this.addFeature(feature);

  constructor(options: ModelOptions = {}) {
    this.options = resolveOptions(options);
    this.threshold = createThreshold(this.options.threshold, this.options.warmupRecords);
    if (options.attributes) this.setSchema(validateSchema(options.attributes));
  }

  get schema(): AttributeSpec[] {
    return this.encoder ? this.encoder.attributes.map((a) => ({ ...a })) : [];
  }

  get recordsLearned(): number {
    return this.learned;
  }

  /** Names of the numeric features the detector sees (C and B attributes, one per value of T attributes). */
  get features(): string[] {
    return this.encoder ? this.encoder.featureNames.slice() : [];
  }

  scoreOne(record: DataRecord): ScoreResult {
    const encoder = this.encoder;
    const warmingUp = this.learned < this.options.warmupRecords;
    const detectorName = this.options.detector;
    if (encoder === null) {
      return {
        score: 0,
        isAnomaly: false,
        threshold: this.threshold.value,
        detector: detectorName,
        contributions: [],
        warmingUp: true,
      };
    }
    const bad = encoder.encode(record, this.x, false);
    const label = encoder.hasLabel && !Number.isNaN(encoder.label) ? encoder.label : undefined;
    const threshold = this.threshold.value;
    if (bad > 0 && !this.repair(record)) {
      const result: ScoreResult = {
        score: 0,
        isAnomaly: false,
        threshold,
        detector: detectorName,
        contributions: [],
        warmingUp,
        invalid: encoder.describeInvalid(record),
      };
      if (label !== undefined) result.label = label;
      return result;
    }
    const score = this.detector!.scoreOne(this.x, this.parts);
    this.lastRecord = record;
    this.lastScore = score;
    this.lastVersion = this.version;
    // One object literal per shape (with or without a label): no properties added later.
    const isAnomaly = !warmingUp && score > threshold;
    const contributions = this.contributions();
    return label === undefined
      ? { score, isAnomaly, threshold, detector: detectorName, contributions, warmingUp }
      : { score, isAnomaly, threshold, detector: detectorName, contributions, warmingUp, label };
  }

  learnOne(record: DataRecord): LearnResult {
    if (this.encoder === null) {
      this.pending.push(record);
      if (this.pending.length >= GUESS_RECORDS) this.guessNow();
      return { learned: true, reason: 'kept until the schema is guessed' };
    }
    const encoder = this.encoder;
    const bad = encoder.encode(record, this.x, true, this.onNewFeature);
    if (bad > 0) {
      const flags = encoder.invalidFlags;
      for (let a = 0; a < flags.length; a++) if (flags[a]) this.counts[a]++;
      if (!this.repair(record)) return { learned: false, reason: encoder.describeInvalid(record) };
    }
    const cached = record === this.lastRecord && this.lastVersion === this.version;
    const score = cached ? this.lastScore : this.detector!.scoreOne(this.x);
    const warm = this.learned >= this.options.warmupRecords;
    if (this.options.skipAnomalies && warm && score > this.threshold.value) {
      return { learned: false, reason: 'flagged as an anomaly' };
    }
    this.threshold.observe(score);
    this.stats!.learn(this.x);
    this.detector!.learnOne(this.x);
    this.learned++;
    this.version++;
    return LEARNED;
  }

  scoreMany(records: DataRecord[]): ScoreResult[] {
    return records.map((r) => this.scoreOne(r));
  }

  learnMany(records: DataRecord[]): LearnResult[] {
    return records.map((r) => this.learnOne(r));
  }

  forgetOne(record: DataRecord): LearnResult {
    if (this.encoder === null) {
      const i = this.pending.indexOf(record);
      if (i >= 0) this.pending.splice(i, 1);
      return i >= 0 ? { learned: true } : { learned: false, reason: 'record not found among pending records' };
    }
    const bad = this.encoder.encode(record, this.x, false);
    if (bad > 0 && !this.repair(record)) return { learned: false, reason: this.encoder.describeInvalid(record) };
    if (!this.detector!.canForget) {
      return { learned: false, reason: `the ${this.detector!.kind} detector cannot forget a record` };
    }
    this.stats!.forget(this.x);
    this.detector!.forgetOne(this.x);
    this.learned--;
    this.version++;
    return LEARNED;
  }

  merge(other: Model): void {
    if (!(other instanceof StreamModel)) throw new Error('can only merge models made by createModel');
    if (other === this) throw new Error('cannot merge a model with itself');
    if (other.options.detector !== this.options.detector) throw new Error('cannot merge models of different detectors');
    if (this.encoder === null || other.encoder === null) {
      // A model still guessing its schema: learn the other's pending records instead.
      if (other.encoder === null) {
        for (const r of other.pending) this.learnOne(r);
        return;
      }
      const mine = this.pending;
      this.restoreFrom(other.toJSON());
      for (const r of mine) this.learnOne(r);
      return;
    }
    const a = JSON.stringify(this.encoder.attributes);
    const b = JSON.stringify(other.encoder.attributes);
    if (a !== b) throw new Error('cannot merge models with different schemas');
    // Bring both to the same features (category values in the same order).
    const theirs = other.encoder.categoryValues();
    const mine = this.encoder.categoryValues();
    for (const [name, values] of Object.entries(theirs)) {
      for (const v of values) if (!mine[name].includes(v)) this.addCategory(name, v);
    }
    let source: StreamModel = other;
    const names = this.encoder.featureNames;
    const theirNames = other.encoder.featureNames;
    if (names.join('\u0000') !== theirNames.join('\u0000')) {
      // Category values appeared in another order: merge a copy of the other model with its features reordered.
      source = modelFromJSON(other.toJSON()) as StreamModel;
      names.forEach((n, k) => {
        if (source.encoder!.featureNames.includes(n)) return;
        const attribute = this.encoder!.attributes[this.encoder!.featureAttribute[k]].name;
        source.addCategory(attribute, n.slice(attribute.length + 1));
      });
      const order = names.map((n) => source.encoder!.featureNames.indexOf(n));
      source.stats!.permute(order);
      source.detector!.permuteFeatures(order);
    }
    this.stats!.merge(source.stats!);
    this.detector!.merge(source.detector!);
    this.threshold.merge(other.threshold);
    for (let a = 0; a < this.counts.length; a++) this.counts[a] += other.counts[a];
    this.learned += other.learned;
    this.version++;
  }

  statistics(): StatisticsReport {
    if (this.encoder === null || this.stats === null) return { records: 0, features: [], pairs: [] };
    const missing = this.encoder.featureAttribute.map((a) => this.counts[a]);
    return this.stats.report(this.encoder.featureNames, missing);
  }

  invalidCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    if (this.encoder) this.encoder.attributes.forEach((a, i) => (out[a.name] = this.counts[i]));
    return out;
  }

  toJSON(): ModelSnapshot {
    return {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      options: { ...this.options },
      schema: this.encoder ? this.schema : null,
      categories: this.encoder ? this.encoder.categoryValues() : {},
      invalidCounts: this.counts.slice(),
      pending: JSON.parse(JSON.stringify(this.pending)),
      statistics: this.stats ? this.stats.toJSON() : null,
      detector: this.detector ? this.detector.toJSON() : null,
      threshold: this.threshold.toJSON(),
      recordsLearned: this.learned,
    };
  }

  /** Replaces this model's state with a snapshot's (used by modelFromJSON). */
  restoreFrom(s: ModelSnapshot): void {
    const resolved = resolveOptions({ ...s.options, halfLife: s.options.halfLife ?? undefined });
    Object.assign(this.options, resolved);
    this.threshold = thresholdFromJSON(s.threshold);
    this.pending = Array.isArray(s.pending) ? s.pending.slice() : [];
    this.learned = s.recordsLearned;
    this.encoder = null;
    this.stats = null;
    this.detector = null;
    if (s.schema !== null) {
      this.encoder = new RecordEncoder(validateSchema(s.schema), s.categories);
      if (!Array.isArray(s.invalidCounts) || s.invalidCounts.length !== s.schema.length)
        throw new Error('damaged snapshot: invalidCounts');
      this.counts = s.invalidCounts.slice();
      if (s.statistics === null || s.detector === null) throw new Error('damaged snapshot: no statistics or detector');
      this.stats = RunningStatistics.fromJSON(s.statistics);
      this.detector = detectorFromJSON(s.detector, this.stats);
      const d = this.encoder.dimension;
      if (this.stats.dimension !== d || this.detector.dimension !== d)
        throw new Error('damaged snapshot: feature count does not match the schema');
      this.x = new Float64Array(Math.max(d, 1));
      this.parts = new Float64Array(Math.max(d, 1));
      this.layoutContributions();
    }
    this.version++;
  }

  /** Fills invalid features with the running mean (impute), or says the record cannot be used. */
  private repair(record: DataRecord): boolean {
    const policy = this.options.invalidValues;
    if (policy === 'error') throw new Error(this.encoder!.describeInvalid(record));
    if (policy === 'skip') return false;
    const mean = this.stats!.mean;
    const weight = this.stats!.weight;
    for (let j = 0; j < this.encoder!.dimension; j++) {
      if (Number.isNaN(this.x[j])) this.x[j] = weight > 0 ? mean[j] : 0;
    }
    return true;
  }

  private contributions(): Contribution[] {
    const encoder = this.encoder!;
    const parts = this.parts;
    const d = encoder.dimension;
    let total = 0;
    for (let j = 0; j < d; j++) total += parts[j];
    if (!(total > 0)) return [];
    let values = parts;
    let names = this.featureAttributeNames;
    let n = d;
    if (d !== this.oneFeatureAttributes) {
      // Some attribute has several features (one per category value): add them up per attribute.
      values = this.attributeParts;
      values.fill(0);
      const featureAttribute = encoder.featureAttribute;
      for (let j = 0; j < d; j++) values[featureAttribute[j]] += parts[j];
      names = this.attributeNames;
      n = names.length;
    }
    // Sort indices by share on typed scratch arrays, then allocate the entries once, in order.
    const order = this.contributionOrder;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!(v > 0)) continue;
      let k = count++;
      while (k > 0 && values[order[k - 1]] < v) {
        order[k] = order[k - 1];
        k--;
      }
      order[k] = i;
    }
    const out = new Array<Contribution>(count);
    const inverse = 1 / total;
    for (let k = 0; k < count; k++) out[k] = { attribute: names[order[k]], share: values[order[k]] * inverse };
    return out;
  }

  private setSchema(attributes: AttributeSpec[]): void {
    this.encoder = new RecordEncoder(attributes);
    this.counts = new Array(attributes.length).fill(0);
    const d = this.encoder.dimension;
    // Quantile sketches for continuous features; 0/1 features are described by their mean.
    const quantiles = this.encoder.featureAttribute.map((a) => attributes[a].type === 'C');
    this.stats = new RunningStatistics(d, { halfLife: this.options.halfLife ?? undefined, quantiles });
    this.detector = createDetector(this.options.detector, d, {
      halfLife: this.options.halfLife ?? undefined,
      seed: this.options.seed,
      statistics: this.stats,
    });
    this.x = new Float64Array(Math.max(d, 1));
    this.parts = new Float64Array(Math.max(d, 1));
    this.layoutContributions();
  }

  private layoutContributions(): void {
    const encoder = this.encoder!;
    const categories = encoder.attributes.some(
      (a) => a.role !== 'label' && (a.type === 'T' || (a.type === 'S' && a.asCategory === true)),
    );
    this.attributeParts = new Float64Array(encoder.attributes.length);
    this.oneFeatureAttributes = categories ? -1 : encoder.dimension;
    this.attributeNames = encoder.attributes.map((a) => a.name);
    this.featureAttributeNames = encoder.featureAttribute.map((a) => encoder.attributes[a].name);
    this.contributionOrder = new Int32Array(Math.max(encoder.attributes.length, encoder.dimension, 1));
  }

  private guessNow(): void {
    const records = this.pending;
    this.pending = [];
    this.setSchema(guessSchema(records));
    for (const r of records) this.learnOne(r);
  }

  /** Grows statistics and detector by one feature; returns the (possibly new) scratch vector. */
  private addFeature(_feature: number): Float64Array {
    this.stats!.addFeature(false);
    this.detector!.addFeature();
    const d = this.encoder!.dimension;
    if (this.x.length < d) {
      const x = new Float64Array(d * 2);
      x.set(this.x);
      this.x = x;
      this.parts = new Float64Array(d * 2);
    }
    this.layoutContributions();
    this.version++;
    return this.x;
  }

  private addCategory(name: string, value: string): void {
    // Encoding a record holding only this value creates the feature (the other attributes are just left invalid).
    const record: Record<string, unknown> = { [name]: value };
    const scratch = (): Float64Array => new Float64Array(this.encoder!.dimension + 1);
    this.encoder!.encode(record, scratch(), true, (f) => {
      this.addFeature(f);
      return scratch();
    });
  }
}

/** Creates a model; with no attributes, the schema is guessed from the first records learned. */
export function createModel(options: ModelOptions = {}): Model {
  return new StreamModel(options);
}

/** Restores a model from toJSON() output; refuses an unknown version or a damaged snapshot with a clear Error. */
export function modelFromJSON(snapshot: unknown): Model {
  if (typeof snapshot === 'string') {
    try {
      snapshot = JSON.parse(snapshot);
    } catch {
      throw new Error('model snapshot is not valid JSON');
    }
  }
  if (!snapshot || typeof snapshot !== 'object') throw new Error('model snapshot must be an object');
  const s = snapshot as ModelSnapshot;
  if (s.format !== SNAPSHOT_FORMAT) throw new Error(`not a model snapshot (format is ${String(s.format)})`);
  if (s.version !== SNAPSHOT_VERSION)
    throw new Error(
      `unsupported model snapshot version ${String(s.version)} (this engine reads version ${SNAPSHOT_VERSION})`,
    );
  if (!s.options || typeof s.options !== 'object') throw new Error('damaged model snapshot: options');
  const model = new StreamModel({});
  try {
    model.restoreFrom(s);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new Error(
      message.startsWith('damaged') ? `damaged model snapshot: ${message}` : `damaged model snapshot: ${message}`,
    );
  }
  return model;
}
