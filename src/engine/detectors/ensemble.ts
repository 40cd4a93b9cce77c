// The default detector ('auto'): several detectors, each score calibrated, combined.
import { Detector, requireKind, type DetectorSnapshot } from './detector';
import { EcodDetector } from './ecod';
import { GaussianDetector } from './gaussian';
import { HistogramDetector } from './histogram';

export interface EnsembleOptions {
  halfLife?: number;
  seed?: number;
}

export class EnsembleDetector extends Detector {
  readonly kind = 'auto';
  members: Detector[];
  private parts: Float64Array;

  constructor(dimension: number, options: EnsembleOptions = {}, members?: Detector[]) {
    super();
    this.members = members ?? [
      new EcodDetector(dimension, { halfLife: options.halfLife }),
      new HistogramDetector(dimension, { halfLife: options.halfLife }),
      new GaussianDetector(dimension, { halfLife: options.halfLife }),
    ];
    this.parts = new Float64Array(dimension);
  }

  get dimension(): number {
    return this.members[0].dimension;
  }

  get recordsLearned(): number {
    return this.members[0].recordsLearned;
  }

  override squash(raw: number): number {
    return raw;
  }

  rawScore(x: ArrayLike<number>, parts?: Float64Array): number {
    let sum = 0;
    if (parts) parts.fill(0, 0, this.dimension);
    for (const m of this.members) {
      const s = m.scoreOne(x, this.parts);
      sum += s;
      if (parts) {
        let total = 0;
        for (let j = 0; j < this.dimension; j++) total += this.parts[j];
        if (total > 0) for (let j = 0; j < this.dimension; j++) parts[j] += (s * this.parts[j]) / total;
      }
    }
    return sum / this.members.length;
  }

  learnOne(x: ArrayLike<number>): void {
    for (const m of this.members) m.learnOne(x);
  }

  addFeature(): void {
    for (const m of this.members) m.addFeature();
    this.parts = new Float64Array(this.dimension);
  }

  override merge(other: Detector): void {
    if (!(other instanceof EnsembleDetector) || other.members.length !== this.members.length) return super.merge(other);
    this.members.forEach((m, i) => m.merge(other.members[i]));
  }

  toJSON(): DetectorSnapshot {
    return { kind: this.kind, members: this.members.map((m) => m.toJSON()) };
  }

  static fromJSON(snapshot: unknown): EnsembleDetector {
    const s = requireKind(snapshot, 'auto');
    if (!Array.isArray(s.members)) throw new Error('damaged snapshot: ensemble members');
    // Imported here to avoid a cycle between the factory and the ensemble.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { detectorFromJSON } = require('./index') as typeof import('./index');
    const members = (s.members as unknown[]).map((m) => detectorFromJSON(m));
    return new EnsembleDetector(members[0].dimension, {}, members);
  }
}
