// Where the learner and scorer find records in a message.
import type { DataRecord } from '../engine';

/** One record (an object, or an array of values by position) or a batch (an array of records). */
export function recordsOf(value: unknown): DataRecord[] {
  return isBatch(value) ? (value as DataRecord[]) : [recordOf(value)];
}

/** The value as one record; throws when it cannot be one. */
export function recordOf(value: unknown): DataRecord {
  if (typeof value === 'object' && value !== null) return value as DataRecord;
  throw new Error(`the record must be an object or an array, not ${value === undefined ? 'missing' : typeof value}`);
}

/** True when the value is a batch of records rather than one record. */
export function isBatch(value: unknown): boolean {
  if (!Array.isArray(value) || value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'object' || v === null) return false;
  }
  return true;
}

/**
 * Reads a message property: a plain name (the usual `payload`, `topic`) directly, a path through
 * RED.util.getMessageProperty, which parses the expression on every call.
 */
export function messagePropertyReader(
  getMessageProperty: (msg: object, expression: string) => unknown,
  expression: string,
): (msg: object) => unknown {
  const name = expression.startsWith('msg.') ? expression.slice(4) : expression;
  if (/^[A-Za-z_$][\w$]*$/.test(name)) return (msg) => (msg as Record<string, unknown>)[name];
  return (msg) => getMessageProperty(msg, expression);
}
