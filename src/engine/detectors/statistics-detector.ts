// A detector that stands on running statistics: its own, or a model's shared with other detectors, which the model
// then learns, merges and snapshots itself (so the detector only touches them when it owns them).
import { RunningStatistics } from '../statistics';
import { Detector } from './detector';

export abstract class StatisticsDetector extends Detector {
  protected stats: RunningStatistics;
  protected readonly owned: boolean;

  constructor(dimension: number, name: string, shared: RunningStatistics | undefined, own: () => RunningStatistics) {
    super();
    this.owned = shared === undefined;
    this.stats = shared ?? own();
    if (this.stats.dimension !== dimension) throw new Error(`${name}: statistics of another dimension`);
  }

  get dimension(): number {
    return this.stats.dimension;
  }

  get recordsLearned(): number {
    return this.stats.records;
  }

  /** The running statistics the detector stands on. */
  get statistics(): RunningStatistics {
    return this.stats;
  }

  /** The statistics for a snapshot: in full when owned, else a marker that the model holds them. */
  protected statisticsSnapshot(): unknown {
    return this.owned ? this.stats.toJSON() : 'shared';
  }

  override squash(raw: number): number {
    // A normal record's raw score is about the dimension: ECOD's -log tail probabilities are each about Exp(1),
    // and the squared Mahalanobis distance is chi-squared with d degrees of freedom.
    const r = raw / Math.max(this.dimension, 1);
    return r > 0 ? r / (r + 1) : 0;
  }
}
