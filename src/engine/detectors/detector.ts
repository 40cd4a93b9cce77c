// What every detector offers. A detector works on numeric feature vectors (the schema turns records into them).
//
// rawScore is the detector's own measure (higher = more anomalous, any scale). score maps it to 0..1 with a fixed
// monotone squash that never reaches 1, so the order of the raw scores (what ROC-AUC and average precision see)
// survives. The model calibrates further on the distribution of past scores.

export interface DetectorSnapshot {
  kind: string;
  [key: string]: unknown;
}

export abstract class Detector {
  abstract readonly kind: string;
  abstract readonly dimension: number;

  /** Raw anomaly score of x. When parts is given, writes each feature's non-negative share of it there. */
  abstract rawScore(x: ArrayLike<number>, parts?: Float64Array): number;
  /** Learns x (never called with invalid values). */
  abstract learnOne(x: ArrayLike<number>): void;
  /** Grows by one feature that was 0 in every record learned so far. */
  abstract addFeature(): void;
  abstract toJSON(): DetectorSnapshot;
  /** Records learned. */
  abstract readonly recordsLearned: number;

  /** Maps a raw score into 0..1 (monotone). */
  squash(raw: number): number {
    return raw > 0 ? raw / (raw + 1) : 0;
  }

  scoreOne(x: ArrayLike<number>, parts?: Float64Array): number {
    return this.squash(this.rawScore(x, parts));
  }

  scoreMany(xs: ArrayLike<number>[]): number[] {
    return xs.map((x) => this.scoreOne(x));
  }

  learnMany(xs: ArrayLike<number>[]): void {
    for (const x of xs) this.learnOne(x);
  }

  /** Adds what other learned; throws when the maths does not allow it. */
  merge(other: Detector): void {
    throw new Error(`${this.kind} detectors cannot be merged (with ${other.kind})`);
  }

  /** Reorders the features (feature i becomes the old feature order[i]); throws when the detector cannot. */
  permuteFeatures(_order: number[]): void {
    throw new Error(`${this.kind} detectors cannot reorder their features`);
  }

  /** Removes a record learned earlier; throws when the detector cannot. */
  forgetOne(_x: ArrayLike<number>): void {
    throw new Error(`${this.kind} detectors cannot forget a record`);
  }

  get canForget(): boolean {
    return false;
  }
}

export function requireKind(snapshot: unknown, kind: string): Record<string, unknown> {
  if (!snapshot || typeof snapshot !== 'object') throw new Error(`damaged ${kind} detector snapshot: not an object`);
  const s = snapshot as Record<string, unknown>;
  if (s.kind !== kind) throw new Error(`damaged ${kind} detector snapshot: kind is ${String(s.kind)}`);
  return s;
}

export function finiteNumber(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`damaged snapshot: ${what} is not a number`);
  return v;
}

export function numberArray(v: unknown, what: string, length?: number): number[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
    throw new Error(`damaged snapshot: ${what} is not an array of numbers`);
  if (length !== undefined && v.length !== length) throw new Error(`damaged snapshot: ${what} has the wrong length`);
  return v as number[];
}
