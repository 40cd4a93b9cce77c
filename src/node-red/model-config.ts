// Turns the learner and scorer dialogs' settings into engine options, with the errors a user can act on.
import {
  DEFAULT_WARMUP_RECORDS,
  type AttributeSpec,
  type AttributeType,
  type DetectorName,
  type InvalidValuePolicy,
  type Model,
  type ModelOptions,
  type ThresholdSpec,
} from '../engine';

const TYPES: AttributeType[] = ['C', 'B', 'T', 'S', 'X'];
const DETECTORS: DetectorName[] = ['auto', 'gaussian', 'histogram', 'hst', 'ecod'];
const POLICIES: InvalidValuePolicy[] = ['skip', 'impute', 'error'];

/** The attribute table as the dialog stores it: rows of field, type and whether it is the label. */
export interface AttributeRow {
  name: string;
  type: string;
  label?: boolean;
}

export function parseAttributeTable(rows: unknown): AttributeSpec[] | undefined {
  if (rows === undefined || rows === null || rows === '') return undefined;
  const list = typeof rows === 'string' ? (JSON.parse(rows) as unknown) : rows;
  if (!Array.isArray(list)) throw new Error('the attribute table must be a list of {name, type} rows');
  if (list.length === 0) return undefined;
  const names = new Set<string>();
  return list.map((row: AttributeRow, i) => {
    const name = String(row?.name ?? '').trim();
    const type = String(row?.type ?? '')
      .trim()
      .toUpperCase() as AttributeType;
    if (!name) throw new Error(`attribute ${i + 1} has no field name`);
    if (names.has(name)) throw new Error(`attribute "${name}" appears twice`);
    names.add(name);
    if (!TYPES.includes(type)) throw new Error(`attribute "${name}" has type "${row?.type}"; use one of C, B, T, S, X`);
    const spec: AttributeSpec = { name, type };
    if (row.label) spec.role = 'label';
    return spec;
  });
}

/** "C,C,C,X": the compact form the classic demo uses, with field names taken from the records' positions. */
export function parseTypeList(types: string, names?: string[]): AttributeSpec[] {
  return types
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((type, i) => {
      if (!TYPES.includes(type.toUpperCase() as AttributeType))
        throw new Error(`type ${i + 1} is "${type}"; use C, B, T, S or X`);
      return { name: names?.[i] ?? `f${i + 1}`, type: type.toUpperCase() as AttributeType };
    });
}

export function parseDetector(value: unknown, fallback: DetectorName = 'auto'): DetectorName {
  if (value === undefined || value === '') return fallback;
  if (!DETECTORS.includes(value as DetectorName)) {
    throw new Error(`detector "${String(value)}" is unknown; use one of ${DETECTORS.join(', ')}`);
  }
  return value as DetectorName;
}

/** The learner's "Also learn" list: known names, each once, without the default detector. */
export function parseExtraDetectors(value: unknown, main: DetectorName): DetectorName[] {
  if (value === undefined || value === null || value === '') return [];
  const list = typeof value === 'string' ? value.split(',').map((v) => v.trim()) : value;
  if (!Array.isArray(list)) throw new Error('the detectors to also learn must be a list of names');
  const names = list.map((name) => parseDetector(name));
  return [...new Set(names)].filter((name) => name !== main);
}

/**
 * The settings of the dialog that an existing model does not have (a redeploy keeps the model, so they only take
 * effect after a reset): their dialog labels, for a warning.
 */
export function settingsNotInModel(model: Model, options: ModelOptions): string[] {
  const kept = model.resolvedOptions;
  const differ: string[] = [];
  if (kept.detector !== (options.detector ?? 'auto')) differ.push('Detector');
  const extras = (options.extraDetectors ?? []).slice().sort().join();
  if (kept.extraDetectors.slice().sort().join() !== extras) differ.push('Also learn');
  if ((kept.halfLife ?? undefined) !== options.halfLife) differ.push('Half-life');
  if (kept.warmupRecords !== (options.warmupRecords ?? DEFAULT_WARMUP_RECORDS)) differ.push('Warm-up');
  if (kept.invalidValues !== (options.invalidValues ?? 'skip')) differ.push('Invalid values');
  return differ;
}

export function parseInvalidPolicy(value: unknown): InvalidValuePolicy {
  if (value === undefined || value === '') return 'skip';
  if (!POLICIES.includes(value as InvalidValuePolicy))
    throw new Error(`invalid-value policy "${String(value)}" is unknown`);
  return value as InvalidValuePolicy;
}

/** Empty means "not set"; anything else must be a positive number. */
export function parseOptionalPositive(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number, not "${String(value)}"`);
  return n;
}

/** The scorer dialog's threshold: kind fixed|quantile|spot with its one parameter. */
export function parseThreshold(kind: unknown, value: unknown): ThresholdSpec {
  const n = Number(value);
  switch (kind) {
    case 'fixed':
      if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error('a fixed threshold is a score between 0 and 1');
      return { kind: 'fixed', value: n };
    case 'quantile':
      if (!Number.isFinite(n) || n <= 0 || n >= 1)
        throw new Error('a quantile threshold is between 0 and 1, e.g. 0.99');
      return { kind: 'quantile', q: n };
    case 'spot':
    case undefined:
    case '': {
      const risk = value === undefined || value === '' ? 1e-3 : n;
      if (!Number.isFinite(risk) || risk <= 0 || risk >= 1)
        throw new Error('the extreme-value risk is between 0 and 1, e.g. 0.001');
      return { kind: 'spot', risk };
    }
    default:
      throw new Error(`threshold kind "${String(kind)}" is unknown; use fixed, quantile or spot`);
  }
}

/** Same attributes in the same order with the same types and roles. */
export function sameAttributes(a: AttributeSpec[], b: AttributeSpec[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => x.name === b[i].name && x.type === b[i].type && (x.role ?? '') === (b[i].role ?? ''))
  );
}
