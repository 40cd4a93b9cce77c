// The Shuttle outlier data as records, from where `npm test` found or downloaded it (never copied into the project).
import fs from 'node:fs';
import path from 'node:path';
import { shuttleDir } from './env';
export { shuttleMissing } from './env';

export interface ShuttleData {
  header: string[];
  rows: number[][];
  /** Each row as an object keyed by the header: f1..f9 and outlier. */
  records: Record<string, number>[];
}

let cached: ShuttleData | undefined;

export function readShuttle(): ShuttleData {
  if (cached) return cached;
  const lines = fs.readFileSync(path.join(shuttleDir(), 'shuttle.csv'), 'utf8').trim().split('\n');
  const header = lines[0].split(',');
  const rows = lines.slice(1).map((line) => line.split(',').map(Number));
  const records = rows.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i]])));
  cached = { header, rows, records };
  return cached;
}

/** The attribute table of the classic demo: C for f1..f9, the outlier field as the label. */
export const SHUTTLE_ATTRIBUTES: { name: string; type: string; label?: boolean }[] = [
  ...Array.from({ length: 9 }, (_, i) => ({ name: `f${i + 1}`, type: 'C' })),
  { name: 'outlier', type: 'X', label: true },
];
