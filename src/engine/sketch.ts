// A mergeable streaming quantile sketch with exact removal.
//
// The first values are kept exactly. Once BUFFER_SIZE values have been seen, the sketch fixes a geometry: a pivot
// (the median of those values) and log-linear buckets on the distance to the pivot: per power of two, 32 equal
// buckets, so each is at most about 3% of the distance wide (as in DDSketch or HdrHistogram, but centred on the
// data, so that data far from zero with a small spread still gets fine buckets). The bucket comes straight from
// the bits of the floating-point distance, without a logarithm. Bucket weights live in a Fenwick tree, so adding, removing and asking "how much
// weight lies at or below x" all take O(log buckets), without allocation. Weights may be fractional: an owner that
// forgets exponentially adds later values with larger weights and rescales now and then.

export const BUFFER_SIZE = 64;
/** Buckets on each side of the pivot. */
const SUB_BUCKETS_BITS = 5;
const SUB_BUCKETS = 1 << SUB_BUCKETS_BITS;
/** Powers of two of distance covered on each side: from epsilon to about 1e9 epsilon. */
const OCTAVES = 30;
const SIDE = OCTAVES * SUB_BUCKETS;
const BUCKETS = 2 * SIDE + 1;
/** A view on the bits of a double; HIGH is the index of the word holding sign, exponent and top mantissa bits. */
const BITS_F64 = new Float64Array(1);
const BITS_U32 = new Uint32Array(BITS_F64.buffer);
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

export interface QuantileSketchSnapshot {
  /** Exact values while the sketch is still buffering. */
  values?: number[];
  weights?: number[];
  /** Geometry, once fixed. */
  pivot?: number;
  epsilon?: number;
  /** Non-zero entries of the Fenwick tree (1-based positions), so a restore reproduces it bit for bit. */
  treeIndex?: number[];
  treeWeight?: number[];
  /** Non-zero bucket weights (0-based buckets). */
  bucketIndex?: number[];
  bucketWeight?: number[];
  total: number;
}

export class QuantileSketch {
  private bufferValues: Float64Array | null = new Float64Array(BUFFER_SIZE);
  private bufferWeights: Float64Array | null = new Float64Array(BUFFER_SIZE);
  private bufferLength = 0;
  private pivot = 0;
  private epsilon = 0;
  private inverseEpsilon = 0;
  private tree: Float64Array | null = null;
  /** Bucket weights beside the tree: one prefix sum then answers both "below" and "at". */
  private counts: Float64Array | null = null;
  private total = 0;

  /** Total weight held. */
  get totalWeight(): number {
    return this.total;
  }

  get isBuffering(): boolean {
    return this.tree === null;
  }

  add(x: number, weight = 1): void {
    this.total += weight;
    const tree = this.tree;
    if (tree !== null) {
      const b = this.bucketOf(x);
      fenwickAdd(tree, b + 1, weight);
      this.counts![b] += weight;
      return;
    }
    const values = this.bufferValues!;
    const weights = this.bufferWeights!;
    for (let i = 0; i < this.bufferLength; i++) {
      if (values[i] === x) {
        weights[i] += weight;
        return;
      }
    }
    values[this.bufferLength] = x;
    weights[this.bufferLength] = weight;
    this.bufferLength++;
    if (this.bufferLength === BUFFER_SIZE) this.fixGeometry();
  }

  /** Removes weight added earlier at x: the exact inverse of add(x, weight). */
  remove(x: number, weight = 1): void {
    this.total -= weight;
    const tree = this.tree;
    if (tree !== null) {
      const b = this.bucketOf(x);
      fenwickAdd(tree, b + 1, -weight);
      this.counts![b] -= weight;
      return;
    }
    const values = this.bufferValues!;
    const weights = this.bufferWeights!;
    for (let i = 0; i < this.bufferLength; i++) {
      if (values[i] === x) {
        weights[i] -= weight;
        if (weights[i] <= 1e-12 * Math.max(1, this.total)) {
          // Drop the entry, keeping the order of the rest irrelevant.
          this.bufferLength--;
          values[i] = values[this.bufferLength];
          weights[i] = weights[this.bufferLength];
        }
        return;
      }
    }
    this.total += weight; // x was never added: nothing to undo
  }

  /** Set by measure(): weight at or below x, and at or above x (values in x's bucket count as equal to x). */
  atMost = 0;
  atLeast = 0;

  /** Computes atMost and atLeast for x in one pass (one bucket lookup, two prefix sums). */
  measure(x: number): void {
    const tree = this.tree;
    if (tree !== null) {
      const b = this.bucketOf(x);
      const below = fenwickPrefix(tree, b);
      this.atMost = below + this.counts![b];
      this.atLeast = this.total - below;
      return;
    }
    let atMost = 0;
    let atLeast = 0;
    const values = this.bufferValues!;
    const weights = this.bufferWeights!;
    for (let i = 0; i < this.bufferLength; i++) {
      if (values[i] <= x) atMost += weights[i];
      if (values[i] >= x) atLeast += weights[i];
    }
    this.atMost = atMost;
    this.atLeast = atLeast;
  }

  /** Mid-rank of x: the weight below x plus half the weight equal to it (in its bucket). */
  rank(x: number): number {
    this.measure(x);
    return (this.atMost + this.total - this.atLeast) / 2;
  }

  /** Weight at or below x (values in x's bucket count as equal to x). */
  weightAtMost(x: number): number {
    const tree = this.tree;
    if (tree !== null) return fenwickPrefix(tree, this.bucketOf(x) + 1);
    let w = 0;
    const values = this.bufferValues!;
    const weights = this.bufferWeights!;
    for (let i = 0; i < this.bufferLength; i++) if (values[i] <= x) w += weights[i];
    return w;
  }

  /** Weight at or above x (values in x's bucket count as equal to x). */
  weightAtLeast(x: number): number {
    const tree = this.tree;
    if (tree !== null) return this.total - fenwickPrefix(tree, this.bucketOf(x));
    let w = 0;
    const values = this.bufferValues!;
    const weights = this.bufferWeights!;
    for (let i = 0; i < this.bufferLength; i++) if (values[i] >= x) w += weights[i];
    return w;
  }

  /** The value below which a fraction q of the weight lies (NaN when empty). */
  quantile(q: number): number {
    if (!(this.total > 0)) return NaN;
    const target = Math.min(Math.max(q, 0), 1) * this.total;
    const tree = this.tree;
    if (tree === null) {
      const order = Array.from({ length: this.bufferLength }, (_, i) => i).sort(
        (a, b) => this.bufferValues![a] - this.bufferValues![b],
      );
      let cumulative = 0;
      for (const i of order) {
        cumulative += this.bufferWeights![i];
        if (cumulative >= target) return this.bufferValues![i];
      }
      return this.bufferValues![order[order.length - 1]];
    }
    // Binary descent on the Fenwick tree: the first bucket whose prefix reaches the target.
    let position = 0;
    let remaining = target;
    for (let step = 1 << Math.floor(Math.log2(BUCKETS)); step > 0; step >>= 1) {
      const next = position + step;
      if (next <= BUCKETS && tree[next] < remaining) {
        position = next;
        remaining -= tree[next];
      }
    }
    return this.bucketValue(Math.min(position, BUCKETS - 1));
  }

  /** Multiplies every weight by factor (exponential forgetting, renormalisation). */
  scale(factor: number): void {
    this.total *= factor;
    if (this.tree !== null) {
      const tree = this.tree;
      const counts = this.counts!;
      for (let i = 1; i < tree.length; i++) tree[i] *= factor;
      for (let i = 0; i < counts.length; i++) counts[i] *= factor;
    } else {
      for (let i = 0; i < this.bufferLength; i++) this.bufferWeights![i] *= factor;
    }
  }

  /** Adds other's weights, multiplied by factor. Exact when both share a geometry (or other still buffers). */
  merge(other: QuantileSketch, factor = 1): void {
    if (other.tree === null) {
      for (let i = 0; i < other.bufferLength; i++) this.add(other.bufferValues![i], other.bufferWeights![i] * factor);
      return;
    }
    if (this.tree === null) {
      // Adopt the other's geometry, then put our exact values into it.
      const values = this.bufferValues!.slice(0, this.bufferLength);
      const weights = this.bufferWeights!.slice(0, this.bufferLength);
      this.setGeometry(other.pivot, other.epsilon);
      this.total = 0;
      for (let i = 0; i < values.length; i++) this.add(values[i], weights[i]);
    }
    const counts = other.bucketWeights();
    const sameGeometry = this.pivot === other.pivot && this.epsilon === other.epsilon;
    for (let b = 0; b < BUCKETS; b++) {
      if (counts[b] === 0) continue;
      if (sameGeometry) {
        fenwickAdd(this.tree!, b + 1, counts[b] * factor);
        this.counts![b] += counts[b] * factor;
        this.total += counts[b] * factor;
      } else {
        this.add(other.bucketValue(b), counts[b] * factor);
      }
    }
  }

  toJSON(): QuantileSketchSnapshot {
    if (this.tree === null) {
      return {
        values: Array.from(this.bufferValues!.subarray(0, this.bufferLength)),
        weights: Array.from(this.bufferWeights!.subarray(0, this.bufferLength)),
        total: this.total,
      };
    }
    const treeIndex: number[] = [];
    const treeWeight: number[] = [];
    for (let i = 1; i < this.tree.length; i++) {
      if (this.tree[i] !== 0) {
        treeIndex.push(i);
        treeWeight.push(this.tree[i]);
      }
    }
    const bucketIndex: number[] = [];
    const bucketWeight: number[] = [];
    const counts = this.counts!;
    for (let b = 0; b < counts.length; b++) {
      if (counts[b] !== 0) {
        bucketIndex.push(b);
        bucketWeight.push(counts[b]);
      }
    }
    return {
      pivot: this.pivot,
      epsilon: this.epsilon,
      treeIndex,
      treeWeight,
      bucketIndex,
      bucketWeight,
      total: this.total,
    };
  }

  static fromJSON(snapshot: QuantileSketchSnapshot): QuantileSketch {
    const sketch = new QuantileSketch();
    if (!snapshot || typeof snapshot !== 'object' || !Number.isFinite(snapshot.total))
      throw new Error('damaged quantile sketch');
    if (snapshot.values !== undefined) {
      const { values, weights } = snapshot;
      if (!Array.isArray(values) || !Array.isArray(weights) || values.length !== weights.length)
        throw new Error('damaged quantile sketch: values and weights');
      if (values.length >= BUFFER_SIZE) throw new Error('damaged quantile sketch: too many buffered values');
      sketch.bufferValues!.set(values);
      sketch.bufferWeights!.set(weights);
      sketch.bufferLength = values.length;
    } else {
      const { pivot, epsilon, treeIndex, treeWeight } = snapshot;
      if (!Number.isFinite(pivot) || !(epsilon! > 0) || !Array.isArray(treeIndex) || !Array.isArray(treeWeight))
        throw new Error('damaged quantile sketch: geometry');
      if (treeIndex.length !== treeWeight.length) throw new Error('damaged quantile sketch: tree');
      sketch.setGeometry(pivot!, epsilon!);
      for (let i = 0; i < treeIndex.length; i++) {
        const at = treeIndex[i];
        if (!Number.isInteger(at) || at < 1 || at > BUCKETS) throw new Error('damaged quantile sketch: tree index');
        sketch.tree![at] = treeWeight[i];
      }
      const { bucketIndex, bucketWeight } = snapshot;
      if (!Array.isArray(bucketIndex) || !Array.isArray(bucketWeight) || bucketIndex.length !== bucketWeight.length)
        throw new Error('damaged quantile sketch: buckets');
      for (let i = 0; i < bucketIndex.length; i++) {
        const at = bucketIndex[i];
        if (!Number.isInteger(at) || at < 0 || at >= BUCKETS) throw new Error('damaged quantile sketch: bucket index');
        sketch.counts![at] = bucketWeight[i];
      }
    }
    sketch.total = snapshot.total;
    return sketch;
  }

  /** The last value looked up and its bucket: a record is usually scored, then learned, with the same value. */
  private memoValue = NaN;
  private memoBucket = SIDE;

  private bucketOf(x: number): number {
    if (x === this.memoValue) return this.memoBucket;
    const b = this.computeBucket(x);
    this.memoValue = x;
    this.memoBucket = b;
    return b;
  }

  private computeBucket(x: number): number {
    const d = x - this.pivot;
    const a = (d < 0 ? -d : d) * this.inverseEpsilon;
    if (!(a >= 1)) return SIDE; // within epsilon of the pivot (NaN, which the engine never passes, lands here too)
    BITS_F64[0] = a;
    const high = BITS_U32[HIGH];
    // Octave from the exponent, position within it from the top mantissa bits.
    let k = (((high >>> 20) - 1023) << SUB_BUCKETS_BITS) + ((high >>> (20 - SUB_BUCKETS_BITS)) & (SUB_BUCKETS - 1)) + 1;
    if (k > SIDE) k = SIDE;
    return d < 0 ? SIDE - k : SIDE + k;
  }

  /** A value inside bucket b (its middle). */
  private bucketValue(b: number): number {
    const k = b - SIDE;
    if (k === 0) return this.pivot;
    const i = Math.abs(k) - 1;
    const octave = Math.pow(2, i >> SUB_BUCKETS_BITS);
    const distance = this.epsilon * octave * (1 + ((i & (SUB_BUCKETS - 1)) + 0.5) / SUB_BUCKETS);
    return this.pivot + (k > 0 ? distance : -distance);
  }

  private bucketWeights(): Float64Array {
    return this.counts!;
  }

  private setGeometry(pivot: number, epsilon: number): void {
    this.pivot = pivot;
    this.epsilon = epsilon;
    this.inverseEpsilon = 1 / epsilon;
    this.tree = new Float64Array(BUCKETS + 1);
    this.counts = new Float64Array(BUCKETS);
    this.memoValue = NaN;
    this.bufferValues = null;
    this.bufferWeights = null;
    this.bufferLength = 0;
  }

  /** Chooses pivot and bucket scale from the buffered values, then moves them into buckets. */
  private fixGeometry(): void {
    const n = this.bufferLength;
    const values = Array.from(this.bufferValues!.subarray(0, n));
    const weights = Array.from(this.bufferWeights!.subarray(0, n));
    // Weighted median of the first values.
    const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
    let cumulative = 0;
    let median = values[order[0]];
    for (const i of order) {
      cumulative += weights[i];
      median = values[i];
      if (cumulative >= this.total / 2) break;
    }
    // Scale: the median distance to it, or ten times the smallest non-zero one when most values are equal.
    const distances = values
      .map((v) => Math.abs(v - median))
      .filter((d) => d > 0)
      .sort((a, b) => a - b);
    let scale = distances.length > 0 ? distances[distances.length >> 1] : Math.max(Math.abs(median), 1);
    if (distances.length > 0) scale = Math.min(scale, distances[0] * 10);
    // Rounded to powers of two, so that two sketches of the same data usually choose the same geometry and merge
    // exactly.
    const unit = Math.pow(2, Math.floor(Math.log2(scale)));
    const pivot = Math.round(median / unit) * unit + 0; // + 0 turns -0 into 0, which JSON cannot keep apart
    const epsilon = unit / 1024;
    const total = this.total;
    this.setGeometry(pivot, epsilon);
    this.total = total;
    for (let i = 0; i < n; i++) {
      const b = this.bucketOf(values[i]);
      fenwickAdd(this.tree!, b + 1, weights[i]);
      this.counts![b] += weights[i];
    }
  }
}

function fenwickAdd(tree: Float64Array, position: number, weight: number): void {
  const n = tree.length;
  for (let i = position; i < n; i += i & -i) tree[i] += weight;
}

function fenwickPrefix(tree: Float64Array, position: number): number {
  let sum = 0;
  for (let i = position; i > 0; i -= i & -i) sum += tree[i];
  return sum;
}
