// Where the benchmarks read the Shuttle data: the first of SHUTTLE_DATA_DIR, ../shared/data/shuttle and the
// project's .cache/shuttle that holds shuttle.csv, else a download into that cache, as the tests and the demo do.
import fs from 'node:fs';
import path from 'node:path';
import { ensureShuttleCsv } from '../src/datasets/shuttle';

const root = path.resolve(__dirname, '..', '..');

const cache = path.join(process.env.STREAM_ML_CACHE ?? path.join(root, '.cache'), 'shuttle');

/** The path of shuttle.csv where it already is, or undefined. */
export function findShuttleCsv(): string | undefined {
  const dirs = process.env.SHUTTLE_DATA_DIR
    ? [process.env.SHUTTLE_DATA_DIR]
    : [path.resolve(root, '..', 'shared', 'data', 'shuttle'), cache];
  return dirs.map((dir) => path.join(dir, 'shuttle.csv')).find((csv) => fs.existsSync(csv));
}

/** The path of shuttle.csv, downloaded first if it is nowhere yet. */
export async function shuttleCsvPath(): Promise<string> {
  const found = findShuttleCsv();
  if (found) return found;
  const into = process.env.SHUTTLE_DATA_DIR ?? cache;
  process.stderr.write(`[bench] the Shuttle data is not here yet: downloading it once into ${into}\n`);
  return ensureShuttleCsv({ outDir: into });
}
