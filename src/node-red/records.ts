// Where the learner and scorer find records in a message.
import type { DataRecord } from '../engine';

/** One record (an object, or an array of values by position) or a batch (an array of records). */
export function recordsOf(value: unknown): DataRecord[] {
  if (Array.isArray(value)) {
    const isBatch = value.length > 0 && value.every((v) => typeof v === 'object' && v !== null);
    return isBatch ? (value as DataRecord[]) : [value];
  }
  if (typeof value === 'object' && value !== null) return [value as DataRecord];
  throw new Error(`the record must be an object or an array, not ${value === undefined ? 'missing' : typeof value}`);
}

/** True when the value is a batch of records rather than one record. */
export function isBatch(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'object' && v !== null);
}
