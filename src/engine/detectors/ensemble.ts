// The default detector ('auto'): ECOD, histogram and Gaussian detectors, each score calibrated by its rank among
// past scores of the same detector, averaged. On Shuttle the three make different mistakes, so their mean ranks
// separate outliers better than any one of them (see bench/engine-quick.ts). A small share of each member's own
// squashed score breaks ties between ranks (beyond the highest score seen, every rank is the same).
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
  private readonly calibrators: ScoreCalibrator[];
  private stats: RunningStatistics;
  private readonly owned: boolean;
  private memberParts: Float64Array;
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
    this.calibrators = restored?.calibrators ?? this.members.map(() => new ScoreCalibrator(halfLife ?? null));
    this.memberParts = new Float64Array(dimension);
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
    const members = this.members;
    const k = members.length;
    const memberParts = parts ? this.memberParts : undefined;
    if (parts) parts.fill(0, 0, d);
    let ranks = 0;
    let squashed = 0;
    for (let m = 0; m < k; m++) {
      const member = members[m];
      const raw = member.rawScore(x, memberParts);
      this.lastRaw[m] = raw;
      const rank = this.calibrators[m].cdf(raw);
      ranks += rank;
      squashed += member.squash(raw);
      if (parts) {
        // Each member's parts, scaled so that they add up to its calibrated score.
        let total = 0;
        for (let j = 0; j < d; j++) total += memberParts![j];
        const f = total > 0 ? rank / total : 0;
        for (let j = 0; j < d; j++) parts[j] += memberParts![j] * f;
      }
    }
    for (let j = 0; j < d; j++) this.lastX[j] = x[j];
    this.lastValid = true;
    return (ranks + TIE_BREAK * squashed) / (k * (1 + TIE_BREAK));
  }

  learnOne(x: ArrayLike<number>): void {
    const d = this.dimension;
    let same = this.lastValid;
    for (let j = 0; same && j < d; j++) same = this.lastX[j] === x[j];
    const members = this.members;
    for (let m = 0; m < members.length; m++) {
      const raw = same ? this.lastRaw[m] : members[m].rawScore(x);
      this.calibrators[m].observe(raw);
    }
    if (this.owned) this.stats.learn(x);
    for (let m = 0; m < members.length; m++) members[m].learnOne(x);
    this.lastValid = false;
  }

  addFeature(): void {
    if (this.owned) this.stats.addFeature(true);
    for (const m of this.members) m.addFeature();
    this.memberParts = new Float64Array(this.dimension);
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
