#!/usr/bin/env node
// The Shuttle data for the demo and the tests, as the outlier CSV (f1..f9,outlier). Looked for in this order:
//   1. SHUTTLE_DATA_DIR (shuttle.csv, or the UCI files shuttle.trn[.Z] + shuttle.tst to convert)
//   2. ../shared/data/shuttle beside the project
//   3. .cache/shuttle/ (an earlier download)
//   4. the UCI archive (or STREAM_ML_UCI_URL), downloaded once into .cache/shuttle/
// The download and conversion are the package's own (src/datasets/shuttle.ts, from the build), as the examples use.
//
//   node scripts/shuttle-data.mjs     prints the path of shuttle.csv, downloading it if needed (after a build)
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const cacheDir = path.join(process.env.STREAM_ML_CACHE ?? path.join(root, '.cache'), 'shuttle');
export const sharedDir = path.resolve(root, '..', 'shared', 'data', 'shuttle');

const require = createRequire(import.meta.url);
function datasets() {
  const built = path.join(root, 'dist', 'src', 'datasets', 'shuttle.js');
  if (!fs.existsSync(built)) throw new Error(`${path.relative(root, built)} is missing: run \`npm run build\` first`);
  return require(built);
}

/** Path of the outlier CSV, from the first source that has it (see the top of this file). */
export async function shuttleCsvPath({ log = () => {} } = {}) {
  const { convertUciFolder, hasUciFiles, ensureShuttleCsv } = datasets();
  const fromEnv = process.env.SHUTTLE_DATA_DIR;
  if (fromEnv) {
    if (fs.existsSync(path.join(fromEnv, 'shuttle.csv'))) return path.join(fromEnv, 'shuttle.csv');
    if (hasUciFiles(fromEnv)) {
      log(`converting the UCI files in ${fromEnv} into ${cacheDir}`);
      return convertUciFolder(fromEnv, cacheDir);
    }
    throw new Error(`SHUTTLE_DATA_DIR=${fromEnv} holds neither shuttle.csv nor shuttle.trn(.Z) and shuttle.tst`);
  }
  if (fs.existsSync(path.join(sharedDir, 'shuttle.csv'))) return path.join(sharedDir, 'shuttle.csv');
  if (!fs.existsSync(path.join(cacheDir, 'shuttle.csv')) && !hasUciFiles(cacheDir)) {
    log(
      `the Shuttle data is not here yet: downloading it once from the UCI archive into ${path.relative(root, cacheDir)}`,
    );
  }
  return ensureShuttleCsv({ outDir: cacheDir, log });
}

/** The CSV as records `{ f1, …, f9, outlier }` with numbers, in stream order. */
export function readShuttleRecords(csvPath) {
  return datasets().readShuttleRecords(csvPath);
}

// No top-level await, so that CommonJS tests can load this module too.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  shuttleCsvPath({ log: (line) => process.stderr.write(`[shuttle] ${line}\n`) }).then(
    (csv) => process.stdout.write(`${csv}\n`),
    (error) => {
      process.stderr.write(`[shuttle] ${error.message}\n`);
      process.exitCode = 1;
    },
  );
}
