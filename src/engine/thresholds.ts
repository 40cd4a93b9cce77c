// Decision thresholds on anomaly scores: a fixed value, a running quantile of past scores, or SPOT.
//
// SPOT (Siffer, Fouque, Termier and Largouët, KDD 2017) models the scores above a high initial threshold t (the
// peaks) with a generalised Pareto distribution, and sets the alarm threshold z_q so that P(score > z_q) = risk:
//   z_q = t + (sigma / gamma) * ((risk * n / peaks)^(-gamma) - 1)   (t - sigma * ln(risk * n / peaks) if gamma = 0).
// Scores above z_q are alarms and do not enter the fit, so an attack does not raise the threshold (a lone alarm
// enters censored at z_q, see observe). The paper fits
// the GPD by maximum likelihood (Grimshaw's trick); here the fit uses the method of moments, which updates in O(1)
// per peak from running moments of the excesses, so the threshold follows the stream without refitting work.
import { QuantileSketch, type QuantileSketchSnapshot } from './sketch';
import type { ThresholdSpec } from './types';

/** Weight of the newest score in the running share of alarms. */
const ALARM_SMOOTHING = 1 / 256;

export interface Threshold {
  readonly kind: ThresholdSpec['kind'];
  /** The current threshold (Infinity while it cannot be set yet). */
  readonly value: number;
  /** Takes the score of a record being learned. */
  observe(score: number): void;
  merge(other: Threshold): void;
  toJSON(): ThresholdSnapshot;
}

export type ThresholdSnapshot = { kind: ThresholdSpec['kind']; [key: string]: unknown };

export class FixedThreshold implements Threshold {
  readonly kind = 'fixed';
  constructor(readonly value: number) {
    if (!Number.isFinite(value)) throw new Error('a fixed threshold needs a finite value');
  }
  observe(): void {}
  merge(): void {}
  toJSON(): ThresholdSnapshot {
    return { kind: this.kind, value: this.value };
  }
}

/** The q-quantile of the scores observed so far. */
export class QuantileThreshold implements Threshold {
  readonly kind = 'quantile';
  private sketch = new QuantileSketch();
  private cached = Infinity;
  private dirty = 0;

  constructor(readonly q: number) {
    if (!(q > 0 && q < 1)) throw new Error('a quantile threshold needs 0 < q < 1');
  }

  get value(): number {
    if (this.dirty > 0) {
      this.cached = this.sketch.totalWeight > 0 ? this.sketch.quantile(this.q) : Infinity;
      this.dirty = 0;
    }
    return this.cached;
  }

  observe(score: number): void {
    this.sketch.add(score);
    this.dirty++;
  }

  merge(other: Threshold): void {
    if (!(other instanceof QuantileThreshold)) throw new Error('cannot merge thresholds of different kinds');
    this.sketch.merge(other.sketch);
    this.dirty++;
  }

  toJSON(): ThresholdSnapshot {
    return { kind: this.kind, q: this.q, sketch: this.sketch.toJSON() };
  }

  static fromJSON(s: Record<string, unknown>): QuantileThreshold {
    const t = new QuantileThreshold(s.q as number);
    t.sketch = QuantileSketch.fromJSON(s.sketch as QuantileSketchSnapshot);
    t.dirty = 1;
    return t;
  }
}

export interface SpotOptions {
  /** Probability of a normal score exceeding the threshold. */
  risk: number;
  /** Scores used to set the initial threshold t (default 256). */
  initialScores?: number;
  /** Quantile of the initial scores taken as t (default 0.98). */
  level?: number;
}

export class SpotThreshold implements Threshold {
  readonly kind = 'spot';
  readonly risk: number;
  private readonly initialScores: number;
  private readonly level: number;
  private initial: number[] = [];
  /** Initial threshold t. */
  private t = Infinity;
  /** Scores observed (after the initial ones are in), peaks above t, and moments of the excesses. */
  private n = 0;
  private peaks = 0;
  private excessMean = 0;
  private excessM2 = 0;
  private z = Infinity;
  /** Share of recent scores that were alarms (exponentially smoothed). */
  private recentAlarms = 0;

  constructor(options: SpotOptions) {
    this.risk = options.risk;
    if (!(this.risk > 0 && this.risk < 1)) throw new Error('SPOT needs 0 < risk < 1');
    this.initialScores = options.initialScores ?? 256;
    this.level = options.level ?? 0.98;
  }

  get value(): number {
    return this.z;
  }

  /** The fitted GPD shape and scale (NaN before the initial scores are in). */
  get gpd(): { gamma: number; sigma: number; t: number; peaks: number } {
    const { gamma, sigma } = this.fit();
    return { gamma, sigma, t: this.t, peaks: this.peaks };
  }

  observe(score: number): void {
    if (!Number.isFinite(score)) return;
    if (this.initial !== null && this.n === 0 && this.t === Infinity) {
      this.initial.push(score);
      if (this.initial.length >= this.initialScores) this.calibrate();
      return;
    }
    if (score > this.z) {
      this.recentAlarms += (1 - this.recentAlarms) * ALARM_SMOOTHING;
      // A burst of alarms (an attack, a fault) stays out of the fit altogether, as in the paper. A lone alarm is
      // kept as an excess censored at z: dropping every alarm cuts the top of the tail, fits a shorter tail and
      // lowers z, which cuts more, so the false alarm rate creeps to several times the risk.
      if (this.recentAlarms > Math.min(10 * this.risk, 0.05)) return;
      this.n++;
      this.addPeak(this.z - this.t);
      this.update();
      return;
    }
    this.recentAlarms -= this.recentAlarms * ALARM_SMOOTHING;
    this.n++;
    if (score > this.t) {
      this.addPeak(score - this.t);
      this.update();
    } else if ((this.n & 63) === 0) {
      this.update();
    }
  }

  merge(other: Threshold): void {
    if (!(other instanceof SpotThreshold)) throw new Error('cannot merge thresholds of different kinds');
    if (other.t === Infinity) {
      for (const s of other.initial) this.observe(s);
      return;
    }
    if (this.t === Infinity) {
      const mine = this.initial;
      Object.assign(this, { ...other, initial: [] });
      for (const s of mine) this.observe(s);
      return;
    }
    // Peaks above two different initial thresholds: keep ours and pool the excesses (an approximation).
    const nb = other.peaks;
    const na = this.peaks;
    if (nb > 0) {
      const shift = other.t - this.t;
      const meanB = other.excessMean + shift;
      const delta = meanB - this.excessMean;
      const total = na + nb;
      this.excessM2 += other.excessM2 + (delta * delta * na * nb) / total;
      this.excessMean += (delta * nb) / total;
      this.peaks = total;
    }
    this.n += other.n;
    this.update();
  }

  toJSON(): ThresholdSnapshot {
    return {
      kind: this.kind,
      risk: this.risk,
      initialScores: this.initialScores,
      level: this.level,
      initial: this.initial.slice(),
      t: Number.isFinite(this.t) ? this.t : null,
      n: this.n,
      peaks: this.peaks,
      excessMean: this.excessMean,
      excessM2: this.excessM2,
      z: Number.isFinite(this.z) ? this.z : null,
      recentAlarms: this.recentAlarms,
    };
  }

  static fromJSON(s: Record<string, unknown>): SpotThreshold {
    const t = new SpotThreshold({
      risk: s.risk as number,
      initialScores: s.initialScores as number,
      level: s.level as number,
    });
    if (!Array.isArray(s.initial)) throw new Error('damaged SPOT threshold');
    t.initial = (s.initial as number[]).slice();
    t.t = s.t === null ? Infinity : (s.t as number);
    t.n = s.n as number;
    t.peaks = s.peaks as number;
    t.excessMean = s.excessMean as number;
    t.excessM2 = s.excessM2 as number;
    t.z = s.z === null ? Infinity : (s.z as number);
    t.recentAlarms = s.recentAlarms as number;
    for (const v of [t.n, t.peaks, t.excessMean, t.excessM2, t.recentAlarms])
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error('damaged SPOT threshold');
    return t;
  }

  private calibrate(): void {
    const sorted = this.initial.slice().sort((a, b) => a - b);
    this.t = sorted[Math.min(sorted.length - 1, Math.floor(this.level * sorted.length))];
    for (const s of this.initial) {
      this.n++;
      if (s > this.t) this.addPeak(s - this.t);
    }
    this.initial = [];
    this.update();
  }

  private addPeak(excess: number): void {
    this.peaks++;
    const delta = excess - this.excessMean;
    this.excessMean += delta / this.peaks;
    this.excessM2 += delta * (excess - this.excessMean);
  }

  private fit(): { gamma: number; sigma: number } {
    if (this.peaks < 2) return { gamma: NaN, sigma: NaN };
    const mean = this.excessMean;
    const variance = this.excessM2 / (this.peaks - 1);
    if (!(variance > 0) || !(mean > 0)) return { gamma: 0, sigma: mean > 0 ? mean : 0 };
    const ratio = (mean * mean) / variance;
    return { gamma: 0.5 * (1 - ratio), sigma: 0.5 * mean * (ratio + 1) };
  }

  private update(): void {
    if (this.peaks < 2) {
      // Too few peaks to fit a tail: alarm above the initial threshold.
      this.z = this.t;
      return;
    }
    const { gamma, sigma } = this.fit();
    const r = (this.risk * this.n) / this.peaks;
    this.z =
      Math.abs(gamma) < 1e-9 ? this.t - sigma * Math.log(r) : this.t + (sigma / gamma) * (Math.pow(r, -gamma) - 1);
  }
}

export function createThreshold(spec: ThresholdSpec, warmupRecords = 256): Threshold {
  switch (spec.kind) {
    case 'fixed':
      return new FixedThreshold(spec.value);
    case 'quantile':
      return new QuantileThreshold(spec.q);
    case 'spot':
      return new SpotThreshold({ risk: spec.risk, initialScores: Math.max(32, warmupRecords) });
    default:
      throw new Error(`unknown threshold kind ${(spec as { kind: unknown }).kind}`);
  }
}

export function thresholdFromJSON(s: unknown): Threshold {
  if (!s || typeof s !== 'object') throw new Error('damaged threshold snapshot');
  const snapshot = s as Record<string, unknown>;
  switch (snapshot.kind) {
    case 'fixed':
      return new FixedThreshold(snapshot.value as number);
    case 'quantile':
      return QuantileThreshold.fromJSON(snapshot);
    case 'spot':
      return SpotThreshold.fromJSON(snapshot);
    default:
      throw new Error(`damaged threshold snapshot: unknown kind ${String(snapshot.kind)}`);
  }
}
