// Histogram-based detector (HBOS, Goldstein and Dengel 2012) with bins that adapt as ranges grow.
//
// Each feature has a fixed number of equal-width bins on a grid anchored at zero whose width is a power of two.
// When a value falls outside, the width doubles (pairs of bins merge exactly) until it fits, so two histograms can
// always be brought to a common grid and merged. The score sums -log of each value's smoothed bin probability.
import { surprise } from '../fastmath';
import { Detector, finiteNumber, numberArray, requireKind, type DetectorSnapshot } from './detector';

export interface HistogramOptions {
  /** Bins per feature (default 64). */
  bins?: number;
  /** Exponential forgetting, in records. */
  halfLife?: number;
}

/** Values kept exactly before a feature's grid is chosen from their spread. */
const FIRST_VALUES = 32;

class AdaptiveHistogram {
  /** log2 of the bin width. */
  exponent = 0;
  width = 1;
  inverseWidth = 1;
  /** Grid index of the first bin. */
  start = 0;
  counts: Float64Array;
  ready = false;
  first: number[] = [];
  firstWeights: number[] = [];

  constructor(readonly bins: number) {
    this.counts = new Float64Array(bins);
  }

  /** Weight of the bin x falls into (0 when outside). */
  weightAt(x: number): number {
    if (!this.ready) {
      let w = 0;
      for (let i = 0; i < this.first.length; i++) if (this.first[i] === x) w += this.firstWeights[i];
      return w;
    }
    // Multiplying by the inverse of a power of two is exact: the same bin as dividing.
    const b = Math.floor(x * this.inverseWidth) - this.start;
    return b >= 0 && b < this.bins ? this.counts[b] : 0;
  }

  add(x: number, w: number): void {
    if (!this.ready) {
      this.first.push(x);
      this.firstWeights.push(w);
      if (this.first.length >= FIRST_VALUES) this.chooseGrid();
      return;
    }
    let b = Math.floor(x * this.inverseWidth) - this.start;
    if (b < 0 || b >= this.bins) {
      this.growTo(x);
      b = Math.floor(x * this.inverseWidth) - this.start;
    }
    this.counts[b] += w;
  }

  scale(f: number): void {
    for (let i = 0; i < this.bins; i++) this.counts[i] *= f;
    for (let i = 0; i < this.firstWeights.length; i++) this.firstWeights[i] *= f;
  }

  /** Grid from the spread of the first values: about a quarter of the bins cover it, leaving room to grow. */
  chooseGrid(): void {
    const lo = Math.min(...this.first);
    const hi = Math.max(...this.first);
    const span = hi - lo > 0 ? hi - lo : Math.max(Math.abs(hi), 1);
    this.exponent = Math.floor(Math.log2(span / (this.bins / 4)));
    this.width = Math.pow(2, this.exponent);
    this.inverseWidth = 1 / this.width;
    const centre = Math.floor((lo + hi) / 2 / this.width);
    this.start = centre - (this.bins >> 1);
    this.ready = true;
    const first = this.first;
    const weights = this.firstWeights;
    this.first = [];
    this.firstWeights = [];
    for (let i = 0; i < first.length; i++) this.add(first[i], weights[i]);
  }

  /** Doubles the width until x fits. */
  growTo(x: number): void {
    while (true) {
      const b = Math.floor(x / this.width) - this.start;
      if (b >= 0 && b < this.bins) return;
      this.coarsen();
    }
  }

  coarsen(): void {
    const merged = new Float64Array(this.bins);
    const newStart = Math.floor(this.start / 2) - (this.bins >> 2);
    for (let i = 0; i < this.bins; i++) {
      if (this.counts[i] !== 0) merged[Math.floor((this.start + i) / 2) - newStart] += this.counts[i];
    }
    this.counts = merged;
    this.start = newStart;
    this.exponent++;
    this.width *= 2;
    this.inverseWidth /= 2;
  }

  /** Lower edge of bin b. */
  edge(b: number): number {
    return (this.start + b) * this.width;
  }
}

export class HistogramDetector extends Detector {
  readonly kind = 'histogram';
  dimension: number;
  private histograms: AdaptiveHistogram[];
  private readonly bins: number;
  private readonly halfLife: number | null;
  private readonly alpha: number;
  /** log(bins), the surprise of a flat histogram per feature: squash needs it for every record. */
  private readonly logBins: number;
  private weight = 0;
  private records = 0;
  private unit = 1;

  constructor(dimension: number, options: HistogramOptions = {}) {
    super();
    this.dimension = dimension;
    this.bins = options.bins ?? 64;
    if (!(this.bins >= 4 && this.bins % 4 === 0)) throw new Error('bins must be a multiple of 4');
    this.halfLife = options.halfLife && options.halfLife > 0 ? options.halfLife : null;
    this.alpha = this.halfLife === null ? 1 : Math.pow(2, -1 / this.halfLife);
    this.logBins = Math.log(this.bins);
    this.histograms = Array.from({ length: dimension }, () => new AdaptiveHistogram(this.bins));
  }

  get recordsLearned(): number {
    return this.records;
  }

  override squash(raw: number): number {
    // raw is a sum of surprises in nats; per feature, log(bins) is what a flat histogram gives.
    const r = raw / Math.max(this.dimension * this.logBins, 1e-9);
    return r > 0 ? r / (r + 1) : 0;
  }

  rawScore(x: ArrayLike<number>, parts?: Float64Array): number {
    const u = this.unit;
    // Counts are in units of the current record weight; add one record's worth to every bin (Laplace smoothing).
    const inverse = 1 / ((this.weight + this.bins) * u);
    // A product of probabilities, turned into a sum of logs only when it gets small: one log per record.
    let product = 1;
    let logs = 0;
    for (let j = 0; j < this.dimension; j++) {
      const p = (this.histograms[j].weightAt(x[j]) + u) * inverse;
      product *= p;
      if (product < 1e-200) {
        logs += Math.log(product);
        product = 1;
      }
      if (parts) parts[j] = surprise(p); // an approximation is enough for shares
    }
    return -(logs + Math.log(product));
  }

  learnOne(x: ArrayLike<number>): void {
    if (this.alpha !== 1) {
      this.weight *= this.alpha;
      this.unit /= this.alpha;
      if (this.unit > 1e100) {
        for (const h of this.histograms) h.scale(1 / this.unit);
        this.unit = 1;
      }
    }
    this.weight += 1;
    this.records++;
    for (let j = 0; j < this.dimension; j++) this.histograms[j].add(x[j], this.unit);
  }

  override forgetOne(x: ArrayLike<number>): void {
    this.weight -= 1;
    this.records--;
    for (let j = 0; j < this.dimension; j++) this.histograms[j].add(x[j], -this.unit);
    if (this.alpha !== 1) {
      this.weight /= this.alpha;
      this.unit *= this.alpha;
    }
  }

  override get canForget(): boolean {
    return true;
  }

  override permuteFeatures(order: number[]): void {
    this.histograms = order.map((o) => this.histograms[o]);
  }

  addFeature(): void {
    const h = new AdaptiveHistogram(this.bins);
    if (this.weight > 0) h.add(0, this.weight * this.unit);
    this.histograms.push(h);
    this.dimension++;
  }

  override merge(other: Detector): void {
    if (!(other instanceof HistogramDetector) || other.dimension !== this.dimension || other.bins !== this.bins)
      return super.merge(other);
    const factor = this.unit / other.unit;
    for (let j = 0; j < this.dimension; j++) {
      const mine = this.histograms[j];
      const theirs = other.histograms[j];
      if (!theirs.ready) {
        for (let i = 0; i < theirs.first.length; i++) mine.add(theirs.first[i], theirs.firstWeights[i] * factor);
        continue;
      }
      if (!mine.ready) {
        // Take the other's grid, then add our first values into it.
        const first = mine.first;
        const weights = mine.firstWeights;
        mine.exponent = theirs.exponent;
        mine.width = theirs.width;
        mine.inverseWidth = theirs.inverseWidth;
        mine.start = theirs.start;
        mine.counts = new Float64Array(this.bins);
        mine.first = [];
        mine.firstWeights = [];
        mine.ready = true;
        for (let i = 0; i < first.length; i++) mine.add(first[i], weights[i]);
      }
      // Bring both to the coarser width; grids anchored at zero nest, so bins map exactly.
      const coarse = theirs.width > mine.width ? theirs : mine;
      while (mine.width < coarse.width) mine.coarsen();
      let shift = 0;
      while (theirs.width * Math.pow(2, shift) < mine.width) shift++;
      const ratio = Math.pow(2, shift);
      for (let b = 0; b < theirs.bins; b++) {
        const w = theirs.counts[b];
        if (w === 0) continue;
        const gridIndex = Math.floor((theirs.start + b) / ratio);
        mine.add(gridIndex * mine.width, w * factor);
      }
    }
    this.weight += other.weight;
    this.records += other.records;
  }

  toJSON(): DetectorSnapshot {
    return {
      kind: this.kind,
      dimension: this.dimension,
      bins: this.bins,
      halfLife: this.halfLife,
      weight: this.weight,
      records: this.records,
      unit: this.unit,
      histograms: this.histograms.map((h) =>
        h.ready
          ? { exponent: h.exponent, start: h.start, counts: Array.from(h.counts) }
          : { first: h.first.slice(), firstWeights: h.firstWeights.slice() },
      ),
    };
  }

  static fromJSON(snapshot: unknown): HistogramDetector {
    const s = requireKind(snapshot, 'histogram');
    const d = finiteNumber(s.dimension, 'dimension');
    const bins = finiteNumber(s.bins, 'bins');
    const detector = new HistogramDetector(d, { bins, halfLife: (s.halfLife as number | null) ?? undefined });
    detector.weight = finiteNumber(s.weight, 'weight');
    detector.records = finiteNumber(s.records, 'records');
    detector.unit = finiteNumber(s.unit, 'unit');
    if (!Array.isArray(s.histograms) || s.histograms.length !== d) throw new Error('damaged snapshot: histograms');
    detector.histograms = (s.histograms as Record<string, unknown>[]).map((hs) => {
      const h = new AdaptiveHistogram(bins);
      if (hs.counts !== undefined) {
        h.exponent = finiteNumber(hs.exponent, 'exponent');
        h.width = Math.pow(2, h.exponent);
        h.inverseWidth = 1 / h.width;
        h.start = finiteNumber(hs.start, 'start');
        h.counts.set(numberArray(hs.counts, 'counts', bins));
        h.ready = true;
      } else {
        h.first = numberArray(hs.first, 'first').slice();
        h.firstWeights = numberArray(hs.firstWeights, 'firstWeights', h.first.length).slice();
      }
      return h;
    });
    return detector;
  }
}
