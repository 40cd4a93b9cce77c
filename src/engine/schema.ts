// Attribute schema: turns records (objects by name, arrays by position) into numeric feature vectors.
//
// C and B attributes give one feature each; a T attribute (or an S attribute kept as a category) gives one 0/1
// feature per value, created the first time a value is learned; S, X and the label give none. A value that does not
// fit its type is reported, never written into the vector as a number the statistics could take.
import type { AttributeSpec, AttributeType, DataRecord } from './types';

const TYPES: readonly AttributeType[] = ['C', 'B', 'T', 'S', 'X'];
/** Field names taken as the label when the schema is guessed. */
export const LABEL_NAMES = ['label', 'outlier', 'anomaly', 'is_anomaly', 'isanomaly', 'target', 'class', 'y'];

/** Checks a schema given by a user and returns a clean copy. */
export function validateSchema(attributes: unknown): AttributeSpec[] {
  if (!Array.isArray(attributes)) throw new Error('attributes must be an array of { name, type }');
  const seen = new Set<string>();
  return attributes.map((a, i) => {
    if (!a || typeof a !== 'object') throw new Error(`attribute ${i}: expected { name, type }`);
    const { name, type, role, asCategory } = a as AttributeSpec;
    if (typeof name !== 'string' || name === '') throw new Error(`attribute ${i}: name must be a non-empty string`);
    if (seen.has(name)) throw new Error(`attribute ${i}: duplicate name "${name}"`);
    seen.add(name);
    if (!TYPES.includes(type)) throw new Error(`attribute "${name}": type must be one of ${TYPES.join(', ')}`);
    if (role !== undefined && role !== 'label') throw new Error(`attribute "${name}": role must be "label"`);
    const spec: AttributeSpec = { name, type };
    if (role) spec.role = role;
    if (asCategory) {
      if (type !== 'S') throw new Error(`attribute "${name}": asCategory applies to S attributes only`);
      spec.asCategory = true;
    }
    return spec;
  });
}

/**
 * Guesses a schema from sample records: numbers C (B when only 0 and 1 occur, both of them), booleans B, strings T
 * (S when nearly every value differs), anything else X. A field named like an id (isIdName) whose values count up,
 * record after record, is X: a counter says nothing about whether a record is normal. A field named like a label
 * (LABEL_NAMES), or named in labelFields (a field known to be the label whatever its name), gets the label role.
 */
export function guessSchema(records: DataRecord[], labelFields: readonly string[] = []): AttributeSpec[] {
  const names: string[] = [];
  const index = new Map<string, number>();
  const samples: unknown[][] = [];
  for (const record of records) {
    if (Array.isArray(record)) {
      record.forEach((v, i) => {
        const name = String(i);
        if (!index.has(name)) {
          index.set(name, names.length);
          names.push(name);
          samples.push([]);
        }
        samples[index.get(name)!].push(v);
      });
    } else if (record && typeof record === 'object') {
      for (const [name, v] of Object.entries(record)) {
        if (!index.has(name)) {
          index.set(name, names.length);
          names.push(name);
          samples.push([]);
        }
        samples[index.get(name)!].push(v);
      }
    }
  }
  return names.map((name, i) => {
    const counter = isIdName(name) && countsUp(samples[i], records.length);
    const spec: AttributeSpec = { name, type: counter ? 'X' : guessType(samples[i]) };
    if (labelFields.includes(name) || LABEL_NAMES.includes(name.toLowerCase())) spec.role = 'label';
    return spec;
  });
}

/** id, _id, idx, index, seq, row, or a name ending in _id, -id or a capitalised Id/ID (recordId): not "valid". */
export function isIdName(name: string): boolean {
  return ID_NAMES.includes(name.toLowerCase()) || /[_-]id$/i.test(name) || /[a-z0-9](Id|ID)$/.test(name);
}

const ID_NAMES = ['id', '_id', 'idx', 'index', 'seq', 'row'];

/**
 * Integers present in every sampled record and strictly increasing in arrival order: a counter, not a measurement.
 * Too few values tell nothing; records arriving out of order (partitions interleaved) do not count up.
 */
function countsUp(values: unknown[], records: number): boolean {
  if (values.length < 8 || values.length !== records) return false;
  let last = -Infinity;
  for (const v of values) {
    const n = typeof v === 'number' ? v : typeof v === 'string' ? parseNumber(v) : null;
    if (n === null || !Number.isInteger(n) || n <= last) return false;
    last = n;
  }
  return true;
}

function guessType(values: unknown[]): AttributeType {
  const present = values.filter((v) => v !== null && v !== undefined && v !== '');
  if (present.length === 0) return 'X';
  if (present.every((v) => typeof v === 'boolean')) return 'B';
  if (present.every((v) => typeof v === 'number' || (typeof v === 'string' && parseNumber(v) !== null))) {
    const numbers = present.map((v) => (typeof v === 'number' ? v : parseNumber(v as string)!));
    if (numbers.some((v) => !Number.isFinite(v))) return 'C';
    const binary = numbers.every((v) => v === 0 || v === 1) && numbers.includes(0) && numbers.includes(1);
    return binary ? 'B' : 'C';
  }
  if (present.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
    const distinct = new Set(present.map((v) => categoryKey(v))).size;
    return present.length >= 8 && distinct > 0.9 * present.length ? 'S' : 'T';
  }
  return 'X';
}

/** A numeric string as a number; null when the string is not a plain number. */
export function parseNumber(s: string): number | null {
  const t = s.trim();
  if (t === '') return null;
  const v = Number(t);
  return Number.isNaN(v) ? null : v;
}

/** Category values are compared trimmed and lower-cased. */
export function categoryKey(v: unknown): string {
  return String(v).trim().toLowerCase();
}

const enum Kind {
  Continuous,
  Binary,
  Category,
  Label,
  Ignored,
}

/** Turns records into feature vectors for one schema. */
export class RecordEncoder {
  readonly attributes: AttributeSpec[];
  /** Feature names: the attribute name, or "name=value" for a category value. */
  readonly featureNames: string[] = [];
  /** For each feature, the index of its attribute. */
  readonly featureAttribute: number[] = [];
  /** Per attribute: whether a value was invalid in the last encode(). */
  readonly invalidFlags: Uint8Array;
  /** Value of the label attribute in the last encode() (NaN when absent). */
  label = NaN;
  private readonly kinds: Kind[];
  private readonly names: string[];
  /** For each attribute, its feature (C, B) or -1. */
  private readonly featureOf: Int32Array;
  /** For each category attribute, value -> feature. */
  private readonly categories: (Map<string, number> | null)[];
  private readonly categoryFeatures: number[][];
  private readonly labelAttribute: number;
  /** Read a record (object, or array) whose continuous fields all hold numbers, when the schema allows (see fieldReader). */
  private readonly readObject: FieldReader | null;
  private readonly readArray: FieldReader | null;
  private readonly labelBox = new Float64Array(1);

  constructor(attributes: AttributeSpec[], categories?: Record<string, string[]>) {
    this.attributes = validateSchema(attributes);
    this.names = this.attributes.map((a) => a.name);
    this.kinds = this.attributes.map((a) => {
      if (a.role === 'label') return Kind.Label;
      if (a.type === 'C') return Kind.Continuous;
      if (a.type === 'B') return Kind.Binary;
      if (a.type === 'T' || (a.type === 'S' && a.asCategory)) return Kind.Category;
      return Kind.Ignored;
    });
    this.labelAttribute = this.kinds.indexOf(Kind.Label);
    this.invalidFlags = new Uint8Array(this.attributes.length);
    this.featureOf = new Int32Array(this.attributes.length).fill(-1);
    this.categories = this.kinds.map((k) => (k === Kind.Category ? new Map<string, number>() : null));
    this.categoryFeatures = this.attributes.map(() => []);
    this.kinds.forEach((kind, a) => {
      if (kind === Kind.Continuous || kind === Kind.Binary) {
        this.featureOf[a] = this.featureNames.length;
        this.featureNames.push(this.names[a]);
        this.featureAttribute.push(a);
      }
    });
    this.readObject = fieldReader(this.names, this.kinds, this.featureOf, false);
    this.readArray = fieldReader(this.names, this.kinds, this.featureOf, true);
    if (categories) {
      for (const [name, values] of Object.entries(categories)) {
        const a = this.names.indexOf(name);
        if (a < 0 || this.kinds[a] !== Kind.Category) throw new Error(`no category attribute "${name}"`);
        for (const value of values) this.addCategory(a, value);
      }
    }
  }

  get dimension(): number {
    return this.featureNames.length;
  }

  /** Values of each category attribute, in feature order (for snapshots). */
  categoryValues(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    this.categories.forEach((map, a) => {
      if (map) out[this.names[a]] = [...map.keys()];
    });
    return out;
  }

  /**
   * Writes the record's features into out (length >= dimension). Invalid values leave NaN in their features and
   * are flagged in invalidFlags. With createCategories, a new category value adds a feature (onNewFeature is called
   * first, so the caller can grow its state); otherwise an unseen value leaves all of its attribute's features 0.
   */
  encode(
    record: DataRecord,
    out: Float64Array,
    createCategories: boolean,
    onNewFeature?: (feature: number) => Float64Array,
  ): number {
    const isArray = Array.isArray(record);
    const read = isArray ? this.readArray : this.readObject;
    if (read !== null) {
      const bad = read(record, out, this.invalidFlags, this.labelBox);
      if (bad >= 0) {
        this.label = this.labelBox[0];
        return bad;
      }
    }
    const kinds = this.kinds;
    let invalid = 0;
    this.label = NaN;
    for (let a = 0; a < kinds.length; a++) {
      const kind = kinds[a];
      if (kind === Kind.Ignored) continue;
      const value = isArray ? (record as unknown[])[a] : (record as Record<string, unknown>)[this.names[a]];
      let bad = false;
      if (kind === Kind.Continuous) {
        const v = typeof value === 'number' ? value : typeof value === 'string' ? (parseNumber(value) ?? NaN) : NaN;
        if (v - v !== 0) bad = true; // NaN or infinite
        out[this.featureOf[a]] = v;
      } else if (kind === Kind.Binary) {
        const v = binaryValue(value);
        if (v < 0) bad = true;
        out[this.featureOf[a]] = bad ? NaN : v;
      } else if (kind === Kind.Category) {
        const features = this.categoryFeatures[a];
        for (let i = 0; i < features.length; i++) out[features[i]] = 0;
        if (value === null || value === undefined || typeof value === 'object') bad = true;
        else {
          const key = categoryKey(value);
          if (key === '') bad = true;
          else {
            let feature = this.categories[a]!.get(key);
            if (feature === undefined && createCategories) {
              feature = this.addCategory(a, key);
              if (onNewFeature) out = onNewFeature(feature);
              for (let i = 0; i < features.length; i++) out[features[i]] = 0;
            }
            if (feature !== undefined) out[feature] = 1;
          }
        }
        if (bad) for (let i = 0; i < features.length; i++) out[features[i]] = NaN;
      } else {
        this.label = labelValue(value);
        continue;
      }
      this.invalidFlags[a] = bad ? 1 : 0;
      if (bad) invalid++;
    }
    return invalid;
  }

  /** Why the last encode() failed, for messages. */
  describeInvalid(record: DataRecord): string {
    const parts: string[] = [];
    this.invalidFlags.forEach((flag, a) => {
      if (!flag) return;
      const value = Array.isArray(record) ? record[a] : (record as Record<string, unknown>)[this.names[a]];
      const shown = value === undefined ? 'missing' : shownValue(value);
      parts.push(`${this.names[a]} (${this.attributes[a].type}): ${shown}`);
    });
    return `invalid value${parts.length > 1 ? 's' : ''}: ${parts.join(', ')}`;
  }

  /** The features of attribute a. */
  featuresOf(a: number): number[] {
    return this.featureOf[a] >= 0 ? [this.featureOf[a]] : this.categoryFeatures[a];
  }

  get hasLabel(): boolean {
    return this.labelAttribute >= 0;
  }

  private addCategory(a: number, key: string): number {
    const feature = this.featureNames.length;
    this.categories[a]!.set(key, feature);
    this.categoryFeatures[a].push(feature);
    this.featureNames.push(`${this.names[a]}=${key}`);
    this.featureAttribute.push(a);
    return feature;
  }
}

type FieldReader = (record: object, out: Float64Array, flags: Uint8Array, label: Float64Array) => number;

/**
 * For a schema of continuous attributes (and a label, and ignored ones): a function reading a record's fields by
 * constant names (or positions), which the JIT turns into fast loads where a loop over names does slow lookups by
 * key. It returns the invalid count as encode() does, or -1 when a field is not a number (encode() then handles it).
 */
function fieldReader(names: string[], kinds: Kind[], featureOf: Int32Array, byPosition: boolean): FieldReader | null {
  if (!kinds.every((k) => k === Kind.Continuous || k === Kind.Label || k === Kind.Ignored)) return null;
  const lines = ['let v;', 'let bad = 0;', 'label[0] = NaN;'];
  kinds.forEach((kind, a) => {
    const field = `r[${byPosition ? a : JSON.stringify(names[a])}]`;
    if (kind === Kind.Label)
      lines.push(`v = ${field};`, 'if (typeof v === "number") label[0] = v;', 'else if (v !== undefined) return -1;');
    if (kind !== Kind.Continuous) return;
    lines.push(
      `v = ${field};`,
      'if (typeof v !== "number") return -1;',
      `out[${featureOf[a]}] = v;`,
      `if (v - v !== 0) { flags[${a}] = 1; bad++; } else flags[${a}] = 0;`,
    );
  });
  lines.push('return bad;');
  // One function per distinct code: a fresh model of the same schema reuses it already optimised.
  const code = lines.join('\n');
  let reader = readers.get(code);
  if (reader === undefined) {
    try {
      reader = new Function('r', 'out', 'flags', 'label', code) as FieldReader;
    } catch {
      return null; // code generation disallowed (node --disallow-code-generation-from-strings): the general path
    }
    if (readers.size >= 256) readers.clear();
    readers.set(code, reader);
  }
  return reader;
}

const readers = new Map<string, FieldReader>();

function binaryValue(value: unknown): number {
  if (value === 0 || value === false) return 0;
  if (value === 1 || value === true) return 1;
  if (typeof value === 'string') {
    const t = value.trim().toLowerCase();
    if (t === '0' || t === 'false') return 0;
    if (t === '1' || t === 'true') return 1;
  }
  return -1;
}

function labelValue(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    const t = value.trim().toLowerCase();
    if (t === 'true') return 1;
    if (t === 'false') return 0;
    return parseNumber(t) ?? NaN;
  }
  return NaN;
}

/** A value as messages show it: JSON, or a word when it cannot be written as JSON (circular, nested too deeply). */
function shownValue(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Array.isArray(value) ? 'an array that cannot be shown' : 'an object that cannot be shown';
  }
}
