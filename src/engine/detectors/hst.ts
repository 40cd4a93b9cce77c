// Half-Space Trees (Tan, Ting and Liu, IJCAI 2011), learning the feature ranges from the stream.
//
// The first window of records is kept; its per-feature ranges set the workspace, and the trees are grown then
// (random feature, split at the middle of the node's randomly shifted workspace). Each node counts records in a
// reference window and in the latest one; at the end of every window the latest counts become the reference. A
// record's score is low when it ends in nodes that held many records of the reference window. The trees are rebuilt
// from the seed and the ranges, so snapshots carry only masses.
import { SeededRandom } from '../random';
import { Detector, finiteNumber, numberArray, requireKind, type DetectorSnapshot } from './detector';

export interface HalfSpaceTreesOptions {
  /** Number of trees (default 35: fewer make the scores depend much more on the seed). */
  trees?: number;
  /** Depth of each tree (default 8). */
  height?: number;
  /** Records per window (default 250). */
  windowSize?: number;
  seed?: number;
}

export class HalfSpaceTrees extends Detector {
  readonly kind = 'hst';
  dimension: number;
  private readonly trees: number;
  private readonly height: number;
  private readonly windowSize: number;
  private readonly seed: number;
  private readonly sizeLimit: number;
  private readonly internalNodes: number;
  private readonly nodesPerTree: number;
  private splitFeature: Int32Array;
  private splitValue: Float64Array;
  /** Record counts per node (integers: 32 bits are plenty and halve the memory). */
  private reference: Uint32Array;
  private latest: Uint32Array;
  private lo: Float64Array | null = null;
  private hi: Float64Array | null = null;
  /** The first window, kept until the trees are grown. */
  private firstWindow: number[][] = [];
  private inWindow = 0;
  private records = 0;
  private readonly maxMass: number;
  /** Where scoring stopped in each tree, for the record scored last (lastX). */
  private readonly stops: Int32Array;
  private lastX: Float64Array;
  private stopsValid = false;

  constructor(dimension: number, options: HalfSpaceTreesOptions = {}) {
    super();
    this.dimension = dimension;
    this.trees = options.trees ?? 35;
    this.height = options.height ?? 8;
    this.windowSize = options.windowSize ?? 250;
    this.seed = options.seed ?? 1;
    if (!(this.trees >= 1 && this.height >= 1 && this.height <= 20 && this.windowSize >= 1))
      throw new Error('hst: trees, height (1..20) and windowSize must be positive');
    this.sizeLimit = 0.1 * this.windowSize;
    this.internalNodes = (1 << this.height) - 1;
    this.nodesPerTree = (1 << (this.height + 1)) - 1;
    this.splitFeature = new Int32Array(this.trees * this.internalNodes);
    this.splitValue = new Float64Array(this.trees * this.internalNodes);
    this.reference = new Uint32Array(this.trees * this.nodesPerTree);
    this.latest = new Uint32Array(this.trees * this.nodesPerTree);
    this.maxMass = this.windowSize * Math.pow(2, this.height);
    this.stops = new Int32Array(this.trees);
    this.lastX = new Float64Array(dimension);
  }

  get recordsLearned(): number {
    return this.records;
  }

  /** True once the first window has set the ranges and grown the trees. */
  get ready(): boolean {
    return this.lo !== null;
  }

  override squash(raw: number): number {
    return raw > 0 ? raw / (raw + 1) : 0;
  }

  rawScore(x: ArrayLike<number>, parts?: Float64Array): number {
    if (parts) parts.fill(0, 0, this.dimension);
    if (this.lo === null) return 0;
    const ref = this.reference;
    const feature = this.splitFeature;
    const split = this.splitValue;
    const height = this.height;
    const limit = this.sizeLimit;
    const stops = this.stops;
    let mass = 0;
    for (let t = 0; t < this.trees; t++) {
      const base = t * this.nodesPerTree;
      const splitBase = t * this.internalNodes;
      let node = 0;
      let depth = 0;
      let lastFeature = -1;
      while (depth < height && ref[base + node] >= limit) {
        const f = feature[splitBase + node];
        lastFeature = f;
        node = x[f] < split[splitBase + node] ? 2 * node + 1 : 2 * node + 2;
        depth++;
      }
      mass += ref[base + node] * (1 << depth);
      stops[t] = node;
      // The split that led into a sparse node is what set this record apart in this tree.
      if (parts && lastFeature >= 0 && depth < height) parts[lastFeature] += 1;
    }
    for (let j = 0; j < this.dimension; j++) this.lastX[j] = x[j];
    this.stopsValid = true;
    return Math.log(this.maxMass) - Math.log(mass / this.trees + 1);
  }

  learnOne(x: ArrayLike<number>): void {
    this.records++;
    if (this.lo === null) {
      this.firstWindow.push(Array.from({ length: this.dimension }, (_, j) => x[j]));
      if (this.firstWindow.length >= this.windowSize) this.grow();
      return;
    }
    // Learning the record just scored: its paths are known down to where scoring stopped.
    let same = this.stopsValid;
    for (let j = 0; same && j < this.dimension; j++) same = this.lastX[j] === x[j];
    this.stopsValid = false;
    this.count(x, this.latest, same ? this.stops : null);
    if (++this.inWindow >= this.windowSize) {
      const swap = this.reference;
      this.reference = this.latest;
      this.latest = swap;
      this.latest.fill(0);
      this.inWindow = 0;
    }
  }

  addFeature(): void {
    this.dimension++;
    this.lastX = new Float64Array(this.dimension);
    this.stopsValid = false;
    for (const row of this.firstWindow) row.push(0);
    if (this.lo !== null) {
      // Grown trees never split on a feature they did not know; the range is kept for snapshots.
      const lo = new Float64Array(this.dimension);
      lo.set(this.lo);
      const hi = new Float64Array(this.dimension);
      hi.set(this.hi!);
      hi[this.dimension - 1] = 1;
      this.lo = lo;
      this.hi = hi;
    }
  }

  override merge(other: Detector): void {
    if (
      !(other instanceof HalfSpaceTrees) ||
      other.seed !== this.seed ||
      other.trees !== this.trees ||
      other.height !== this.height ||
      other.dimension !== this.dimension
    )
      return super.merge(other);
    if (other.lo === null) {
      for (const row of other.firstWindow) this.learnOne(row);
      return;
    }
    if (this.lo === null) {
      // Adopt the other's trees, then count our first window in its reference masses.
      const mine = this.firstWindow;
      this.firstWindow = [];
      this.setRanges(Float64Array.from(other.lo), Float64Array.from(other.hi!));
      this.reference.set(other.reference);
      this.latest.set(other.latest);
      this.inWindow = other.inWindow;
      for (const row of mine) this.count(row, this.reference);
      this.records += other.records;
      return;
    }
    for (let j = 0; j < this.dimension; j++) {
      if (this.lo[j] !== other.lo[j] || this.hi![j] !== other.hi![j])
        throw new Error('hst detectors with different ranges cannot be merged');
    }
    for (let i = 0; i < this.reference.length; i++) {
      this.reference[i] += other.reference[i];
      this.latest[i] += other.latest[i];
    }
    this.records += other.records;
  }

  toJSON(): DetectorSnapshot {
    return {
      kind: this.kind,
      dimension: this.dimension,
      trees: this.trees,
      height: this.height,
      windowSize: this.windowSize,
      seed: this.seed,
      records: this.records,
      inWindow: this.inWindow,
      firstWindow: this.firstWindow.map((row) => row.slice()),
      lo: this.lo ? Array.from(this.lo) : null,
      hi: this.hi ? Array.from(this.hi) : null,
      reference: this.lo ? sparse(this.reference) : null,
      latest: this.lo ? sparse(this.latest) : null,
    };
  }

  static fromJSON(snapshot: unknown): HalfSpaceTrees {
    const s = requireKind(snapshot, 'hst');
    const d = finiteNumber(s.dimension, 'dimension');
    const detector = new HalfSpaceTrees(d, {
      trees: finiteNumber(s.trees, 'trees'),
      height: finiteNumber(s.height, 'height'),
      windowSize: finiteNumber(s.windowSize, 'windowSize'),
      seed: finiteNumber(s.seed, 'seed'),
    });
    detector.records = finiteNumber(s.records, 'records');
    detector.inWindow = finiteNumber(s.inWindow, 'inWindow');
    if (!Array.isArray(s.firstWindow)) throw new Error('damaged snapshot: firstWindow');
    detector.firstWindow = (s.firstWindow as unknown[]).map((row) => numberArray(row, 'firstWindow', d).slice());
    if (s.lo !== null) {
      detector.setRanges(Float64Array.from(numberArray(s.lo, 'lo', d)), Float64Array.from(numberArray(s.hi, 'hi', d)));
      unsparse(s.reference, detector.reference, 'reference');
      unsparse(s.latest, detector.latest, 'latest');
    }
    return detector;
  }

  /** Counts x in every node of its path; with starts, each tree's path is known down to node starts[t]. */
  private count(x: ArrayLike<number>, masses: Uint32Array, starts: Int32Array | null = null): void {
    const feature = this.splitFeature;
    const split = this.splitValue;
    const internal = this.internalNodes;
    for (let t = 0; t < this.trees; t++) {
      const base = t * this.nodesPerTree;
      const splitBase = t * internal;
      let node = starts === null ? 0 : starts[t];
      // The known part: the start node and its ancestors (parent of n is (n - 1) >> 1 in this layout).
      for (let up = node; ; up = (up - 1) >> 1) {
        masses[base + up]++;
        if (up === 0) break;
      }
      while (node < internal) {
        node = x[feature[splitBase + node]] < split[splitBase + node] ? 2 * node + 1 : 2 * node + 2;
        masses[base + node]++;
      }
    }
  }

  /** Sets the ranges from the first window, grows the trees and counts that window as the reference. */
  private grow(): void {
    const d = this.dimension;
    const lo = new Float64Array(d).fill(Infinity);
    const hi = new Float64Array(d).fill(-Infinity);
    for (const row of this.firstWindow) {
      for (let j = 0; j < d; j++) {
        if (row[j] < lo[j]) lo[j] = row[j];
        if (row[j] > hi[j]) hi[j] = row[j];
      }
    }
    for (let j = 0; j < d; j++) {
      if (!(hi[j] > lo[j])) {
        // A constant feature in the first window: give it a unit range around its value.
        lo[j] -= 0.5;
        hi[j] += 0.5;
      }
    }
    this.setRanges(lo, hi);
    for (const row of this.firstWindow) this.count(row, this.reference);
    this.firstWindow = [];
    this.inWindow = 0;
  }

  private setRanges(lo: Float64Array, hi: Float64Array): void {
    this.lo = lo;
    this.hi = hi;
    const d = this.dimension;
    const random = new SeededRandom(this.seed);
    const low = new Float64Array(d);
    const high = new Float64Array(d);
    for (let t = 0; t < this.trees; t++) {
      // A random workspace per tree (in units of the range): [s - 2 max(s, 1 - s), s + 2 max(s, 1 - s)].
      for (let j = 0; j < d; j++) {
        const s = random.next();
        const r = 2 * Math.max(s, 1 - s);
        low[j] = s - r;
        high[j] = s + r;
      }
      this.growNode(t, 0, low, high, random);
    }
  }

  private growNode(tree: number, node: number, low: Float64Array, high: Float64Array, random: SeededRandom): void {
    if (node >= this.internalNodes) return;
    const j = random.int(this.dimension);
    const middle = (low[j] + high[j]) / 2;
    const at = tree * this.internalNodes + node;
    this.splitFeature[at] = j;
    this.splitValue[at] = this.lo![j] + middle * (this.hi![j] - this.lo![j]);
    const saved = high[j];
    high[j] = middle;
    this.growNode(tree, 2 * node + 1, low, high, random);
    high[j] = saved;
    const savedLow = low[j];
    low[j] = middle;
    this.growNode(tree, 2 * node + 2, low, high, random);
    low[j] = savedLow;
  }
}

/** Non-zero entries as [index, value, index, value, ...]. */
function sparse(a: Uint32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) out.push(i, a[i]);
  return out;
}

function unsparse(v: unknown, into: Uint32Array, what: string): void {
  const pairs = numberArray(v, what);
  if (pairs.length % 2 !== 0) throw new Error(`damaged snapshot: ${what}`);
  for (let i = 0; i < pairs.length; i += 2) {
    const at = pairs[i];
    if (!Number.isInteger(at) || at < 0 || at >= into.length) throw new Error(`damaged snapshot: ${what} index`);
    into[at] = pairs[i + 1];
  }
}
