// What a model has learned from ordered sources: per source (an opaque key, such as a Kafka topic and partition),
// the last position learned. A source replays in order after a fault, so a position at or below it was learned.

export type LearnedPositionsSnapshot = Record<string, number>;

export class LearnedPositions {
  private readonly last = new Map<string, number>();

  /** True when the model has learned this position of the source already (or a later one). */
  covers(source: string, position: number): boolean {
    const last = this.last.get(source);
    return last !== undefined && position <= last;
  }

  /** Records that position of the source as learned; never moves a source back. */
  advance(source: string, position: number): void {
    const last = this.last.get(source);
    if (last === undefined || position > last) this.last.set(source, position);
  }

  /** The last position learned of a source, if any. */
  lastOf(source: string): number | undefined {
    return this.last.get(source);
  }

  get size(): number {
    return this.last.size;
  }

  /** Takes the other's positions where they are further (both models' records are in the merged one). */
  merge(other: LearnedPositions): void {
    for (const [source, position] of other.last) this.advance(source, position);
  }

  toJSON(): LearnedPositionsSnapshot {
    const out: LearnedPositionsSnapshot = {};
    for (const [source, position] of this.last) out[source] = position;
    return out;
  }

  static fromJSON(snapshot: unknown): LearnedPositions {
    if (typeof snapshot !== 'object' || snapshot === null || Array.isArray(snapshot))
      throw new Error('learned positions must be an object of source: position');
    const positions = new LearnedPositions();
    for (const [source, position] of Object.entries(snapshot)) {
      if (typeof position !== 'number' || !Number.isFinite(position))
        throw new Error(`learned position of "${source}" must be a finite number, not ${String(position)}`);
      positions.last.set(source, position);
    }
    return positions;
  }
}
