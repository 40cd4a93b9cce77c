import { Detector, type DetectorSnapshot } from './detector';
import { EcodDetector } from './ecod';
import { EnsembleDetector } from './ensemble';
import { GaussianDetector } from './gaussian';
import { HistogramDetector } from './histogram';
import { HalfSpaceTrees } from './hst';
import type { RunningStatistics } from '../statistics';
import type { DetectorName } from '../types';

export { Detector, type DetectorSnapshot } from './detector';
export { EcodDetector, type EcodOptions } from './ecod';
export { EnsembleDetector, type EnsembleOptions } from './ensemble';
export { GaussianDetector, type GaussianOptions, invertSymmetric } from './gaussian';
export { HistogramDetector, type HistogramOptions } from './histogram';
export { HalfSpaceTrees, type HalfSpaceTreesOptions } from './hst';

export const DETECTOR_NAMES: readonly DetectorName[] = ['auto', 'gaussian', 'histogram', 'hst', 'ecod'];

export interface DetectorFactoryOptions {
  halfLife?: number;
  seed?: number;
  /** A model's statistics, shared by the detectors that stand on them (ecod, gaussian, auto). */
  statistics?: RunningStatistics;
}

export function createDetector(name: DetectorName, dimension: number, options: DetectorFactoryOptions = {}): Detector {
  switch (name) {
    case 'auto':
      return new EnsembleDetector(dimension, options);
    case 'gaussian':
      return new GaussianDetector(dimension, { halfLife: options.halfLife, statistics: options.statistics });
    case 'histogram':
      return new HistogramDetector(dimension, { halfLife: options.halfLife });
    case 'hst':
      return new HalfSpaceTrees(dimension, { seed: options.seed });
    case 'ecod':
      return new EcodDetector(dimension, { halfLife: options.halfLife, statistics: options.statistics });
    default:
      throw new Error(`unknown detector "${String(name)}" (expected one of ${DETECTOR_NAMES.join(', ')})`);
  }
}

/** Restores a detector; shared is the model's statistics, for detectors whose snapshot says they were shared. */
export function detectorFromJSON(snapshot: unknown, shared?: RunningStatistics): Detector {
  const kind = (snapshot as DetectorSnapshot | null)?.kind;
  switch (kind) {
    case 'auto':
      return EnsembleDetector.fromJSON(snapshot, shared);
    case 'gaussian':
      return GaussianDetector.fromJSON(snapshot, shared);
    case 'histogram':
      return HistogramDetector.fromJSON(snapshot);
    case 'hst':
      return HalfSpaceTrees.fromJSON(snapshot);
    case 'ecod':
      return EcodDetector.fromJSON(snapshot, shared);
    default:
      throw new Error(`damaged snapshot: unknown detector kind ${String(kind)}`);
  }
}
export { DETECTOR_MERGING, unmergeableDetectors, type DetectorMerging, type MergeQuality } from './merging';
