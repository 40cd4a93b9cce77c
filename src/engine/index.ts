// The streaming-ML engine: schema, statistics, detectors, thresholds and models. Imports nothing from Node-RED or
// Kafka.
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
