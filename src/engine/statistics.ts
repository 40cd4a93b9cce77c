// Running univariate and pairwise statistics of numeric feature vectors.
//
// Central moments are updated with the pairwise-combination formulas of Chan et al. and Pébay (a single record is
// a sample of weight 1), never from raw power sums, so they stay accurate on data far from zero. The same formulas
// solved the other way remove a record (forget), and applied to two summaries merge them. Exponential forgetting
// multiplies every weight by alpha = 2^(-1/halfLife) before each record, which leaves the mean alone and scales
// the central moment sums.
import { QuantileSketch, type QuantileSketchSnapshot } from './sketch';
import type { FeatureStatistics, PairStatistics, StatisticsReport } from './types';

export const STATISTICS_QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

export interface RunningStatisticsOptions {
  /** Exponential forgetting, in records. */
  halfLife?: number;
  /** Keep a quantile sketch per feature (default true), or say per feature. */
  quantiles?: boolean | boolean[];
}

export interface RunningStatisticsSnapshot {
  dimension: number;
  halfLife: number | null;
  weight: number;
  records: number;
  mean: number[];
  m2: number[];
  m3: number[];
  m4: number[];
  min: number[];
  max: number[];
  comoment: number[];
  sketchUnit: number;
  sketches: (QuantileSketchSnapshot | null)[];
}

/** Position of pair (i, j), i < j, in the packed comoment array; adding a feature only appends. */
export function pairIndex(i: number, j: number): number {
  return i < j ? (j * (j - 1)) / 2 + i : (i * (i - 1)) / 2 + j;
}

export class RunningStatistics {
  dimension: number;
  /** Total weight (the number of records without forgetting). */
  weight = 0;
  /** Records learned minus records forgotten. */
  records = 0;
  mean: Float64Array;
  m2: Float64Array;
  m3: Float64Array;
  m4: Float64Array;
  min: Float64Array;
  max: Float64Array;
  comoment: Float64Array;
  sketches: (QuantileSketch | null)[];
  readonly halfLife: number | null;
  private readonly alpha: number;
  /** Weight of the next record in the sketches: grows by 1/alpha per record instead of decaying every bucket. */
  private sketchUnit = 1;
  /** Weight of one record in the sketches' units (see sketchUnit). */
  get unit(): number {
    return this.sketchUnit;
  }
  private delta: Float64Array;
  private keepQuantiles: boolean;

  constructor(dimension: number, options: RunningStatisticsOptions = {}) {
    this.dimension = dimension;
    this.halfLife = options.halfLife !== undefined && options.halfLife > 0 ? options.halfLife : null;
    this.alpha = this.halfLife === null ? 1 : Math.pow(2, -1 / this.halfLife);
    const quantiles = options.quantiles ?? true;
    this.keepQuantiles = Array.isArray(quantiles) ? quantiles.some((q) => q) : quantiles;
    this.mean = new Float64Array(dimension);
    this.m2 = new Float64Array(dimension);
    this.m3 = new Float64Array(dimension);
    this.m4 = new Float64Array(dimension);
    this.min = new Float64Array(dimension).fill(Infinity);
    this.max = new Float64Array(dimension).fill(-Infinity);
    this.comoment = new Float64Array((dimension * (dimension - 1)) / 2);
    this.delta = new Float64Array(Math.max(dimension, 1));
    this.sketches = [];
    for (let j = 0; j < dimension; j++) {
      const keep = Array.isArray(quantiles) ? quantiles[j] === true : quantiles;
      this.sketches.push(keep ? new QuantileSketch() : null);
    }
  }

  /** Appends a feature that was 0 in every record learned so far (a new value of a category). */
  addFeature(quantiles = false): number {
    const d = this.dimension;
    const grow = (a: Float64Array, fill: number, size: number): Float64Array => {
      const b = new Float64Array(size).fill(fill);
      b.set(a);
      return b;
    };
    this.mean = grow(this.mean, 0, d + 1);
    this.m2 = grow(this.m2, 0, d + 1);
    this.m3 = grow(this.m3, 0, d + 1);
    this.m4 = grow(this.m4, 0, d + 1);
    this.min = grow(this.min, this.weight > 0 ? 0 : Infinity, d + 1);
    this.max = grow(this.max, this.weight > 0 ? 0 : -Infinity, d + 1);
    this.comoment = grow(this.comoment, 0, ((d + 1) * d) / 2);
    this.delta = new Float64Array(d + 1);
    let sketch: QuantileSketch | null = null;
    if (quantiles) {
      this.keepQuantiles = true;
      sketch = new QuantileSketch();
      const zeros = this.sketches.find((s) => s !== null);
      if (this.weight > 0) sketch.add(0, zeros ? zeros.totalWeight : this.weight);
    }
    this.sketches.push(sketch);
    this.dimension = d + 1;
    return d;
  }

  learn(x: ArrayLike<number>): void {
    const d = this.dimension;
    const a = this.alpha;
    if (a !== 1) this.applyDecay(a);
    const na = this.weight;
    const n = na + 1;
    this.weight = n;
    this.records++;
    const mean = this.mean;
    const m2 = this.m2;
    const m3 = this.m3;
    const m4 = this.m4;
    const delta = this.delta;
    const min = this.min;
    const max = this.max;
    const nn = n * n - 3 * n + 3;
    const inverse = 1 / n;
    for (let j = 0; j < d; j++) {
      const v = x[j];
      const dx = v - mean[j];
      const dn = dx * inverse;
      const dn2 = dn * dn;
      const term = dx * dn * na;
      const m2j = m2[j];
      m4[j] += term * dn2 * nn + 6 * dn2 * m2j - 4 * dn * m3[j];
      m3[j] += term * dn * (n - 2) - 3 * dn * m2j;
      m2[j] = m2j + term;
      mean[j] += dn;
      delta[j] = dx;
      if (v < min[j]) min[j] = v;
      if (v > max[j]) max[j] = v;
    }
    const c = this.comoment;
    const f = na * inverse;
    // Columns j and j + 1 together (column j holds pairs (0..j-1, j)): half as many short inner loops, and every
    // entry still gets its one update.
    let k = 0;
    let j = 1;
    for (; j + 1 < d; j += 2) {
      const dj = delta[j] * f;
      const dNext = delta[j + 1] * f;
      const next = k + j;
      for (let i = 0; i < j; i++) {
        const di = delta[i];
        c[k + i] += di * dj;
        c[next + i] += di * dNext;
      }
      c[next + j] += delta[j] * dNext;
      k = next + j + 1;
    }
    if (j < d) {
      const dj = delta[j] * f;
      for (let i = 0; i < j; i++) c[k + i] += delta[i] * dj;
    }
    if (this.keepQuantiles) {
      const unit = this.sketchUnit;
      const sketches = this.sketches;
      for (let j = 0; j < d; j++) sketches[j]?.add(x[j], unit);
    }
  }

  /** Reorders the features: feature i becomes the old feature order[i] (to merge models that met categories in
   * another order). */
  permute(order: number[]): void {
    const d = this.dimension;
    if (order.length !== d) throw new Error('permute: order has the wrong length');
    const pick = (a: Float64Array) => Float64Array.from(order, (o) => a[o]);
    this.mean = pick(this.mean);
    this.m2 = pick(this.m2);
    this.m3 = pick(this.m3);
    this.m4 = pick(this.m4);
    this.min = pick(this.min);
    this.max = pick(this.max);
    const c = new Float64Array(this.comoment.length);
    for (let j = 1; j < d; j++)
      for (let i = 0; i < j; i++) c[pairIndex(i, j)] = this.comoment[pairIndex(order[i], order[j])];
    this.comoment = c;
    this.sketches = order.map((o) => this.sketches[o]);
  }

  /** Removes a record learned earlier: the exact inverse of learn(x) (up to rounding). */
  forget(x: ArrayLike<number>): void {
    const d = this.dimension;
    const n = this.weight;
    if (n <= 0) return;
    const na = n - 1;
    this.records--;
    if (this.keepQuantiles) {
      const unit = this.sketchUnit;
      for (let j = 0; j < d; j++) this.sketches[j]?.remove(x[j], unit);
    }
    if (na <= 1e-12) {
      this.weight = 0;
      this.mean.fill(0);
      this.m2.fill(0);
      this.m3.fill(0);
      this.m4.fill(0);
      this.comoment.fill(0);
    } else {
      const delta = this.delta;
      const nn = na * na - na + 1;
      for (let j = 0; j < d; j++) {
        const meanA = this.mean[j] - (x[j] - this.mean[j]) / na;
        const dx = x[j] - meanA;
        const dn = dx / n;
        const m2a = this.m2[j] - dx * dn * na;
        const m3a = this.m3[j] - dx * dx * dn * na * (na - 1) * (1 / n) + 3 * dn * m2a;
        const m4a = this.m4[j] - dx * dx * dx * dn * na * nn * (1 / (n * n)) - 6 * dn * dn * m2a + 4 * dn * m3a;
        this.mean[j] = meanA;
        this.m2[j] = m2a;
        this.m3[j] = m3a;
        this.m4[j] = m4a;
        delta[j] = dx;
      }
      const f = na / n;
      let k = 0;
      for (let j = 1; j < d; j++) {
        const dj = delta[j] * f;
        for (let i = 0; i < j; i++) this.comoment[k++] -= delta[i] * dj;
      }
      this.weight = na;
    }
    if (this.alpha !== 1) this.undoDecay(this.alpha);
  }

  /** Adds other's statistics: the result equals one summary of both streams. */
  merge(other: RunningStatistics): void {
    if (other.dimension !== this.dimension) throw new Error('cannot merge statistics of different dimensions');
    const na = this.weight;
    const nb = other.weight;
    const n = na + nb;
    if (nb === 0) return;
    const d = this.dimension;
    const delta = this.delta;
    for (let j = 0; j < d; j++) {
      const dx = other.mean[j] - this.mean[j];
      delta[j] = dx;
      if (na === 0) {
        this.mean[j] = other.mean[j];
        this.m2[j] = other.m2[j];
        this.m3[j] = other.m3[j];
        this.m4[j] = other.m4[j];
      } else {
        const m2a = this.m2[j];
        const m2b = other.m2[j];
        const m3a = this.m3[j];
        const m3b = other.m3[j];
        const dx2 = dx * dx;
        this.m4[j] +=
          other.m4[j] +
          (dx2 * dx2 * na * nb * (na * na - na * nb + nb * nb)) / (n * n * n) +
          (6 * dx2 * (na * na * m2b + nb * nb * m2a)) / (n * n) +
          (4 * dx * (na * m3b - nb * m3a)) / n;
        this.m3[j] += m3b + (dx2 * dx * na * nb * (na - nb)) / (n * n) + (3 * dx * (na * m2b - nb * m2a)) / n;
        this.m2[j] += m2b + (dx2 * na * nb) / n;
        this.mean[j] += (dx * nb) / n;
      }
      if (other.min[j] < this.min[j]) this.min[j] = other.min[j];
      if (other.max[j] > this.max[j]) this.max[j] = other.max[j];
    }
    const f = (na * nb) / n;
    let k = 0;
    for (let j = 1; j < d; j++) {
      for (let i = 0; i < j; i++) {
        this.comoment[k] += other.comoment[k] + delta[i] * delta[j] * f;
        k++;
      }
    }
    for (let j = 0; j < d; j++) {
      const mine = this.sketches[j];
      const theirs = other.sketches[j];
      if (mine && theirs) mine.merge(theirs, this.sketchUnit / other.sketchUnit);
    }
    this.weight = n;
    this.records += other.records;
  }

  variance(j: number): number {
    return this.weight > 0 ? this.m2[j] / this.weight : NaN;
  }

  std(j: number): number {
    return Math.sqrt(this.variance(j));
  }

  skewness(j: number): number {
    const m2 = this.m2[j];
    return m2 > 0 ? (Math.sqrt(this.weight) * this.m3[j]) / Math.pow(m2, 1.5) : 0;
  }

  /** Excess kurtosis (0 for a normal distribution). */
  kurtosis(j: number): number {
    const m2 = this.m2[j];
    return m2 > 0 ? (this.weight * this.m4[j]) / (m2 * m2) - 3 : 0;
  }

  covariance(i: number, j: number): number {
    if (i === j) return this.variance(i);
    return this.weight > 0 ? this.comoment[pairIndex(i, j)] / this.weight : NaN;
  }

  correlation(i: number, j: number): number {
    if (i === j) return 1;
    const denominator = Math.sqrt(this.m2[i] * this.m2[j]);
    return denominator > 0 ? this.comoment[pairIndex(i, j)] / denominator : 0;
  }

  quantile(j: number, q: number): number {
    const sketch = this.sketches[j];
    return sketch ? sketch.quantile(q) : NaN;
  }

  /** Plain report; names label the features, missing gives per-feature invalid counts. */
  report(names: string[], missing: number[] = []): StatisticsReport {
    const features: FeatureStatistics[] = [];
    for (let j = 0; j < this.dimension; j++) {
      const empty = this.weight === 0;
      features.push({
        name: names[j] ?? String(j),
        count: this.weight,
        missing: missing[j] ?? 0,
        mean: empty ? NaN : this.mean[j],
        variance: this.variance(j),
        std: this.std(j),
        skewness: this.skewness(j),
        kurtosis: this.kurtosis(j),
        min: this.min[j],
        max: this.max[j],
        quantiles: this.sketches[j] ? STATISTICS_QUANTILES.map((q) => ({ q, value: this.quantile(j, q) })) : [],
      });
    }
    const pairs: PairStatistics[] = [];
    for (let j = 1; j < this.dimension; j++) {
      for (let i = 0; i < j; i++) {
        pairs.push({
          a: names[i] ?? String(i),
          b: names[j] ?? String(j),
          covariance: this.covariance(i, j),
          correlation: this.correlation(i, j),
        });
      }
    }
    return { records: this.records, features, pairs };
  }

  toJSON(): RunningStatisticsSnapshot {
    return {
      dimension: this.dimension,
      halfLife: this.halfLife,
      weight: this.weight,
      records: this.records,
      mean: Array.from(this.mean),
      m2: Array.from(this.m2),
      m3: Array.from(this.m3),
      m4: Array.from(this.m4),
      min: Array.from(this.min, finiteOrNull) as number[],
      max: Array.from(this.max, finiteOrNull) as number[],
      comoment: Array.from(this.comoment),
      sketchUnit: this.sketchUnit,
      sketches: this.sketches.map((s) => (s ? s.toJSON() : null)),
    };
  }

  static fromJSON(s: RunningStatisticsSnapshot): RunningStatistics {
    if (!s || typeof s !== 'object' || !Number.isInteger(s.dimension) || s.dimension < 0)
      throw new Error('damaged statistics: dimension');
    const d = s.dimension;
    const vectors = ['mean', 'm2', 'm3', 'm4', 'min', 'max'] as const;
    for (const key of vectors) {
      if (!Array.isArray(s[key]) || s[key].length !== d) throw new Error(`damaged statistics: ${key}`);
    }
    if (!Array.isArray(s.comoment) || s.comoment.length !== (d * (d - 1)) / 2)
      throw new Error('damaged statistics: comoment');
    if (!Array.isArray(s.sketches) || s.sketches.length !== d) throw new Error('damaged statistics: sketches');
    const quantiles = s.sketches.map((x) => x !== null);
    const stats = new RunningStatistics(d, { halfLife: s.halfLife ?? undefined, quantiles });
    stats.weight = number(s.weight, 'weight');
    stats.records = number(s.records, 'records');
    stats.sketchUnit = number(s.sketchUnit, 'sketchUnit');
    stats.mean.set(s.mean.map((v) => number(v, 'mean')));
    stats.m2.set(s.m2.map((v) => number(v, 'm2')));
    stats.m3.set(s.m3.map((v) => number(v, 'm3')));
    stats.m4.set(s.m4.map((v) => number(v, 'm4')));
    stats.min.set(s.min.map((v) => (v === null ? Infinity : number(v, 'min'))));
    stats.max.set(s.max.map((v) => (v === null ? -Infinity : number(v, 'max'))));
    stats.comoment.set(s.comoment.map((v) => number(v, 'comoment')));
    stats.sketches = s.sketches.map((x) => (x === null ? null : QuantileSketch.fromJSON(x)));
    return stats;
  }

  private applyDecay(a: number): void {
    this.weight *= a;
    const d = this.dimension;
    for (let j = 0; j < d; j++) {
      this.m2[j] *= a;
      this.m3[j] *= a;
      this.m4[j] *= a;
    }
    const c = this.comoment;
    for (let k = 0; k < c.length; k++) c[k] *= a;
    if (this.keepQuantiles) {
      this.sketchUnit /= a;
      if (this.sketchUnit > 1e100) {
        // Renormalise now and then so the growing unit never overflows.
        for (const s of this.sketches) s?.scale(1 / this.sketchUnit);
        this.sketchUnit = 1;
      }
    }
  }

  private undoDecay(a: number): void {
    this.weight /= a;
    const d = this.dimension;
    for (let j = 0; j < d; j++) {
      this.m2[j] /= a;
      this.m3[j] /= a;
      this.m4[j] /= a;
    }
    for (let k = 0; k < this.comoment.length; k++) this.comoment[k] /= a;
    if (this.keepQuantiles) this.sketchUnit *= a;
  }
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function number(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`damaged statistics: ${what}`);
  return v;
}
