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

/** Folder of the Shuttle data: SHUTTLE_DATA_DIR, else ../shared/data/shuttle beside the project. */
export function shuttleDir(): string {
  const dir = process.env.SHUTTLE_DATA_DIR ?? path.resolve(projectRoot, '..', 'shared', 'data', 'shuttle');
  if (!fs.existsSync(path.join(dir, 'shuttle.csv')))
    throw new Error(`Shuttle data not found in ${dir} (set SHUTTLE_DATA_DIR)`);
  return dir;
}
