// ECOD-style detector (Li et al., 2022) on streaming quantile sketches.
//
// For each feature, the left tail probability P(X <= x) and the right one P(X >= x) come from the feature's
// sketch. The score is the largest of three sums of -log tail probabilities: all left tails, all right tails, and
// per feature the tail its skewness points to. Rank-based, so no scaling of the data is needed.
import { QuantileSketch, type QuantileSketchSnapshot } from '../sketch';
import { Detector, finiteNumber, numberArray, requireKind, type DetectorSnapshot } from './detector';

export interface EcodOptions {
  /** Exponential forgetting, in records. */
  halfLife?: number;
}

export class EcodDetector extends Detector {
  readonly kind = 'ecod';
  dimension: number;
  private sketches: QuantileSketch[];
  /** Running mean and central moments for the skewness of each feature. */
  private mean: Float64Array;
  private m2: Float64Array;
  private m3: Float64Array;
  private weight = 0;
  private records = 0;
  private unit = 1;
  private readonly alpha: number;
  private readonly halfLife: number | null;
  private left: Float64Array;
  private right: Float64Array;

  constructor(dimension: number, options: EcodOptions = {}) {
    super();
    this.dimension = dimension;
    this.halfLife = options.halfLife && options.halfLife > 0 ? options.halfLife : null;
    this.alpha = this.halfLife === null ? 1 : Math.pow(2, -1 / this.halfLife);
    this.sketches = Array.from({ length: dimension }, () => new QuantileSketch());
    this.mean = new Float64Array(dimension);
    this.m2 = new Float64Array(dimension);
    this.m3 = new Float64Array(dimension);
    this.left = new Float64Array(dimension);
    this.right = new Float64Array(dimension);
  }

  get recordsLearned(): number {
    return this.records;
  }

  override squash(raw: number): number {
    // Under independence each -log tail probability is about Exp(1): raw / dimension is about 1 for normal data.
    const r = raw / Math.max(this.dimension, 1);
    return r > 0 ? r / (r + 1) : 0;
  }

  rawScore(x: ArrayLike<number>, parts?: Float64Array): number {
    const d = this.dimension;
    const u = this.unit;
    let sumLeft = 0;
    let sumRight = 0;
    let sumSkew = 0;
    const left = this.left;
    const right = this.right;
    for (let j = 0; j < d; j++) {
      const sketch = this.sketches[j];
      const total = sketch.totalWeight + u;
      // The record itself counts once on each side, as in ECOD's empirical CDF, which also keeps the logs finite.
      const l = -Math.log((sketch.weightAtMost(x[j]) + u) / total);
      const r = -Math.log((sketch.weightAtLeast(x[j]) + u) / total);
      left[j] = l;
      right[j] = r;
      sumLeft += l;
      sumRight += r;
      sumSkew += this.m3[j] < 0 ? l : r;
    }
    let score = sumSkew;
    let which = 2;
    if (sumLeft > score) {
      score = sumLeft;
      which = 0;
    }
    if (sumRight > score) {
      score = sumRight;
      which = 1;
    }
    if (parts) {
      for (let j = 0; j < d; j++)
        parts[j] = which === 0 ? left[j] : which === 1 ? right[j] : this.m3[j] < 0 ? left[j] : right[j];
    }
    return score;
  }

  learnOne(x: ArrayLike<number>): void {
    const d = this.dimension;
    const a = this.alpha;
    if (a !== 1) {
      this.weight *= a;
      for (let j = 0; j < d; j++) {
        this.m2[j] *= a;
        this.m3[j] *= a;
      }
      this.unit /= a;
      if (this.unit > 1e100) {
        for (const s of this.sketches) s.scale(1 / this.unit);
        this.unit = 1;
      }
    }
    const na = this.weight;
    const n = na + 1;
    this.weight = n;
    this.records++;
    for (let j = 0; j < d; j++) {
      const v = x[j];
      const dx = v - this.mean[j];
      const dn = dx / n;
      const term = dx * dn * na;
      this.m3[j] += term * dn * (n - 2) - 3 * dn * this.m2[j];
      this.m2[j] += term;
      this.mean[j] += dn;
      this.sketches[j].add(v, this.unit);
    }
  }

  addFeature(): void {
    const d = this.dimension;
    const sketch = new QuantileSketch();
    if (this.weight > 0) sketch.add(0, d > 0 ? this.sketches[0].totalWeight : this.weight);
    this.sketches.push(sketch);
    const grow = (a: Float64Array) => {
      const b = new Float64Array(d + 1);
      b.set(a);
      return b;
    };
    this.mean = grow(this.mean);
    this.m2 = grow(this.m2);
    this.m3 = grow(this.m3);
    this.left = new Float64Array(d + 1);
    this.right = new Float64Array(d + 1);
    this.dimension = d + 1;
  }

  override merge(other: Detector): void {
    if (!(other instanceof EcodDetector) || other.dimension !== this.dimension) super.merge(other);
    const o = other as EcodDetector;
    const na = this.weight;
    const nb = o.weight;
    const n = na + nb;
    if (nb === 0) return;
    for (let j = 0; j < this.dimension; j++) {
      const dx = o.mean[j] - this.mean[j];
      this.m3[j] +=
        o.m3[j] + (dx * dx * dx * na * nb * (na - nb)) / (n * n) + (3 * dx * (na * o.m2[j] - nb * this.m2[j])) / n;
      this.m2[j] += o.m2[j] + (dx * dx * na * nb) / n;
      this.mean[j] += (dx * nb) / n;
      this.sketches[j].merge(o.sketches[j], this.unit / o.unit);
    }
    this.weight = n;
    this.records += o.records;
  }

  toJSON(): DetectorSnapshot {
    return {
      kind: this.kind,
      dimension: this.dimension,
      halfLife: this.halfLife,
      weight: this.weight,
      records: this.records,
      unit: this.unit,
      mean: Array.from(this.mean),
      m2: Array.from(this.m2),
      m3: Array.from(this.m3),
      sketches: this.sketches.map((s) => s.toJSON()),
    };
  }

  static fromJSON(snapshot: unknown): EcodDetector {
    const s = requireKind(snapshot, 'ecod');
    const d = finiteNumber(s.dimension, 'dimension');
    const detector = new EcodDetector(d, { halfLife: (s.halfLife as number | null) ?? undefined });
    detector.weight = finiteNumber(s.weight, 'weight');
    detector.records = finiteNumber(s.records, 'records');
    detector.unit = finiteNumber(s.unit, 'unit');
    detector.mean.set(numberArray(s.mean, 'mean', d));
    detector.m2.set(numberArray(s.m2, 'm2', d));
    detector.m3.set(numberArray(s.m3, 'm3', d));
    if (!Array.isArray(s.sketches) || s.sketches.length !== d) throw new Error('damaged snapshot: ecod sketches');
    detector.sketches = (s.sketches as QuantileSketchSnapshot[]).map((x) => QuantileSketch.fromJSON(x));
    return detector;
  }
}
