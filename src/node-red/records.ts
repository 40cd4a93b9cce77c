// Where the learner and scorer find records in a message.
import type { DataRecord } from '../engine';

/**
 * Deepest nesting a record may have. Deeper values are refused with a clear error: walking them recursively (Node-RED's
 * message cloning, JSON.stringify) would overflow the stack.
 */
export const MAX_RECORD_DEPTH = 64;

/** One record (an object, or an array of values by position) or a batch (an array of records). */
export function recordsOf(value: unknown): DataRecord[] {
  return isBatch(value) ? (value as DataRecord[]) : [recordOf(value)];
}

/** The value as one record; throws when it cannot be one. */
export function recordOf(value: unknown): DataRecord {
  if (typeof value === 'object' && value !== null) {
    if (nestedDeeperThan(value, MAX_RECORD_DEPTH))
      throw new Error(`the record is nested more than ${MAX_RECORD_DEPTH} levels deep (or refers to itself)`);
    return value as DataRecord;
  }
  const what = value === undefined ? 'missing' : value === null ? 'null' : typeof value;
  throw new Error(`the record must be an object or an array, not ${what}`);
}

/** True when the value is a batch of records rather than one record (a batch too deep is not one: see recordOf). */
export function isBatch(value: unknown): boolean {
  if (!Array.isArray(value) || value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'object' || v === null) return false;
  }
  return !nestedDeeperThan(value, MAX_RECORD_DEPTH + 1);
}

const isContainer = (v: unknown): v is object => typeof v === 'object' && v !== null && !ArrayBuffer.isView(v);

/**
 * True when objects and arrays nest more than `limit` levels deep in `root` (itself level 1); a value that contains
 * itself counts as too deep. Walks with its own stack, never recursion. Values shared within the record are walked
 * again only when reached deeper, after the first 10,000, so that sharing cannot make the walk explode.
 */
export function nestedDeeperThan(root: object, limit: number): boolean {
  if (limit < 1) return true;
  const pending: object[] = [];
  const depths: number[] = [];
  let deepestSeen: Map<object, number> | undefined;
  let visits = 0;
  let node: object | undefined = root;
  let depth = 1;
  const push = (child: object): boolean => {
    if (depth + 1 > limit) return true;
    if (++visits > 10_000) {
      deepestSeen ??= new Map();
      const before = deepestSeen.get(child);
      if (before !== undefined && before >= depth + 1) return false;
      deepestSeen.set(child, depth + 1);
    }
    pending.push(child);
    depths.push(depth + 1);
    return false;
  };
  while (node !== undefined) {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v: unknown = node[i];
        if (isContainer(v) && push(v)) return true;
      }
    } else {
      const fields = node as Record<string, unknown>;
      for (const key in fields) {
        const v = fields[key];
        if (isContainer(v) && push(v)) return true;
      }
    }
    node = pending.pop();
    depth = depths.pop() ?? 0;
  }
  return false;
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
