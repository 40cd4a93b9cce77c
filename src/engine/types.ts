// Public types of the streaming-ML engine. Plain data only: everything here survives JSON.

/** SymetryML's attribute codes: C continuous, B binary 0/1, T category (one-hot), S string, X ignored. */
export type AttributeType = 'C' | 'B' | 'T' | 'S' | 'X';

export interface AttributeSpec {
  name: string;
  type: AttributeType;
  /** A label is read to evaluate (ScoreResult.label) and never learned. */
  role?: 'label';
  /** For S attributes only: treat the string as a category (like T). */
  asCategory?: boolean;
}

/** What to do with a record holding a value that does not fit its attribute's type. */
export type InvalidValuePolicy = 'skip' | 'impute' | 'error';

export type DetectorName = 'auto' | 'gaussian' | 'histogram' | 'hst' | 'ecod';

export type ThresholdSpec =
  { kind: 'fixed'; value: number } | { kind: 'quantile'; q: number } | { kind: 'spot'; risk: number };

export interface ModelOptions {
  /** Absent: guessed from the first records and exposed as model.schema. */
  attributes?: AttributeSpec[];
  /**
   * Fields a guessed schema takes as the label whatever their name (a field a scorer reads as its label, say); no
   * effect on attributes given or a schema already guessed.
   */
  labelFields?: string[];
  /** Default 'auto' (the ensemble). Scores come from it unless a scorer asks for one of extraDetectors. */
  detector?: DetectorName;
  /**
   * Further detectors the model learns beside detector, each with its own threshold, so that a scorer can ask for
   * one of them by name (scoreOne's third argument). Each costs its learning time on every record.
   */
  extraDetectors?: DetectorName[];
  /** Default: SPOT with risk 1e-3. */
  threshold?: ThresholdSpec;
  /** Records learned before isAnomaly may be true. Default 256. */
  warmupRecords?: number;
  /** Exponential forgetting, in records; absent = no forgetting. */
  halfLife?: number;
  /** Default 'skip'. */
  invalidValues?: InvalidValuePolicy;
  /** Do not learn records flagged anomalous. */
  skipAnomalies?: boolean;
  /** Seed of the randomised detectors (HST): same seed, same scores. */
  seed?: number;
}

/** A record: an object read by attribute name, or an array read by attribute position. */
export type DataRecord = Record<string, unknown> | unknown[];

export interface Contribution {
  attribute: string;
  /** Share of the score; shares sum to about 1 and are sorted in decreasing order. */
  share: number;
}

export interface ScoreResult {
  /** 0..1, higher is more anomalous. */
  score: number;
  isAnomaly: boolean;
  threshold: number;
  detector: string;
  contributions: Contribution[];
  /** True while fewer than warmupRecords records have been learned: isAnomaly is then false. */
  warmingUp: boolean;
  /** Value of the label attribute, when the schema has one and the record carries a number. */
  label?: number;
  /** Why the record could not be scored (score is then 0). */
  invalid?: string;
}

export interface LearnResult {
  learned: boolean;
  reason?: string;
}

/** Univariate statistics of one numeric feature (a C or B attribute, or one value of a T attribute). */
export interface FeatureStatistics {
  name: string;
  /** Weight of the values learned (the number of records without forgetting). */
  count: number;
  /** Values found invalid for this feature's attribute while learning. */
  missing: number;
  mean: number;
  variance: number;
  std: number;
  skewness: number;
  kurtosis: number;
  min: number;
  max: number;
  quantiles: { q: number; value: number }[];
}

export interface PairStatistics {
  a: string;
  b: string;
  covariance: number;
  correlation: number;
}

export interface StatisticsReport {
  records: number;
  features: FeatureStatistics[];
  pairs: PairStatistics[];
}
