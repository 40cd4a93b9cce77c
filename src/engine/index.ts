// The streaming-ML engine: schema, statistics, detectors, thresholds and models. Imports nothing from Node-RED or
// Kafka.
//
//   const model = createModel({
//     attributes: [{ name: 'temp', type: 'C' }, { name: 'mode', type: 'T' }, { name: 'fault', type: 'B', role: 'label' }],
//   });
//   const result = model.scoreOne({ temp: 21.4, mode: 'auto', fault: 0 }); // { score, isAnomaly, contributions, ... }
//   model.learnOne({ temp: 21.4, mode: 'auto', fault: 0 });                 // score, then learn
//   const copy = modelFromJSON(JSON.parse(JSON.stringify(model.toJSON())));  // same scores from here on
//
// Detectors ('auto' = ECOD + histogram + Gaussian, rank-calibrated; 'ecod', 'histogram', 'gaussian', 'hst') work
// on numeric feature vectors and can be used alone: new EcodDetector(3).scoreOne([1, 2, 3]).
export * from './types';
export { createModel, modelFromJSON, type Model, type ModelSnapshot, SNAPSHOT_VERSION, SNAPSHOT_FORMAT } from './model';
export { DEFAULT_THRESHOLD, DEFAULT_WARMUP_RECORDS } from './model';
export { RecordEncoder, guessSchema, validateSchema, categoryKey, LABEL_NAMES } from './schema';
export { RunningStatistics, type RunningStatisticsOptions, type RunningStatisticsSnapshot } from './statistics';
export { QuantileSketch, type QuantileSketchSnapshot } from './sketch';
export {
  Detector,
  type DetectorSnapshot,
  EcodDetector,
  EnsembleDetector,
  GaussianDetector,
  HistogramDetector,
  HalfSpaceTrees,
  createDetector,
  detectorFromJSON,
  DETECTOR_NAMES,
} from './detectors';
export {
  type Threshold,
  type ThresholdSnapshot,
  FixedThreshold,
  QuantileThreshold,
  SpotThreshold,
  createThreshold,
  thresholdFromJSON,
} from './thresholds';
export { SeededRandom } from './random';
export { ScoreCalibrator, type ScoreCalibratorSnapshot } from './calibration';
export { RecordStatistics, type RecordStatisticsOptions, type RecordStatisticsSnapshot } from './record-statistics';
export {
  StreamingEvaluator,
  rocAuc,
  averagePrecision,
  type EvaluationSummary,
  type EvaluatorSnapshot,
  type ThresholdMetrics,
} from './evaluation';
export { LearnedPositions, type LearnedPositionsSnapshot } from './learned-positions';
export { FleetModel, incompatibility, isFleetMerge, type FleetMember, type LearnedRanges } from './fleet';
export { DETECTOR_MERGING, unmergeableDetectors, type DetectorMerging, type MergeQuality } from './detectors';
