// Gaussian detector: Mahalanobis distance on the running mean and a regularised running covariance
// (SymetryML's covest). The precision matrix is refreshed every few records, not on each one: inverting costs
// O(d^3) while a record costs O(d^2).
import { RunningStatistics, type RunningStatisticsSnapshot } from '../statistics';
import { Detector, finiteNumber, numberArray, requireKind, type DetectorSnapshot } from './detector';
import { StatisticsDetector } from './statistics-detector';

export interface GaussianOptions {
  /** Exponential forgetting, in records. */
  halfLife?: number;
  /** Shrinkage of the covariances towards zero, 0..1 (default 0.01). */
  shrinkage?: number;
  /** Longest gap, in records learned, between two refreshes of the precision matrix (default 128). */
  refreshEvery?: number;
  /** Statistics owned and learned by someone else (a model). */
  statistics?: RunningStatistics;
}

export class GaussianDetector extends StatisticsDetector {
  readonly kind = 'gaussian';
  private precision: Float64Array;
  private readonly shrinkage: number;
  private readonly refreshEvery: number;
  private sinceRefresh = 0;
  private centred: Float64Array;
  private product: Float64Array;
  /** Scratch for refresh(). */
  private covariance = new Float64Array(0);

  constructor(dimension: number, options: GaussianOptions = {}) {
    super(
      dimension,
      'gaussian',
      options.statistics,
      () => new RunningStatistics(dimension, { halfLife: options.halfLife, quantiles: false }),
    );
    this.shrinkage = options.shrinkage ?? 0.01;
    this.refreshEvery = options.refreshEvery ?? 128;
    this.precision = new Float64Array(dimension * dimension);
    this.centred = new Float64Array(dimension);
    this.product = new Float64Array(dimension);
  }

  rawScore(x: ArrayLike<number>, parts?: Float64Array): number {
    const d = this.stats.dimension;
    if (this.stats.weight < 2) {
      if (parts) parts.fill(0, 0, d);
      return 0;
    }
    const z = this.centred;
    const mean = this.stats.mean;
    for (let j = 0; j < d; j++) z[j] = x[j] - mean[j];
    const p = this.precision;
    let distance = 0;
    // Three rows at a time: three independent chains of additions instead of one (each row still sums in order, so
    // the result is the same to the bit).
    let i = 0;
    for (; i + 2 < d; i += 3) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      const row0 = i * d;
      const row1 = row0 + d;
      const row2 = row1 + d;
      for (let j = 0; j < d; j++) {
        const zj = z[j];
        s0 += p[row0 + j] * zj;
        s1 += p[row1 + j] * zj;
        s2 += p[row2 + j] * zj;
      }
      const part0 = z[i] * s0;
      const part1 = z[i + 1] * s1;
      const part2 = z[i + 2] * s2;
      distance += part0;
      distance += part1;
      distance += part2;
      if (parts) {
        parts[i] = part0 > 0 ? part0 : 0;
        parts[i + 1] = part1 > 0 ? part1 : 0;
        parts[i + 2] = part2 > 0 ? part2 : 0;
      }
    }
    for (; i < d; i++) {
      let s = 0;
      const row = i * d;
      for (let j = 0; j < d; j++) s += p[row + j] * z[j];
      const part = z[i] * s;
      distance += part;
      if (parts) parts[i] = part > 0 ? part : 0;
    }
    return distance > 0 ? distance : 0;
  }

  learnOne(x: ArrayLike<number>): void {
    if (this.owned) this.stats.learn(x);
    this.afterChange();
  }

  override forgetOne(x: ArrayLike<number>): void {
    if (this.owned) this.stats.forget(x);
    this.refresh();
  }

  override get canForget(): boolean {
    return true;
  }

  override permuteFeatures(order: number[]): void {
    if (this.owned) this.stats.permute(order);
    this.refresh();
  }

  addFeature(): void {
    if (this.owned) this.stats.addFeature(false);
    const d = this.stats.dimension;
    this.precision = new Float64Array(d * d);
    this.centred = new Float64Array(d);
    this.product = new Float64Array(d);
    this.refresh();
  }

  override merge(other: Detector): void {
    if (!(other instanceof GaussianDetector)) return super.merge(other);
    if (this.owned) this.stats.merge(other.stats);
    this.refresh();
  }

  /** Recomputes the precision matrix now. */
  refresh(): void {
    this.sinceRefresh = 0;
    const d = this.stats.dimension;
    const n = this.stats.weight;
    if (n < 2) return;
    // Regularised covariance: shrunk off-diagonal terms and a floor on each variance, so that it always inverts.
    if (this.covariance.length !== d * d) this.covariance = new Float64Array(d * d);
    const cov = this.covariance;
    let largest = 0;
    for (let j = 0; j < d; j++) largest = Math.max(largest, this.stats.m2[j] / n);
    for (let i = 0; i < d; i++) {
      const vi = this.stats.m2[i] / n;
      cov[i * d + i] = vi + 1e-9 * (largest + 1) + 1e-6 * vi;
      for (let j = 0; j < i; j++) {
        const c = this.stats.covariance(i, j) * (1 - this.shrinkage);
        cov[i * d + j] = c;
        cov[j * d + i] = c;
      }
    }
    invertSymmetric(cov, d, this.precision);
  }

  private afterChange(): void {
    this.sinceRefresh++;
    const records = this.stats.records;
    // Often while the estimate moves fast, then every refreshEvery records.
    const interval = Math.min(this.refreshEvery, Math.max(1, records >> 5));
    if (this.sinceRefresh >= interval) this.refresh();
  }

  toJSON(): DetectorSnapshot {
    return {
      kind: this.kind,
      shrinkage: this.shrinkage,
      refreshEvery: this.refreshEvery,
      sinceRefresh: this.sinceRefresh,
      precision: Array.from(this.precision),
      statistics: this.statisticsSnapshot(),
    };
  }

  static fromJSON(snapshot: unknown, shared?: RunningStatistics): GaussianDetector {
    const s = requireKind(snapshot, 'gaussian');
    if (s.statistics === 'shared' && !shared)
      throw new Error('damaged snapshot: gaussian detector needs the shared statistics');
    const stats =
      s.statistics === 'shared' ? shared! : RunningStatistics.fromJSON(s.statistics as RunningStatisticsSnapshot);
    const d = stats.dimension;
    const detector = new GaussianDetector(d, {
      halfLife: stats.halfLife ?? undefined,
      shrinkage: finiteNumber(s.shrinkage, 'shrinkage'),
      refreshEvery: finiteNumber(s.refreshEvery, 'refreshEvery'),
      statistics: s.statistics === 'shared' ? shared : undefined,
    });
    detector.stats = stats;
    detector.sinceRefresh = finiteNumber(s.sinceRefresh, 'sinceRefresh');
    detector.precision.set(numberArray(s.precision, 'precision', d * d));
    return detector;
  }
}

/**
 * Inverts a symmetric positive definite matrix (row-major, d x d) through its Cholesky factor into out. When the
 * factorisation breaks down numerically, adds a growing ridge to the diagonal and tries again.
 */
export function invertSymmetric(a: Float64Array, d: number, out: Float64Array): void {
  const l = new Float64Array(d * d);
  let ridge = 0;
  let scale = 0;
  for (let i = 0; i < d; i++) scale = Math.max(scale, Math.abs(a[i * d + i]));
  for (let attempt = 0; attempt < 30; attempt++) {
    if (cholesky(a, d, l, ridge)) break;
    ridge = ridge === 0 ? 1e-10 * (scale || 1) : ridge * 10;
  }
  // inverse = L^-T L^-1: invert L (lower triangular), then multiply.
  const li = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    li[i * d + i] = 1 / l[i * d + i];
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s += l[i * d + k] * li[k * d + j];
      li[i * d + j] = -s / l[i * d + i];
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < d; k++) s += li[k * d + i] * li[k * d + j];
      out[i * d + j] = s;
      out[j * d + i] = s;
    }
  }
}

function cholesky(a: Float64Array, d: number, l: Float64Array, ridge: number): boolean {
  l.fill(0);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j] + (i === j ? ridge : 0);
      for (let k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
      if (i === j) {
        if (!(s > 0)) return false;
        l[i * d + i] = Math.sqrt(s);
      } else {
        l[i * d + j] = s / l[j * d + j];
      }
    }
  }
  return true;
}
