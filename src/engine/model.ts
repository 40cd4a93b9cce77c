// The model: schema + statistics + detector + threshold behind one record-level API, with versioned snapshots.
import { createDetector, detectorFromJSON, type Detector, DETECTOR_NAMES } from './detectors';
import { LearnedPositions, type LearnedPositionsSnapshot } from './learned-positions';
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
/**
 * 3: extra detectors (version 2 had none and is still read). 2: sketches keep bucket weights beside the tree, the
 * ensemble's calibrators their tail (version 1 had neither).
 */
export const SNAPSHOT_VERSION = 3;
const READABLE_VERSIONS = [2, 3];
export const DEFAULT_WARMUP_RECORDS = 256;
export const DEFAULT_THRESHOLD: ThresholdSpec = { kind: 'spot', risk: 1e-3 };
/** Records looked at to guess a schema when none is given. */
export const GUESS_RECORDS = 64;
/** Scored records remembered for learnOne, at first and at most (powers of two); see rememberScored. */
const SCORED_RING = 1024;
const SCORED_RING_MAX = 32768;
/** Remembered records a learnOne looks through, oldest first, for the one it learns. */
const SCORED_LOOKAHEAD = 32;

export interface ModelSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  options: ResolvedOptions;
  schema: AttributeSpec[] | null;
  categories: Record<string, string[]>;
  invalidCounts: number[];
  /** Records waiting for the schema to be guessed. */
  pending: DataRecord[];
  /** True when the schema was guessed from the first records (absent before this field: false). */
  schemaGuessed?: boolean;
  /** Fields the guess takes as the label (ModelOptions.labelFields, setLabelFields). */
  labelFields?: string[];
  statistics: RunningStatisticsSnapshot | null;
  detector: unknown;
  threshold: unknown;
  /** The extra detectors and their thresholds, in the order of options.extraDetectors (absent in version 2). */
  extraDetectors?: { detector: unknown; threshold: unknown }[];
  recordsLearned: number;
  /** Per source, the last position learned (absent in older snapshots and when nothing came from a source). */
  positions?: LearnedPositionsSnapshot;
}

/** A detector the model learns beside its default one; null until the schema is known. */
interface ExtraDetector {
  name: DetectorName;
  detector: Detector | null;
  threshold: Threshold;
}

export interface ResolvedOptions {
  detector: DetectorName;
  extraDetectors: DetectorName[];
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
  /** True when the schema was guessed from the first records rather than given. */
  readonly schemaGuessed: boolean;
  /** Records learned (minus records forgotten). */
  readonly recordsLearned: number;
  /** The detectors the model learns: its default one first, then the extra ones. */
  readonly detectors: DetectorName[];
  /** The options it was made with, defaults filled in (a copy). */
  readonly resolvedOptions: ResolvedOptions;
  /**
   * Per source (e.g. a Kafka topic and partition), the last position learned: the adapter that learns a record
   * with a position advances it, so a replayed record is known and not learned twice. Kept in the snapshot and by
   * merge (the furthest of both).
   */
  readonly positions: LearnedPositions;
  /**
   * Scores a record with the model as it stands; does not learn it. topContributions limits the contributions
   * listed to the largest ones (their shares stay shares of the whole score). detector picks one of the model's
   * detectors (default: its first); a detector the model does not learn is an Error.
   */
  scoreOne(record: DataRecord, topContributions?: number, detector?: DetectorName): ScoreResult;
  /**
   * Learns a record (never its label). Learning a record object scored earlier, and not edited since, reuses the
   * score it was given for the threshold and calibration, also when other records were scored or learned in
   * between (as behind a scorer node). With skipAnomalies, a record flagged anomalous is not learned.
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
  /**
   * For a model still guessing its schema: the fields the guess takes as the label whatever their name (replacing
   * ModelOptions.labelFields). No effect once the schema is known.
   */
  setLabelFields(names: readonly string[]): void;
}

function resolveOptions(options: ModelOptions): ResolvedOptions {
  const detector = options.detector ?? 'auto';
  const extraDetectors = [...new Set(options.extraDetectors ?? [])].filter((name) => name !== detector);
  for (const name of [detector, ...extraDetectors])
    if (!DETECTOR_NAMES.includes(name))
      throw new Error(`unknown detector "${String(name)}" (expected one of ${DETECTOR_NAMES.join(', ')})`);
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
    extraDetectors,
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
  /** The extra detectors (options.extraDetectors, in order), each with the threshold that learns its scores. */
  private extras: ExtraDetector[] = [];
  private counts: number[] = [];
  private pending: DataRecord[] = [];
  private labelFields: string[];
  private guessed = false;
  private learned = 0;
  positions = new LearnedPositions();
  /** Scratch vectors, reused for every record. */
  private x = new Float64Array(0);
  private parts = new Float64Array(0);
  private attributeParts = new Float64Array(0);
  private attributeNames: string[] = [];
  private featureAttributeNames: string[] = [];
  private contributionOrder = new Int32Array(1);
  /** The dimension when every attribute with features has exactly one (no category attributes): -1 otherwise. */
  private oneFeatureAttributes = -1;
  /**
   * Records scored and not learned yet, in a ring, with their score, a fingerprint of their features and the
   * detector's memo: learning one of them reuses what scoring computed. In a flow, a scorer node runs ahead of the
   * learner node by up to the messages in flight, so the record learned is rarely the one scored last.
   */
  private scoredRecords: (DataRecord | null)[] = new Array<DataRecord | null>(SCORED_RING).fill(null);
  private scoredScores = new Float64Array(SCORED_RING);
  private scoredPrints = new Float64Array(SCORED_RING);
  private scoredMask = SCORED_RING - 1;
  /** Records learned with a remembered score since the ring was reset. */
  private scoredHits = 0;
  private scoredMemo = new Float64Array(0);
  private memoSize = 0;
  /** Scored records written (head) and the oldest still looked at (tail), counted from the start. */
  private scoredHead = 0;
  private scoredTail = 0;
  /** Bound once: a closure per learned record would be garbage. */
  private readonly onNewFeature = (feature: number): Float64Array => this.addFeature(feature);

  constructor(options: ModelOptions = {}) {
    this.options = resolveOptions(options);
    this.threshold = createThreshold(this.options.threshold, this.options.warmupRecords);
    this.extras = this.options.extraDetectors.map((name) => ({
      name,
      detector: null,
      threshold: createThreshold(this.options.threshold, this.options.warmupRecords),
    }));
    this.labelFields = labelFieldList(options.labelFields);
    if (options.attributes) this.setSchema(validateSchema(options.attributes));
  }

  private extraNamed(name: DetectorName): ExtraDetector {
    const extra = this.extras.find((e) => e.name === name);
    if (extra) return extra;
    throw new Error(`the model does not learn a "${String(name)}" detector (it learns ${this.detectors.join(', ')})`);
  }

  get schema(): AttributeSpec[] {
    return this.encoder ? this.encoder.attributes.map((a) => ({ ...a })) : [];
  }

  get schemaGuessed(): boolean {
    return this.guessed;
  }

  setLabelFields(names: readonly string[]): void {
    this.labelFields = labelFieldList(names);
  }

  get recordsLearned(): number {
    return this.learned;
  }

  get detectors(): DetectorName[] {
    return [this.options.detector, ...this.options.extraDetectors];
  }

  get resolvedOptions(): ResolvedOptions {
    return { ...this.options, extraDetectors: this.options.extraDetectors.slice() };
  }

  /** Names of the numeric features the detector sees (C and B attributes, one per value of T attributes). */
  get features(): string[] {
    return this.encoder ? this.encoder.featureNames.slice() : [];
  }

  scoreOne(record: DataRecord, topContributions = Infinity, detector?: DetectorName): ScoreResult {
    const extra = detector === undefined || detector === this.options.detector ? null : this.extraNamed(detector);
    const encoder = this.encoder;
    const warmingUp = this.learned < this.options.warmupRecords;
    const detectorName = extra === null ? this.options.detector : extra.name;
    const thresholdOf = extra === null ? this.threshold : extra.threshold;
    if (encoder === null) {
      return {
        score: 0,
        isAnomaly: false,
        threshold: thresholdOf.value,
        detector: detectorName,
        contributions: [],
        warmingUp: true,
      };
    }
    const bad = encoder.encode(record, this.x, false);
    const label = encoder.hasLabel && !Number.isNaN(encoder.label) ? encoder.label : undefined;
    const threshold = thresholdOf.value;
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
    let score: number;
    if (extra === null) {
      score = this.detector!.scoreOne(this.x, this.parts);
      this.rememberScored(record, score);
    } else {
      // Learning remembers the default detector's score only: an extra one is scored again when learned.
      score = extra.detector!.scoreOne(this.x, this.parts);
    }
    // One object literal per shape (with or without a label): no properties added later.
    const isAnomaly = !warmingUp && score > threshold;
    const contributions = this.contributions(topContributions);
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
    // The score it was given when scored (the model may have learned other records since), else a fresh one.
    const slot = this.findScored(record);
    const score = slot >= 0 ? this.scoredScores[slot] : this.detector!.scoreOne(this.x);
    const warm = this.learned >= this.options.warmupRecords;
    if (this.options.skipAnomalies && warm && score > this.threshold.value) {
      return { learned: false, reason: 'flagged as an anomaly' };
    }
    this.threshold.observe(score);
    // Extra detectors score before the shared statistics move, as the default one did.
    const extras = this.extras;
    for (let e = 0; e < extras.length; e++) extras[e].threshold.observe(extras[e].detector!.scoreOne(this.x));
    this.stats!.learn(this.x);
    if (slot >= 0 && this.memoSize > 0) this.detector!.learnScored(this.x, this.scoredMemo, slot * this.memoSize);
    else this.detector!.learnOne(this.x);
    for (let e = 0; e < extras.length; e++) extras[e].detector!.learnOne(this.x);
    this.learned++;
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
    for (const d of [this.detector!, ...this.extras.map((e) => e.detector!)])
      if (!d.canForget) return { learned: false, reason: `the ${d.kind} detector cannot forget a record` };
    this.stats!.forget(this.x);
    this.detector!.forgetOne(this.x);
    for (const e of this.extras) e.detector!.forgetOne(this.x);
    this.learned--;
    return LEARNED;
  }

  merge(other: Model): void {
    if (!(other instanceof StreamModel)) throw new Error('can only merge models made by createModel');
    if (other === this) throw new Error('cannot merge a model with itself');
    if (other.detectors.join() !== this.detectors.join()) throw new Error('cannot merge models of different detectors');
    if (this.encoder === null || other.encoder === null) {
      // A model still guessing its schema: learn the other's pending records instead.
      if (other.encoder === null) {
        for (const r of other.pending) this.learnOne(r);
        this.positions.merge(other.positions);
        return;
      }
      const mine = this.pending;
      const labels = this.labelFields;
      const positions = this.positions;
      this.restoreFrom(other.toJSON());
      if (this.encoder === null) this.labelFields = labelFieldList([...labels, ...this.labelFields]);
      for (const r of mine) this.learnOne(r);
      this.positions.merge(positions);
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
      for (const e of source.extras) e.detector!.permuteFeatures(order);
    }
    this.stats!.merge(source.stats!);
    this.detector!.merge(source.detector!);
    this.threshold.merge(other.threshold);
    this.extras.forEach((e, i) => {
      e.detector!.merge(source.extras[i].detector!);
      e.threshold.merge(other.extras[i].threshold);
    });
    for (let a = 0; a < this.counts.length; a++) this.counts[a] += other.counts[a];
    this.learned += other.learned;
    this.positions.merge(other.positions);
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
      options: this.resolvedOptions,
      schema: this.encoder ? this.schema : null,
      categories: this.encoder ? this.encoder.categoryValues() : {},
      invalidCounts: this.counts.slice(),
      pending: JSON.parse(JSON.stringify(this.pending)),
      schemaGuessed: this.guessed,
      labelFields: this.labelFields.slice(),
      statistics: this.stats ? this.stats.toJSON() : null,
      detector: this.detector ? this.detector.toJSON() : null,
      threshold: this.threshold.toJSON(),
      extraDetectors: this.extras.map((e) => ({
        detector: e.detector ? e.detector.toJSON() : null,
        threshold: e.threshold.toJSON(),
      })),
      recordsLearned: this.learned,
      ...(this.positions.size > 0 ? { positions: this.positions.toJSON() } : {}),
    };
  }

  /** Replaces this model's state with a snapshot's (used by modelFromJSON). */
  restoreFrom(s: ModelSnapshot): void {
    const resolved = resolveOptions({ ...s.options, halfLife: s.options.halfLife ?? undefined });
    Object.assign(this.options, resolved);
    this.threshold = thresholdFromJSON(s.threshold);
    const savedExtras = s.extraDetectors ?? [];
    if (!Array.isArray(savedExtras) || savedExtras.length !== resolved.extraDetectors.length)
      throw new Error('damaged snapshot: extraDetectors do not match the options');
    this.extras = resolved.extraDetectors.map((name, i) => ({
      name,
      detector: null,
      threshold: thresholdFromJSON(savedExtras[i].threshold),
    }));
    this.pending = Array.isArray(s.pending) ? s.pending.slice() : [];
    this.guessed = s.schemaGuessed === true;
    this.labelFields = labelFieldList(Array.isArray(s.labelFields) ? s.labelFields : []);
    this.learned = s.recordsLearned;
    this.positions = s.positions === undefined ? new LearnedPositions() : LearnedPositions.fromJSON(s.positions);
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
      for (let i = 0; i < this.extras.length; i++) {
        const restored = detectorFromJSON(savedExtras[i].detector, this.stats);
        if (restored.kind !== this.extras[i].name) throw new Error('damaged snapshot: extraDetectors out of order');
        this.extras[i].detector = restored;
      }
      const d = this.encoder.dimension;
      if (
        this.stats.dimension !== d ||
        this.detector.dimension !== d ||
        this.extras.some((e) => e.detector!.dimension !== d)
      )
        throw new Error('damaged snapshot: feature count does not match the schema');
      this.x = new Float64Array(Math.max(d, 1));
      this.parts = new Float64Array(Math.max(d, 1));
      this.layoutContributions();
    }
    this.resetScored();
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

  private contributions(top: number): Contribution[] {
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
    // Keep the indices of the top shares in order on a typed scratch array, then allocate the entries once.
    const order = this.contributionOrder;
    const keep = top < n ? top : n;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!(v > 0)) continue;
      let k: number;
      if (count < keep) k = count++;
      else if (keep > 0 && v > values[order[keep - 1]]) k = keep - 1;
      else continue;
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
    const factory = { halfLife: this.options.halfLife ?? undefined, seed: this.options.seed, statistics: this.stats };
    this.detector = createDetector(this.options.detector, d, factory);
    for (const e of this.extras) e.detector = createDetector(e.name, d, factory);
    this.x = new Float64Array(Math.max(d, 1));
    this.parts = new Float64Array(Math.max(d, 1));
    this.layoutContributions();
    this.resetScored();
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

  /** Forgets the scored records (their fingerprints and memos no longer fit the features or the detector). */
  private resetScored(): void {
    this.scoredRecords.fill(null);
    this.scoredHead = 0;
    this.scoredTail = 0;
    this.scoredHits = 0;
    this.memoSize = this.detector ? this.detector.memoSize : 0;
    const size = this.scoredMask + 1;
    if (this.scoredMemo.length !== size * this.memoSize) this.scoredMemo = new Float64Array(size * this.memoSize);
  }

  /** A number that changes when any feature of x does (a record object edited between scoring and learning). */
  private fingerprint(): number {
    const x = this.x;
    const d = this.encoder!.dimension;
    let h = 0;
    for (let j = 0; j < d; j++) h = h * 1.000000119 + x[j];
    return h;
  }

  private rememberScored(record: DataRecord, score: number): void {
    // Full, while records scored earlier are being learned: a flow has more in flight than the ring holds (batches
    // scored well ahead of their learning), so it grows rather than drop what the learner will ask for.
    if (
      this.scoredHead - this.scoredTail > this.scoredMask &&
      this.scoredHits > 0 &&
      this.scoredMask < SCORED_RING_MAX - 1
    )
      this.growScored();
    const slot = this.scoredHead & this.scoredMask;
    this.scoredRecords[slot] = record;
    this.scoredScores[slot] = score;
    this.scoredPrints[slot] = this.fingerprint();
    if (this.memoSize > 0) this.detector!.writeMemo(this.scoredMemo, slot * this.memoSize);
    this.scoredHead++;
    if (this.scoredHead - this.scoredTail > this.scoredMask) this.scoredTail = this.scoredHead - this.scoredMask - 1;
  }

  private growScored(): void {
    const mask = this.scoredMask * 2 + 1;
    const m = this.memoSize;
    const records = new Array<DataRecord | null>(mask + 1).fill(null);
    const scores = new Float64Array(mask + 1);
    const prints = new Float64Array(mask + 1);
    const memo = new Float64Array((mask + 1) * m);
    for (let i = this.scoredTail; i < this.scoredHead; i++) {
      const from = i & this.scoredMask;
      const to = i & mask;
      records[to] = this.scoredRecords[from];
      scores[to] = this.scoredScores[from];
      prints[to] = this.scoredPrints[from];
      for (let k = 0; k < m; k++) memo[to * m + k] = this.scoredMemo[from * m + k];
    }
    this.scoredRecords = records;
    this.scoredScores = scores;
    this.scoredPrints = prints;
    this.scoredMemo = memo;
    this.scoredMask = mask;
  }

  /** The ring slot of record (scored, with the same features as now), or -1; it and older ones are dropped. */
  private findScored(record: DataRecord): number {
    const head = this.scoredHead;
    if (head === this.scoredTail) return -1;
    const records = this.scoredRecords;
    // Score, then learn: the newest. A flow: the oldest, as records are learned in the order they were scored.
    let at = -1;
    const mask = this.scoredMask;
    if (records[(head - 1) & mask] === record) at = head - 1;
    else {
      const end = Math.min(head, this.scoredTail + SCORED_LOOKAHEAD);
      for (let i = this.scoredTail; i < end; i++) {
        if (records[i & mask] === record) {
          at = i;
          break;
        }
      }
      if (at < 0) return -1;
    }
    const slot = at & mask;
    const same = this.scoredPrints[slot] === this.fingerprint();
    if (at === head - 1) {
      records[slot] = null;
      this.scoredHead = at;
    } else {
      // Records scored before it and not learned by now are not expected any more.
      for (let i = this.scoredTail; i <= at; i++) records[i & mask] = null;
      this.scoredTail = at + 1;
    }
    if (!same) return -1;
    this.scoredHits++;
    return slot;
  }

  private guessNow(): void {
    const records = this.pending;
    this.pending = [];
    this.setSchema(guessSchema(records, this.labelFields));
    this.guessed = true;
    for (const r of records) this.learnOne(r);
  }

  /** Grows statistics and detector by one feature; returns the (possibly new) scratch vector. */
  private addFeature(_feature: number): Float64Array {
    this.stats!.addFeature(false);
    this.detector!.addFeature();
    for (const e of this.extras) e.detector!.addFeature();
    const d = this.encoder!.dimension;
    if (this.x.length < d) {
      const x = new Float64Array(d * 2);
      x.set(this.x);
      this.x = x;
      this.parts = new Float64Array(d * 2);
    }
    this.layoutContributions();
    this.resetScored();
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

/** Distinct non-empty field names, in the order given. */
function labelFieldList(names: readonly unknown[] | undefined): string[] {
  if (names === undefined) return [];
  if (!Array.isArray(names)) throw new Error('labelFields must be an array of field names');
  return [...new Set(names.filter((n): n is string => typeof n === 'string' && n !== ''))];
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
  if (!READABLE_VERSIONS.includes(s.version))
    throw new Error(
      `unsupported model snapshot version ${String(s.version)} (this engine reads versions ${READABLE_VERSIONS.join(' and ')})`,
    );
  if (!s.options || typeof s.options !== 'object') throw new Error('damaged model snapshot: options');
  const model = new StreamModel({});
  try {
    model.restoreFrom(s);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new Error(`damaged model snapshot: ${message.replace(/^damaged snapshot: /, '')}`);
  }
  return model;
}
