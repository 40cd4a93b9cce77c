// The default detector ('auto'): ECOD, histogram and Gaussian detectors, each score calibrated by its rank F among
// past scores of the same detector (growing on past the 99% quantile, see ScoreCalibrator), combined as in Fisher's
// method: S = sum of -ln(1 - F), the surprise of each member's tail probability. A record one member is very sure
// about stands out even when the others are not (averaging ranks would dilute it), and on Shuttle the three make
// different mistakes, so the sum separates better than any one of them (bench/engine-quick.ts). The score is
// S / (S + 3): about 0.5 for a typical record. A small share of each member's own squashed score breaks ties.
import { ScoreCalibrator, type ScoreCalibratorSnapshot } from '../calibration';
import { RunningStatistics, type RunningStatisticsSnapshot } from '../statistics';
import { Detector, requireKind, type DetectorSnapshot } from './detector';
import { EcodDetector } from './ecod';
import { GaussianDetector } from './gaussian';
import { HistogramDetector } from './histogram';

export interface EnsembleOptions {
  halfLife?: number;
  /** Statistics owned and learned by someone else (a model), shared by the ECOD and Gaussian members. */
  statistics?: RunningStatistics;
}

const TIE_BREAK = 1e-3;

export class EnsembleDetector extends Detector {
  readonly kind = 'auto';
  readonly members: Detector[];
  private readonly ecod: EcodDetector;
  private readonly histogram: HistogramDetector;
  private readonly gaussian: GaussianDetector;
  private readonly calibrators: ScoreCalibrator[];
  private stats: RunningStatistics;
  private readonly owned: boolean;
  /** Each member's parts of the record being scored (one array per member, combined in one pass at the end). */
  private ecodParts: Float64Array;
  private histogramParts: Float64Array;
  private gaussianParts: Float64Array;
  /** The last vector scored and its members' raw scores, reused when it is learned next. */
  private lastX: Float64Array;
  private readonly lastRaw: Float64Array;
  private lastValid = false;

  constructor(dimension: number, options: EnsembleOptions = {}, restored?: EnsembleRestore) {
    super();
    this.owned = options.statistics === undefined;
    this.stats =
      options.statistics ?? restored?.statistics ?? new RunningStatistics(dimension, { halfLife: options.halfLife });
    const halfLife = options.halfLife ?? this.stats.halfLife ?? undefined;
    this.members = restored?.members ?? [
      new EcodDetector(dimension, { statistics: this.stats }),
      new HistogramDetector(dimension, { halfLife }),
      new GaussianDetector(dimension, { statistics: this.stats }),
    ];
    [this.ecod, this.histogram, this.gaussian] = this.members as [EcodDetector, HistogramDetector, GaussianDetector];
    this.calibrators = restored?.calibrators ?? this.members.map(() => new ScoreCalibrator(halfLife ?? null));
    this.ecodParts = new Float64Array(dimension);
    this.histogramParts = new Float64Array(dimension);
    this.gaussianParts = new Float64Array(dimension);
    this.lastX = new Float64Array(dimension);
    this.lastRaw = new Float64Array(this.members.length);
  }

  get dimension(): number {
    return this.stats.dimension;
  }

  get recordsLearned(): number {
    return this.members[1].recordsLearned;
  }

  get statistics(): RunningStatistics {
    return this.stats;
  }

  override squash(raw: number): number {
    return raw;
  }

  rawScore(x: ArrayLike<number>, parts?: Float64Array): number {
    const d = this.dimension;
    // The members are called one by one, not in a loop over the array: each call site then sees one class.
    const ecodParts = parts ? this.ecodParts : undefined;
    const ecod = this.ecod.rawScore(x, ecodParts);
    const ecodSurprise = this.calibrated(0, ecod);
    const histogramParts = parts ? this.histogramParts : undefined;
    const histogram = this.histogram.rawScore(x, histogramParts);
    const histogramSurprise = this.calibrated(1, histogram);
    const gaussianParts = parts ? this.gaussianParts : undefined;
    const gaussian = this.gaussian.rawScore(x, gaussianParts);
    const gaussianSurprise = this.calibrated(2, gaussian);
    const surprise = ecodSurprise + histogramSurprise + gaussianSurprise;
    if (parts) {
      // Each member's parts, scaled to sum to its surprise, added up: the three members in two passes over the
      // features rather than two each (plus one to clear parts).
      let ecodTotal = 0;
      let histogramTotal = 0;
      let gaussianTotal = 0;
      for (let j = 0; j < d; j++) {
        ecodTotal += ecodParts![j];
        histogramTotal += histogramParts![j];
        gaussianTotal += gaussianParts![j];
      }
      const fe = ecodTotal > 0 ? ecodSurprise / ecodTotal : 0;
      const fh = histogramTotal > 0 ? histogramSurprise / histogramTotal : 0;
      const fg = gaussianTotal > 0 ? gaussianSurprise / gaussianTotal : 0;
      // Added in the order they used to be added into parts filled with 0, so the shares are the same to the bit.
      for (let j = 0; j < d; j++) parts[j] = 0 + ecodParts![j] * fe + histogramParts![j] * fh + gaussianParts![j] * fg;
    }
    const squashed = this.ecod.squash(ecod) + this.histogram.squash(histogram) + this.gaussian.squash(gaussian);
    for (let j = 0; j < d; j++) this.lastX[j] = x[j];
    this.lastValid = true;
    const combined = surprise + TIE_BREAK * squashed;
    return combined / (combined + 3);
  }

  /** Member m's surprise for raw (remembered for learning). */
  private calibrated(m: number, raw: number): number {
    this.lastRaw[m] = raw;
    return this.calibrators[m].surprise(raw);
  }

  override get memoSize(): number {
    return 3;
  }

  /** The members' raw scores of the record scored last: what the calibrators observe when it is learned. */
  override writeMemo(out: Float64Array, offset: number): void {
    out[offset] = this.lastRaw[0];
    out[offset + 1] = this.lastRaw[1];
    out[offset + 2] = this.lastRaw[2];
  }

  override learnScored(x: ArrayLike<number>, memo: Float64Array, offset: number): void {
    const calibrators = this.calibrators;
    calibrators[0].observe(memo[offset]);
    calibrators[1].observe(memo[offset + 1]);
    calibrators[2].observe(memo[offset + 2]);
    this.learnMembers(x);
  }

  learnOne(x: ArrayLike<number>): void {
    const d = this.dimension;
    let same = this.lastValid;
    for (let j = 0; same && j < d; j++) same = this.lastX[j] === x[j];
    const calibrators = this.calibrators;
    calibrators[0].observe(same ? this.lastRaw[0] : this.ecod.rawScore(x));
    calibrators[1].observe(same ? this.lastRaw[1] : this.histogram.rawScore(x));
    calibrators[2].observe(same ? this.lastRaw[2] : this.gaussian.rawScore(x));
    this.learnMembers(x);
  }

  private learnMembers(x: ArrayLike<number>): void {
    if (this.owned) this.stats.learn(x);
    this.ecod.learnOne(x);
    this.histogram.learnOne(x);
    this.gaussian.learnOne(x);
    this.lastValid = false;
  }

  override forgetOne(x: ArrayLike<number>): void {
    // The calibrators keep the scores seen (a score cannot be taken back exactly): only the members forget.
    if (this.owned) this.stats.forget(x);
    for (const m of this.members) m.forgetOne(x);
    this.lastValid = false;
  }

  override get canForget(): boolean {
    return true;
  }

  override permuteFeatures(order: number[]): void {
    if (this.owned) this.stats.permute(order);
    for (const m of this.members) m.permuteFeatures(order);
    this.lastValid = false;
  }

  addFeature(): void {
    if (this.owned) this.stats.addFeature(true);
    for (const m of this.members) m.addFeature();
    this.ecodParts = new Float64Array(this.dimension);
    this.histogramParts = new Float64Array(this.dimension);
    this.gaussianParts = new Float64Array(this.dimension);
    this.lastX = new Float64Array(this.dimension);
    this.lastValid = false;
  }

  override merge(other: Detector): void {
    if (!(other instanceof EnsembleDetector) || other.members.length !== this.members.length) return super.merge(other);
    if (this.owned) this.stats.merge(other.stats);
    this.members.forEach((m, i) => m.merge(other.members[i]));
    this.calibrators.forEach((c, i) => c.merge(other.calibrators[i]));
    this.lastValid = false;
  }

  toJSON(): DetectorSnapshot {
    return {
      kind: this.kind,
      dimension: this.dimension,
      statistics: this.owned ? this.stats.toJSON() : 'shared',
      members: this.members.map((m) => m.toJSON()),
      calibrators: this.calibrators.map((c) => c.toJSON()),
    };
  }

  static fromJSON(snapshot: unknown, shared?: RunningStatistics): EnsembleDetector {
    const s = requireKind(snapshot, 'auto');
    if (!Array.isArray(s.members) || s.members.length !== 3) throw new Error('damaged snapshot: ensemble members');
    if (!Array.isArray(s.calibrators) || s.calibrators.length !== 3)
      throw new Error('damaged snapshot: ensemble calibrators');
    if (s.statistics === 'shared' && !shared) throw new Error('damaged snapshot: ensemble needs the shared statistics');
    const stats =
      s.statistics === 'shared' ? shared! : RunningStatistics.fromJSON(s.statistics as RunningStatisticsSnapshot);
    const [ecod, histogram, gaussian] = s.members as unknown[];
    const members = [
      EcodDetector.fromJSON(ecod, stats),
      HistogramDetector.fromJSON(histogram),
      GaussianDetector.fromJSON(gaussian, stats),
    ];
    const calibrators = (s.calibrators as ScoreCalibratorSnapshot[]).map((c) => ScoreCalibrator.fromJSON(c));
    return new EnsembleDetector(
      stats.dimension,
      { statistics: s.statistics === 'shared' ? shared : undefined },
      { members, calibrators, statistics: stats },
    );
  }
}

interface EnsembleRestore {
  members: Detector[];
  calibrators: ScoreCalibrator[];
  statistics: RunningStatistics;
}
