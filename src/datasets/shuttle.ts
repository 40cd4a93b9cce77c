// The Statlog (Shuttle) data of the examples and the demo, as the outlier CSV (f1..f9,outlier): fetched once from
// the UCI archive into a folder, checked against known digests, and converted. Knows nothing of Node-RED.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { uncompressZ } from './unix-compress';

/** The UCI archive; STREAM_ML_UCI_URL replaces it (a mirror, or a local stand-in in tests). */
export const UCI_BASE_URL = 'https://archive.ics.uci.edu';
// The current UCI page serves one zip; the legacy folder still serves the files one by one.
const ZIP_PATH = '/static/public/148/statlog+shuttle.zip';
const LEGACY_PATH = '/ml/machine-learning-databases/statlog/shuttle/';

export interface ShuttleUrls {
  zip: string;
  legacy: string;
}

/** Where the download comes from: `base`, else STREAM_ML_UCI_URL, else the UCI archive. */
export function shuttleUrls(base = process.env.STREAM_ML_UCI_URL || UCI_BASE_URL): ShuttleUrls {
  const root = base.replace(/\/+$/, '');
  return { zip: root + ZIP_PATH, legacy: root + LEGACY_PATH };
}

// Known digests of the UCI files and of the converted CSV, so a bad download never becomes data.
export const SHUTTLE_SHA256: Readonly<Record<string, string>> = {
  'shuttle.trn': '87b24ee9fb5137e1d417659cf905d84d0e15342bbaa60770f1ae83da1a38200a',
  'shuttle.tst': 'f776934a628d9b94c482cb058a76ddaa63823e0f74aec065813c9dff3b89d661',
  'shuttle.csv': 'd73e12fa6e325d1cdf10a22b2046105f4ed969202f77bf8e296a51e2a6c90c57',
};

export const SHUTTLE_HEADER = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'outlier'];

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function checked<T extends string | Uint8Array>(name: string, data: T): T {
  const digest = sha256(data);
  if (digest !== SHUTTLE_SHA256[name]) {
    throw new Error(`${name} has sha256 ${digest}, expected ${SHUTTLE_SHA256[name]}`);
  }
  return data;
}

/**
 * UCI rows (9 integers then the class 1..7, space separated) to the outlier CSV: class 4 dropped, class 1 is
 * the inlier class (0), classes 2, 3, 5, 6, 7 are outliers (1). Rows keep their order: trn first, then tst.
 */
export function convertShuttle(...texts: string[]): string {
  const lines = [SHUTTLE_HEADER.join(',')];
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

/** A numeric CSV with a header line as records by column name, in file order. */
export function parseNumericCsv(text: string): Record<string, number>[] {
  const lines = text.trim().split(/\r?\n/);
  const names = lines[0].split(',').map((name) => name.trim());
  const records: Record<string, number>[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] === '') continue;
    const values = lines[i].split(',');
    const record: Record<string, number> = {};
    for (let j = 0; j < names.length; j++) record[names[j]] = Number(values[j]);
    records.push(record);
  }
  return records;
}

/** The Shuttle CSV (or any numeric CSV) as records `{ f1, …, f9, outlier }`, in stream order. */
export function readShuttleRecords(csvPath: string): Record<string, number>[] {
  return parseNumericCsv(fs.readFileSync(csvPath, 'utf8'));
}

/** True when `dir` holds the UCI files (shuttle.trn or shuttle.trn.Z, and shuttle.tst). */
export function hasUciFiles(dir: string): boolean {
  return (
    fs.existsSync(path.join(dir, 'shuttle.tst')) &&
    (fs.existsSync(path.join(dir, 'shuttle.trn')) || fs.existsSync(path.join(dir, 'shuttle.trn.Z')))
  );
}

function readTrn(dir: string): string {
  const plain = path.join(dir, 'shuttle.trn');
  if (fs.existsSync(plain)) return fs.readFileSync(plain, 'utf8');
  return uncompressZ(fs.readFileSync(path.join(dir, 'shuttle.trn.Z'))).toString('utf8');
}

function writeAtomically(file: string, data: string | Uint8Array): void {
  fs.writeFileSync(`${file}.partial`, data);
  fs.renameSync(`${file}.partial`, file);
}

/** Builds shuttle.csv in `outDir` from the UCI files in `dir`; returns its path. */
export function convertUciFolder(dir: string, outDir = dir): string {
  const csv = checked(
    'shuttle.csv',
    convertShuttle(readTrn(dir), fs.readFileSync(path.join(dir, 'shuttle.tst'), 'utf8')),
  );
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, 'shuttle.csv');
  writeAtomically(out, csv);
  return out;
}

type Fetch = typeof globalThis.fetch;

async function get(url: string, fetchImpl: Fetch): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: AbortSignal.timeout(120_000) });
  } catch (error) {
    // fetch says only "fetch failed"; the reason (DNS, refused, timeout) is in its cause.
    const e = error as Error & { cause?: Error };
    throw new Error(`GET ${url}: ${e.cause?.message ?? e.message}`);
  }
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

export interface DownloadOptions {
  /** Where the UCI files and shuttle.csv are written. */
  outDir: string;
  urls?: ShuttleUrls;
  fetchImpl?: Fetch;
  log?: (line: string) => void;
}

/**
 * Downloads the UCI files into `outDir` (the zip first, the legacy folder if that fails), checks their digests,
 * and builds shuttle.csv there; returns its path.
 */
export async function downloadShuttle({
  outDir,
  urls = shuttleUrls(),
  fetchImpl = globalThis.fetch,
  log = () => {},
}: DownloadOptions): Promise<string> {
  let trnZ: Uint8Array | undefined;
  let trn: Uint8Array | undefined;
  let tst: Uint8Array | undefined;
  try {
    log(`downloading ${urls.zip}`);
    const files = unzipSync(await get(urls.zip, fetchImpl));
    const find = (name: string) => Object.entries(files).find(([n]) => path.posix.basename(n) === name)?.[1];
    trnZ = find('shuttle.trn.Z');
    trn = trnZ ? undefined : find('shuttle.trn');
    tst = find('shuttle.tst');
    if (!(trnZ || trn) || !tst) {
      throw new Error(`the zip holds ${Object.keys(files).join(', ')}, not shuttle.trn(.Z) and shuttle.tst`);
    }
  } catch (error) {
    log(`${(error as Error).message}; trying ${urls.legacy}`);
    trnZ = await get(new URL('shuttle.trn.Z', urls.legacy).href, fetchImpl);
    trn = undefined;
    tst = await get(new URL('shuttle.tst', urls.legacy).href, fetchImpl);
  }
  if (trnZ) trn = uncompressZ(trnZ);
  fs.mkdirSync(outDir, { recursive: true });
  // The .Z file as UCI ships it is kept too, beside what it unpacks to.
  if (trnZ) writeAtomically(path.join(outDir, 'shuttle.trn.Z'), trnZ);
  writeAtomically(path.join(outDir, 'shuttle.trn'), checked('shuttle.trn', trn as Uint8Array));
  writeAtomically(path.join(outDir, 'shuttle.tst'), checked('shuttle.tst', tst));
  return convertUciFolder(outDir);
}

/**
 * The path of shuttle.csv in `dataDir`: there already, converted from the UCI files there, or downloaded into it
 * once. A failed download says what to fetch by hand and where to put it.
 */
export async function ensureShuttleCsv(options: DownloadOptions): Promise<string> {
  const { outDir } = options;
  const csv = path.join(outDir, 'shuttle.csv');
  if (fs.existsSync(csv)) return csv;
  if (hasUciFiles(outDir)) return convertUciFolder(outDir);
  const urls = options.urls ?? shuttleUrls();
  try {
    return await downloadShuttle({ ...options, urls });
  } catch (error) {
    throw new Error(
      `could not download the Shuttle data (${(error as Error).message}). Download ${urls.zip} yourself, unzip it, ` +
        `and put shuttle.trn.Z (or shuttle.trn) and shuttle.tst into ${outDir}`,
    );
  }
}
