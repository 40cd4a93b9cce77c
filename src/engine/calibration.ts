// Calibration of raw scores into 0..1 by their rank among past scores (an empirical CDF on a quantile sketch).
// Detectors' raw scores live on unrelated scales and drift as the detectors learn; ranks are comparable across
// detectors and over time, which is what an ensemble (and a ROC curve over the whole stream) needs.
import { QuantileSketch, type QuantileSketchSnapshot } from './sketch';

export interface ScoreCalibratorSnapshot {
  halfLife: number | null;
  unit: number;
  sketch: QuantileSketchSnapshot;
}

export class ScoreCalibrator {
  private sketch = new QuantileSketch();
  private unitWeight = 1;
  private readonly alpha: number;

  constructor(readonly halfLife: number | null = null) {
    this.alpha = halfLife !== null && halfLife > 0 ? Math.pow(2, -1 / halfLife) : 1;
  }

  /** Scores observed (their weight, with forgetting). */
  get weight(): number {
    return this.sketch.totalWeight / this.unitWeight;
  }

  /** Share of past scores below raw (ties counted half); the record itself counts as half a score. */
  cdf(raw: number): number {
    const u = this.unitWeight;
    return (this.sketch.rank(raw) + 0.5 * u) / (this.sketch.totalWeight + u);
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
  }

  merge(other: ScoreCalibrator): void {
    this.sketch.merge(other.sketch, this.unitWeight / other.unitWeight);
  }

  toJSON(): ScoreCalibratorSnapshot {
    return { halfLife: this.halfLife, unit: this.unitWeight, sketch: this.sketch.toJSON() };
  }

  static fromJSON(s: ScoreCalibratorSnapshot): ScoreCalibrator {
    if (!s || typeof s !== 'object' || !(s.unit > 0)) throw new Error('damaged snapshot: score calibrator');
    const c = new ScoreCalibrator(s.halfLife);
    c.unitWeight = s.unit;
    c.sketch = QuantileSketch.fromJSON(s.sketch);
    return c;
  }
}
