// How each detector's merge relates to one detector that learned both streams: what fleet learning can promise.
import type { DetectorName } from '../types';

export type MergeQuality = 'exact' | 'approximate' | 'none';

export interface DetectorMerging {
  quality: MergeQuality;
  /** One sentence for the help and the sidebar. */
  how: string;
}

export const DETECTOR_MERGING: Readonly<Record<DetectorName, DetectorMerging>> = {
  gaussian: {
    quality: 'exact',
    how: 'means and covariances add exactly (to floating-point rounding)',
  },
  histogram: {
    quality: 'exact',
    how: 'bin counts add exactly once both grids agree; a narrower grid is first widened, as it would be by the data',
  },
  ecod: {
    quality: 'approximate',
    how:
      'the moments add exactly; each feature\u2019s quantile sketch merges exactly when both chose the same buckets, ' +
      'else a value moves within its bucket (at most about 3% of its distance from the median)',
  },
  auto: {
    quality: 'approximate',
    how:
      'its members merge as above and the score calibration merges as a quantile sketch: on Shuttle three members ' +
      'score within 0.001 ROC-AUC of one model',
  },
  hst: {
    quality: 'none',
    how: 'its trees are cut from each model’s first records, so two models’ trees differ and cannot be added',
  },
};

/** The detectors of a list that cannot merge (their names), for a clear refusal. */
export function unmergeableDetectors(names: readonly DetectorName[]): DetectorName[] {
  return names.filter((name) => DETECTOR_MERGING[name].quality === 'none');
}
