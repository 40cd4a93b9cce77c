#!/usr/bin/env node
// The Statlog (Shuttle) data for the demo, as the outlier CSV (f1..f9,outlier). Looked for in this order:
//   1. SHUTTLE_DATA_DIR (shuttle.csv, or the UCI files shuttle.trn[.Z] + shuttle.tst to convert)
//   2. ../shared/data/shuttle beside the project (what the tests and CI use)
//   3. .cache/shuttle/ (an earlier download)
//   4. the UCI archive, downloaded once into .cache/shuttle/
//
//   node scripts/shuttle-data.mjs     prints the path of shuttle.csv, downloading it if needed
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
/* global AbortSignal */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const cacheDir = path.join(process.env.STREAM_ML_CACHE ?? path.join(root, '.cache'), 'shuttle');
export const sharedDir = path.resolve(root, '..', 'shared', 'data', 'shuttle');

// The current UCI page serves one zip; the legacy folder still serves the files one by one.
export const UCI_ZIP_URL = 'https://archive.ics.uci.edu/static/public/148/statlog+shuttle.zip';
export const UCI_LEGACY_URL = 'https://archive.ics.uci.edu/ml/machine-learning-databases/statlog/shuttle/';

// Known digests of the UCI files and of the converted CSV, so a bad download never becomes demo data.
export const SHA256 = {
  'shuttle.trn': '87b24ee9fb5137e1d417659cf905d84d0e15342bbaa60770f1ae83da1a38200a',
  'shuttle.tst': 'f776934a628d9b94c482cb058a76ddaa63823e0f74aec065813c9dff3b89d661',
  'shuttle.csv': 'd73e12fa6e325d1cdf10a22b2046105f4ed969202f77bf8e296a51e2a6c90c57',
};

export const HEADER = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'outlier'];

export function sha256(data) {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * UCI rows (9 integers then the class 1..7, space separated) to the outlier CSV: class 4 dropped, class 1 is
 * the inlier class (0), classes 2, 3, 5, 6, 7 are outliers (1). Rows keep their order: trn first, then tst.
 */
export function convertShuttle(...texts) {
  const lines = [HEADER.join(',')];
  for (const text of texts) {
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '') continue;
      const fields = line.split(/\s+/);
      if (fields.length !== 10) throw new Error(`a Shuttle row has ${fields.length} fields, not 10: "${line}"`);
      const cls = fields[9];
      if (cls === '4') continue;
      if (!/^[1-7]$/.test(cls)) throw new Error(`unknown Shuttle class "${cls}" in "${line}"`);
      lines.push([...fields.slice(0, 9), cls === '1' ? '0' : '1'].join(','));
    }
  }
  return lines.join('\n') + '\n';
}

/** Unix `compress` (.Z) data to its contents; gzip reads that format. */
export function uncompressZ(buffer) {
  const result = spawnSync('gzip', ['-dc'], { input: buffer, maxBuffer: 64 * 1024 * 1024 });
  if (result.error || result.status !== 0) {
    throw new Error(`gzip -dc could not read the .Z file: ${result.error?.message ?? result.stderr.toString()}`);
  }
  return result.stdout;
}

/** The files of a zip archive (stored or deflated entries), read through its central directory. */
export function unzip(buffer) {
  const eocd = buffer.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive');
  const count = buffer.readUInt16LE(eocd + 10);
  let at = buffer.readUInt32LE(eocd + 16);
  const files = {};
  for (let i = 0; i < count; i++) {
    if (buffer.readUInt32LE(at) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = buffer.readUInt16LE(at + 10);
    const size = buffer.readUInt32LE(at + 20);
    const nameLength = buffer.readUInt16LE(at + 28);
    const extraLength = buffer.readUInt16LE(at + 30);
    const commentLength = buffer.readUInt16LE(at + 32);
    const local = buffer.readUInt32LE(at + 42);
    const name = buffer.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    // The local header repeats name and extra field with lengths of its own.
    const start = local + 30 + buffer.readUInt16LE(local + 26) + buffer.readUInt16LE(local + 28);
    const data = buffer.subarray(start, start + size);
    if (method === 0) files[name] = data;
    else if (method === 8) files[name] = zlib.inflateRawSync(data);
    else throw new Error(`zip entry ${name} uses compression method ${method}, which this reader does not know`);
  }
  return files;
}

function checked(name, data) {
  const digest = sha256(data);
  if (digest !== SHA256[name]) throw new Error(`${name} has sha256 ${digest}, expected ${SHA256[name]}`);
  return data;
}

/** shuttle.trn from a folder, as text: the plain file if there, else the .Z one. */
function readTrn(dir) {
  const plain = path.join(dir, 'shuttle.trn');
  if (fs.existsSync(plain)) return fs.readFileSync(plain, 'utf8');
  return uncompressZ(fs.readFileSync(path.join(dir, 'shuttle.trn.Z'))).toString('utf8');
}

function hasUciFiles(dir) {
  return (
    fs.existsSync(path.join(dir, 'shuttle.tst')) &&
    (fs.existsSync(path.join(dir, 'shuttle.trn')) || fs.existsSync(path.join(dir, 'shuttle.trn.Z')))
  );
}

/** Builds shuttle.csv in `outDir` from the UCI files in `dir`. */
export function convertDir(dir, outDir = dir) {
  const csv = convertShuttle(readTrn(dir), fs.readFileSync(path.join(dir, 'shuttle.tst'), 'utf8'));
  checked('shuttle.csv', csv);
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, 'shuttle.csv');
  fs.writeFileSync(`${out}.partial`, csv);
  fs.renameSync(`${out}.partial`, out);
  return out;
}

async function get(url, fetchImpl) {
  let response;
  try {
    response = await fetchImpl(url, { signal: AbortSignal.timeout(120_000) });
  } catch (error) {
    // fetch says only "fetch failed"; the reason (DNS, refused, timeout) is in its cause.
    throw new Error(`GET ${url}: ${error.cause?.message ?? error.message}`);
  }
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/**
 * Downloads the UCI files into `outDir` (zip first, the legacy folder if that fails), checks their digests, and
 * builds shuttle.csv there. The base URLs can be changed for tests.
 */
export async function downloadShuttle({
  outDir = cacheDir,
  zipUrl = UCI_ZIP_URL,
  legacyUrl = UCI_LEGACY_URL,
  fetchImpl = globalThis.fetch,
  log = () => {},
} = {}) {
  let trn;
  let tst;
  try {
    log(`downloading ${zipUrl}`);
    const files = unzip(await get(zipUrl, fetchImpl));
    const find = (name) => Object.entries(files).find(([n]) => path.posix.basename(n) === name)?.[1];
    const z = find('shuttle.trn.Z');
    trn = z ? uncompressZ(z) : find('shuttle.trn');
    tst = find('shuttle.tst');
    if (!trn || !tst) throw new Error(`the zip holds ${Object.keys(files).join(', ')}, not shuttle.trn and .tst`);
  } catch (error) {
    log(`${error.message}; trying ${legacyUrl}`);
    trn = uncompressZ(await get(new URL('shuttle.trn.Z', legacyUrl).href, fetchImpl));
    tst = await get(new URL('shuttle.tst', legacyUrl).href, fetchImpl);
  }
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'shuttle.trn'), checked('shuttle.trn', trn));
  fs.writeFileSync(path.join(outDir, 'shuttle.tst'), checked('shuttle.tst', tst));
  return convertDir(outDir);
}

/** Path of the outlier CSV, from the first source that has it (see the top of this file). */
export async function shuttleCsvPath({ log = () => {} } = {}) {
  const fromEnv = process.env.SHUTTLE_DATA_DIR;
  if (fromEnv) {
    if (fs.existsSync(path.join(fromEnv, 'shuttle.csv'))) return path.join(fromEnv, 'shuttle.csv');
    if (hasUciFiles(fromEnv)) {
      log(`converting the UCI files in ${fromEnv} into ${cacheDir}`);
      return convertDir(fromEnv, cacheDir);
    }
    throw new Error(`SHUTTLE_DATA_DIR=${fromEnv} holds neither shuttle.csv nor shuttle.trn(.Z) and shuttle.tst`);
  }
  for (const dir of [sharedDir, cacheDir]) {
    if (fs.existsSync(path.join(dir, 'shuttle.csv'))) return path.join(dir, 'shuttle.csv');
  }
  if (hasUciFiles(cacheDir)) return convertDir(cacheDir);
  log(
    `the Shuttle data is not here yet: downloading it once from the UCI archive into ${path.relative(root, cacheDir)}`,
  );
  try {
    return await downloadShuttle({ log });
  } catch (error) {
    throw new Error(
      `could not download the Shuttle data (${error.message}). Download ${UCI_ZIP_URL} yourself, unzip it, and ` +
        'set SHUTTLE_DATA_DIR to the folder holding shuttle.trn.Z (or shuttle.trn) and shuttle.tst.',
    );
  }
}

/** The CSV as records `{ f1, …, f9, outlier }` with numbers, in stream order. */
export function readShuttleRecords(csvPath) {
  const [header, ...rows] = fs.readFileSync(csvPath, 'utf8').trim().split('\n');
  const names = header.split(',');
  return rows.map((row) => {
    const values = row.split(',');
    return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]));
  });
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
