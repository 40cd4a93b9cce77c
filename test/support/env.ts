// Where tests find the things they need: the Kafka broker, Node-RED, and the Shuttle data.
import fs from 'node:fs';
import path from 'node:path';

export const projectRoot = path.resolve(__dirname, '..', '..', '..');

/** Brokers of the cluster under test; `npm test` starts a local broker and sets KAFKA_BROKERS. */
export function kafkaBrokers(): string[] {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: run the tests through `npm test`, which starts a broker');
  return brokers.split(',').map((b) => b.trim());
}

/** The Node-RED runtime under test: Node-RED 4 from node_modules, or the one NODE_RED_PATH names (Node-RED 5). */
export function nodeRedPath(): string {
  return process.env.NODE_RED_PATH ?? require.resolve('node-red');
}

/** Where the Shuttle data may be, in the order `npm test` (scripts/shuttle-data.mjs) looks. */
function shuttleCandidates(): string[] {
  if (process.env.SHUTTLE_DATA_DIR) return [process.env.SHUTTLE_DATA_DIR];
  const cache = path.join(process.env.STREAM_ML_CACHE ?? path.join(projectRoot, '.cache'), 'shuttle');
  return [path.resolve(projectRoot, '..', 'shared', 'data', 'shuttle'), cache];
}

/**
 * Why the tests that need the Shuttle data cannot run here, or false when they can. `npm test` finds or downloads
 * the data before the tests start and says why when it cannot; under CI=true a missing data set throws instead,
 * so CI never goes green on skipped tests.
 */
export function shuttleMissing(): string | false {
  if (shuttleCandidates().some((dir) => fs.existsSync(path.join(dir, 'shuttle.csv')))) return false;
  const why =
    `no Shuttle data (${process.env.STREAM_ML_SHUTTLE_MISSING ?? `not in ${shuttleCandidates().join(' or ')}`}); ` +
    'set SHUTTLE_DATA_DIR to a folder with shuttle.csv or the UCI files';
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}

/** Folder of the Shuttle data: SHUTTLE_DATA_DIR, else ../shared/data/shuttle beside the project, else the cache. */
export function shuttleDir(): string {
  const dir = shuttleCandidates().find((d) => fs.existsSync(path.join(d, 'shuttle.csv')));
  if (!dir) throw new Error(shuttleMissing() || 'no Shuttle data');
  return dir;
}
