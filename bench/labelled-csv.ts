// The benchmarks' data format: a CSV of numeric columns with a header, one of them `outlier` (non-zero: an anomaly).
import { readCsvFileSync } from '../src/cli/csv';

export const LABEL = 'outlier';

/** Every row as numbers (the label column included), and the labels as 0/1. */
export function readLabelledCsv(csvPath: string): { names: string[]; records: number[][]; labels: Uint8Array } {
  const rows = readCsvFileSync(csvPath);
  const names = rows[0].fields;
  const labelIndex = names.indexOf(LABEL);
  if (labelIndex < 0) throw new Error(`${csvPath}: no "${LABEL}" column`);
  const records: number[][] = [];
  const labels = new Uint8Array(rows.length - 1);
  for (let i = 1; i < rows.length; i++) {
    const rec = rows[i].fields.map(Number);
    labels[i - 1] = rec[labelIndex] !== 0 ? 1 : 0;
    records.push(rec);
  }
  return { names, records, labels };
}
