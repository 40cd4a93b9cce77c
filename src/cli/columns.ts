// Column types for a CSV: parsing --types, guessing them from the first rows, and turning a row of
// strings into the values the engine expects for each type.

/** SymetryML's codes, as the engine uses them. */
export type ColumnType = 'C' | 'B' | 'T' | 'S' | 'X';
const TYPES: readonly ColumnType[] = ['C', 'B', 'T', 'S', 'X'];

/** Rows read before the types are guessed. */
export const GUESS_ROWS = 1000;
/** A string column with more distinct values than this (in the rows read) is guessed S, not T. */
export const MAX_CATEGORIES = 50;

export function parseTypes(spec: string): ColumnType[] {
  const parts = spec.split(',').map((t) => t.trim().toUpperCase());
  for (const [i, t] of parts.entries())
    if (!TYPES.includes(t as ColumnType))
      throw new Error(`--types: column ${i + 1} has type ${JSON.stringify(t)}; use C, B, T, S or X`);
  return parts as ColumnType[];
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const BOOLEAN = /^(true|false)$/i;

/** Whether a CSV field is a plain decimal number (no hex, no "Infinity", no blanks). */
export function isNumeric(s: string): boolean {
  return NUMBER.test(s.trim());
}

/**
 * Guesses a type per column from sample rows: numbers C, only 0/1 or true/false B, a few distinct
 * strings T, many distinct strings S (kept, but ignored by the engine unless asked), nothing at all X.
 * Empty fields are missing values and do not count. The label column, if any, gets X.
 */
export function guessTypes(width: number, rows: string[][], labelIndex = -1): ColumnType[] {
  const types: ColumnType[] = [];
  for (let c = 0; c < width; c++) {
    if (c === labelIndex) {
      types.push('X');
      continue;
    }
    let seen = 0;
    let numeric = true;
    let binary = true;
    const distinct = new Set<string>();
    for (const row of rows) {
      const v = (row[c] ?? '').trim();
      if (v === '') continue;
      seen++;
      if (distinct.size <= MAX_CATEGORIES) distinct.add(v.toLowerCase());
      if (BOOLEAN.test(v)) continue;
      if (v !== '0' && v !== '1') binary = false;
      if (!isNumeric(v)) numeric = false;
    }
    if (seen === 0) types.push('X');
    else if (binary) types.push('B');
    else if (numeric && ![...distinct].some((v) => BOOLEAN.test(v))) types.push('C');
    else types.push(distinct.size > MAX_CATEGORIES ? 'S' : 'T');
  }
  return types;
}

/** The engine value of a field: numbers for C and B (booleans as 0/1), strings otherwise; '' is missing. */
export function convert(type: ColumnType, raw: string): unknown {
  if (type === 'X') return undefined;
  const v = raw.trim();
  if (v === '') return undefined;
  if (type === 'C' || type === 'B') {
    if (type === 'B' && BOOLEAN.test(v)) return v.toLowerCase() === 'true' ? 1 : 0;
    // A value that is not a number is passed on as it is, so the engine counts it as invalid.
    return isNumeric(v) ? Number(v) : raw;
  }
  return raw;
}

/** Label value of a field: 1 for an anomaly (a non-zero number or "true"), 0 for normal, NaN if neither. */
export function labelOf(raw: string): number {
  const v = raw.trim();
  if (BOOLEAN.test(v)) return v.toLowerCase() === 'true' ? 1 : 0;
  if (!isNumeric(v)) return NaN;
  return Number(v) !== 0 ? 1 : 0;
}
