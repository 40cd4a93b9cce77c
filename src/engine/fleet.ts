// A model learned by a fleet: each member learns its share of a stream into its own contribution and serves the
// merge of its own with every other member's latest. Merging adds what each learned, so the serving model is that
// of the whole stream (exactly for the statistics). Only own records go into a contribution, never merged ones, so
// contributions never count a record twice however often they are exchanged.
import type { LearnedPositions } from './learned-positions';
import { modelFromJSON, type Model } from './model';
import type { DataRecord, LearnResult } from './types';

export interface FleetMember {
  member: string;
  records: number;
  /** When the member published it (its clock, ms since the epoch); undefined for this member's own. */
  publishedAt?: number;
  /** When it arrived here (ms since the epoch). */
  receivedAt?: number;
  own: boolean;
}

interface Contribution {
  model: Model;
  publishedAt: number;
  receivedAt: number;
}

export class FleetModel {
  /** What this member learned itself: the contribution it publishes. */
  own: Model;
  /** Own merged with the others' latest: what is scored, and what knows every member's learned positions. */
  serving: Model;
  private readonly others = new Map<string, Contribution>();
  /** Others arrived since the serving model was built. */
  private stale = false;
  /** Bumped by every change to own, so a publisher knows whether there is anything new to publish. */
  version = 0;
  /** Contributions refused (another schema or other options, or damaged), and the last reason. */
  refused = 0;
  lastRefusal: string | undefined;

  constructor(
    readonly member: string,
    own: Model,
  ) {
    this.own = own;
    this.serving = own;
  }

  /** True when this member has learned the position already, or another member's contribution has. */
  covers(source: string, position: number): boolean {
    return this.serving.positions.covers(source, position);
  }

  /** The last position of a source learned by anyone, as the serving model knows it. */
  lastOf(source: string): number | undefined {
    return this.serving.positions.lastOf(source);
  }

  /** Marks a position learned (also when its record turns out invalid: it is not to be counted again). */
  advance(source: string, position: number): void {
    this.serving.positions.advance(source, position);
    if (this.serving !== this.own) this.own.positions.advance(source, position);
    this.version++;
  }

  learnOne(record: DataRecord): LearnResult {
    const result = this.serving.learnOne(record);
    if (result.learned && this.serving !== this.own) this.own.learnOne(record);
    if (result.learned) this.version++;
    return result;
  }

  /** Forgets a record from own (and the serving model), the inverse of learnOne. */
  forgetOne(record: DataRecord): LearnResult {
    const result = this.own.forgetOne(record);
    if (result.learned && this.serving !== this.own) this.serving.forgetOne(record);
    if (result.learned) this.version++;
    return result;
  }

  /** A new own contribution (a reset, a load, a merge into own): the serving model is rebuilt around it. */
  replaceOwn(model: Model): void {
    this.own = model;
    this.version++;
    this.stale = true;
    this.rebuild();
  }

  /**
   * Takes another member's latest contribution (a snapshot); it replaces that member's earlier one at the next
   * rebuild. Returns why it was refused, if it was: it is then counted and not merged.
   */
  accept(member: string, snapshot: unknown, publishedAt: number, receivedAt = Date.now()): string | undefined {
    if (member === this.member) return undefined;
    let model: Model;
    try {
      model = modelFromJSON(snapshot);
    } catch (error) {
      return this.refuse(member, `damaged: ${(error as Error).message}`);
    }
    const why = incompatibility(this.own, model);
    if (why) return this.refuse(member, why);
    const current = this.others.get(member);
    if (current && current.publishedAt > publishedAt) return undefined; // an older one, late
    this.others.set(member, { model, publishedAt, receivedAt });
    this.stale = true;
    return undefined;
  }

  /** A member's contribution is gone from the topic (a tombstone): it leaves the merge. */
  drop(member: string): void {
    if (this.others.delete(member)) this.stale = true;
  }

  /** Rebuilds the serving model when others arrived: returns true when it did (the serving model is new). */
  rebuild(): boolean {
    if (!this.stale) return false;
    this.stale = false;
    if (this.others.size === 0) {
      this.serving = this.own;
      return true;
    }
    const serving = modelFromJSON(this.own.toJSON());
    for (const [member, c] of this.others) {
      try {
        serving.merge(c.model);
      } catch (error) {
        // A contribution that passed the checks but still does not merge (its categories, say) stays out.
        this.others.delete(member);
        this.refuse(member, (error as Error).message);
      }
    }
    this.serving = serving;
    return true;
  }

  get isStale(): boolean {
    return this.stale;
  }

  /** Every member, own first, then by name. */
  members(): FleetMember[] {
    const others = [...this.others]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([member, c]) => ({
        member,
        records: c.model.recordsLearned,
        publishedAt: c.publishedAt,
        receivedAt: c.receivedAt,
        own: false,
      }));
    return [{ member: this.member, records: this.own.recordsLearned, own: true }, ...others];
  }

  /** The positions own covers: what this member's contribution says it learned. */
  get ownPositions(): LearnedPositions {
    return this.own.positions;
  }

  private refuse(member: string, why: string): string {
    this.refused++;
    this.lastRefusal = `contribution of ${member} refused: ${why}`;
    return this.lastRefusal;
  }
}

/** Why two models' contributions must not be merged (other attributes or detector options), if they must not. */
export function incompatibility(mine: Model, theirs: Model): string | undefined {
  if (JSON.stringify(mine.schema) !== JSON.stringify(theirs.schema)) return 'another attribute schema';
  const a = mine.resolvedOptions;
  const b = theirs.resolvedOptions;
  if (a.detector !== b.detector || a.extraDetectors.join() !== b.extraDetectors.join()) return 'other detectors';
  if (a.halfLife !== b.halfLife) return 'another forgetting half-life';
  if (a.warmupRecords !== b.warmupRecords) return 'another warm-up';
  if (a.invalidValues !== b.invalidValues) return 'another invalid-value policy';
  if (JSON.stringify(a.threshold) !== JSON.stringify(b.threshold)) return 'another threshold';
  return undefined;
}
