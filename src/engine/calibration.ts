// Calibration of raw scores by their rank among past scores (an empirical CDF on a quantile sketch), extended past
// the 99% quantile by a (logarithmically damped) exponential tail. Detectors' raw scores live on unrelated scales and drift as the detectors
// learn; ranks are comparable across detectors and over time, which is what an ensemble (and a ROC curve over the
// whole stream) needs. Ranks alone stop at the highest score seen: a record ten times further out than any before
// would rank like the runner-up, so above the 99% quantile the surprise keeps growing with the raw score.
import { QuantileSketch, type QuantileSketchSnapshot } from './sketch';

export interface ScoreCalibratorSnapshot {
  halfLife: number | null;
  unit: number;
  sketch: QuantileSketchSnapshot;
  observed: number;
  q90: number;
  q99: number;
}

/** Scores observed before the exponential tail is used. */
const TAIL_AFTER = 100;
/** Observations between two refreshes of the cached quantiles. */
const REFRESH_EVERY = 64;

export class ScoreCalibrator {
  private sketch = new QuantileSketch();
  private unitWeight = 1;
  private readonly alpha: number;
  private observed = 0;
  private q90 = NaN;
  private q99 = NaN;

  constructor(readonly halfLife: number | null = null) {
    this.alpha = halfLife !== null && halfLife > 0 ? Math.pow(2, -1 / halfLife) : 1;
  }

  /** Scores observed (their weight, with forgetting). */
  get weight(): number {
    return this.sketch.totalWeight / this.unitWeight;
  }

  /** Share of past scores below raw (ties counted half); the record itself counts as half a score, so it is < 1. */
  cdf(raw: number): number {
    const u = this.unitWeight;
    return (this.sketch.rank(raw) + 0.5 * u) / (this.sketch.totalWeight + u);
  }

  /** -ln P(score >= raw), from the rank; past the 99% quantile it keeps growing with raw (see below). */
  surprise(raw: number): number {
    const q99 = this.q99;
    const fromRank = -Math.log(1 - this.cdf(raw));
    if (raw > q99) {
      // Past the 99% quantile: at least what the rank says, and growing with the distance in units of an exponential
      // tail fitted on the 90%..99% quantiles. The growth is logarithmic, so one member far out adds a few units of
      // surprise rather than drowning the others (linear growth costs 0.03 of average precision on Shuttle).
      const scale = (q99 - this.q90) / Math.LN10;
      if (scale > 0) return Math.max(fromRank, Math.log(100) + Math.log1p((raw - q99) / scale));
    }
    return fromRank;
  }

  observe(raw: number): void {
    if (this.alpha !== 1) {
      this.unitWeight /= this.alpha;
      if (this.unitWeight > 1e100) {
        this.sketch.scale(1 / this.unitWeight);
        this.unitWeight = 1;
      }
    }
    this.sketch.add(raw, this.unitWeight);
    this.observed++;
    if (this.observed >= TAIL_AFTER && this.observed % REFRESH_EVERY === 0) this.refresh();
  }

  merge(other: ScoreCalibrator): void {
    this.sketch.merge(other.sketch, this.unitWeight / other.unitWeight);
    this.observed += other.observed;
    if (this.observed >= TAIL_AFTER) this.refresh();
  }

  toJSON(): ScoreCalibratorSnapshot {
    return {
      halfLife: this.halfLife,
      unit: this.unitWeight,
      sketch: this.sketch.toJSON(),
      observed: this.observed,
      q90: this.q90,
      q99: this.q99,
    };
  }

  static fromJSON(s: ScoreCalibratorSnapshot): ScoreCalibrator {
    if (!s || typeof s !== 'object' || !(s.unit > 0) || !Number.isInteger(s.observed))
      throw new Error('damaged snapshot: score calibrator');
    const c = new ScoreCalibrator(s.halfLife);
    c.unitWeight = s.unit;
    c.sketch = QuantileSketch.fromJSON(s.sketch);
    c.observed = s.observed;
    // JSON writes NaN as null: both mean "no tail yet".
    c.q90 = typeof s.q90 === 'number' ? s.q90 : NaN;
    c.q99 = typeof s.q99 === 'number' ? s.q99 : NaN;
    return c;
  }

  private refresh(): void {
    this.q90 = this.sketch.quantile(0.9);
    this.q99 = this.sketch.quantile(0.99);
  }
}
