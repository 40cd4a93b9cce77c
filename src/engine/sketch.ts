// A mergeable streaming quantile sketch with exact removal.
//
// The first values are kept exactly. Once BUFFER_SIZE values have been seen, the sketch fixes a geometry: a pivot
// (the median of those values) and log-spaced buckets on the distance to the pivot, with a relative accuracy of
// about 1% on that distance (as in DDSketch, but centred on the data, so that data far from zero with a small
// spread still gets fine buckets). Bucket weights live in a Fenwick tree, so adding, removing and asking "how much
// weight lies at or below x" all take O(log buckets), without allocation. Weights may be fractional: an owner that
// forgets exponentially adds later values with larger weights and rescales now and then.

export const BUFFER_SIZE = 64;
/** Buckets on each side of the pivot. */
const SIDE = 1024;
const BUCKETS = 2 * SIDE + 1;
const GAMMA = 1.02;
const LOG_GAMMA = Math.log(GAMMA);

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
  total: number;
}

export class QuantileSketch {
  private bufferValues: Float64Array | null = new Float64Array(BUFFER_SIZE);
  private bufferWeights: Float64Array | null = new Float64Array(BUFFER_SIZE);
  private bufferLength = 0;
  private pivot = 0;
  private epsilon = 0;
  private logEpsilon = 0;
  private tree: Float64Array | null = null;
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
      fenwickAdd(tree, this.bucketOf(x) + 1, weight);
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
      fenwickAdd(tree, this.bucketOf(x) + 1, -weight);
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
      for (let i = 1; i < tree.length; i++) tree[i] *= factor;
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
    return { pivot: this.pivot, epsilon: this.epsilon, treeIndex, treeWeight, total: this.total };
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
    }
    sketch.total = snapshot.total;
    return sketch;
  }

  private bucketOf(x: number): number {
    const d = x - this.pivot;
    if (d > this.epsilon) {
      const k = Math.ceil((Math.log(d) - this.logEpsilon) / LOG_GAMMA);
      return SIDE + (k < SIDE ? k : SIDE);
    }
    if (d < -this.epsilon) {
      const k = Math.ceil((Math.log(-d) - this.logEpsilon) / LOG_GAMMA);
      return SIDE - (k < SIDE ? k : SIDE);
    }
    if (d === d) return SIDE;
    return SIDE; // NaN never reaches here through the engine; keep it in the centre rather than crash
  }

  /** A value inside bucket b (its geometric middle). */
  private bucketValue(b: number): number {
    const k = b - SIDE;
    if (k === 0) return this.pivot;
    const distance = this.epsilon * Math.pow(GAMMA, Math.abs(k) - 0.5);
    return this.pivot + (k > 0 ? distance : -distance);
  }

  private bucketWeights(): Float64Array {
    const counts = new Float64Array(BUCKETS);
    let previous = 0;
    for (let b = 0; b < BUCKETS; b++) {
      const prefix = fenwickPrefix(this.tree!, b + 1);
      counts[b] = prefix - previous;
      previous = prefix;
    }
    return counts;
  }

  private setGeometry(pivot: number, epsilon: number): void {
    this.pivot = pivot;
    this.epsilon = epsilon;
    this.logEpsilon = Math.log(epsilon);
    this.tree = new Float64Array(BUCKETS + 1);
    this.bufferValues = null;
    this.bufferWeights = null;
    this.bufferLength = 0;
  }

  /** Chooses pivot and bucket scale from the buffered values, then moves them into buckets. */
  private fixGeometry(): void {
    const n = this.bufferLength;
    const values = Array.from(this.bufferValues!.subarray(0, n));
    const weights = Array.from(this.bufferWeights!.subarray(0, n));
    const sorted = values.slice().sort((a, b) => a - b);
    const pivot = sorted[n >> 1];
    // Scale: the median distance to the pivot, or the smallest non-zero one when most values equal the pivot.
    const distances = values
      .map((v) => Math.abs(v - pivot))
      .filter((d) => d > 0)
      .sort((a, b) => a - b);
    let scale = distances.length > 0 ? distances[distances.length >> 1] : Math.max(Math.abs(pivot), 1);
    if (distances.length > 0) scale = Math.min(scale, distances[0] * 10);
    const epsilon = scale * 1e-3;
    const total = this.total;
    this.setGeometry(pivot, epsilon);
    this.total = total;
    for (let i = 0; i < n; i++) fenwickAdd(this.tree!, this.bucketOf(values[i]) + 1, weights[i]);
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
