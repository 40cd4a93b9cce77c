// A model learned by a fleet: each member learns its share of a stream into its own contribution and serves the
// merge of its own with every other member's latest. Merging adds what each learned, so the serving model is that
// of the whole stream (exactly for the statistics). Only own records go into a contribution, never merged ones, so
// contributions never count a record twice however often they are exchanged.
//
// A rebalance can still hand a partition to a new member while its old member has learned records it has not yet
// published (so not committed): both then learn them. Each contribution says which positions its member learned
// (ranges per source), and each member keeps its latest learned records per source: when two contributions overlap,
// the member whose name sorts after the other's forgets its copies, so the fleet counts each record once again.
import type { LearnedPositions } from './learned-positions';
import { modelFromJSON, type Model, type ModelSnapshot, type ResolvedOptions } from './model';
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
  /**
   * As it came: parsed into a model only when it is merged, so contributions superseded before never are; dropped
   * once parsed (the model is what later rebuilds merge).
   */
  snapshot: ModelSnapshot | undefined;
  model: Model | undefined;
  records: number;
  publishedAt: number;
  receivedAt: number;
  ranges: LearnedRanges;
}

/** Per source, the runs of positions a member learned itself: [first, last] pairs, in order. */
export type LearnedRanges = Record<string, [number, number][]>;

/** Runs kept per source (a source with gaps makes many); the oldest go first. */
const MAX_RANGES = 256;
/** Latest learned records kept per source, to forget when another member turns out to have learned them too. */
const RECENT_RECORDS = 2_048;

/** A ring of a source's latest learned records and their positions. */
class RecentRecords {
  readonly positions = new Float64Array(RECENT_RECORDS).fill(-1);
  readonly records: (DataRecord | undefined)[] = new Array(RECENT_RECORDS);
  next = 0;
  min = Infinity;
  max = -Infinity;

  add(position: number, record: DataRecord): void {
    this.positions[this.next] = position;
    this.records[this.next] = record;
    this.next = (this.next + 1) % RECENT_RECORDS;
    if (position < this.min) this.min = position;
    if (position > this.max) this.max = position;
  }
}

/** Serving models that hold other members' contributions: never to be taken for one member's own. */
const merged = new WeakSet<Model>();

/** True for a fleet's serving model with others merged in (a learner redeployed must not adopt it as its own). */
export function isFleetMerge(model: Model): boolean {
  return merged.has(model);
}

export class FleetModel {
  /** What this member learned itself: the contribution it publishes. */
  own: Model;
  /** Own merged with the others' latest: what is scored, and what knows every member's learned positions. */
  serving: Model;
  private readonly others = new Map<string, Contribution>();
  private ranges: Map<string, [number, number][]>;
  private readonly recent = new Map<string, RecentRecords>();
  /** The position advance() was last given: the record learned next is at it. */
  private at: [string, number] | undefined;
  /** Records this member forgot because another member's contribution had them too. */
  forgottenTwice = 0;
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
    ranges: LearnedRanges = {},
  ) {
    this.own = own;
    this.serving = own;
    this.ranges = new Map(Object.entries(ranges).map(([source, runs]) => [source, runs.map((r) => [r[0], r[1]])]));
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
    let runs = this.ranges.get(source);
    if (!runs) this.ranges.set(source, (runs = []));
    const last = runs[runs.length - 1];
    if (last && position === last[1] + 1) last[1] = position;
    else if (!last || position > last[1]) {
      runs.push([position, position]);
      if (runs.length > MAX_RANGES) runs.shift();
    }
    this.at = [source, position];
    this.version++;
  }

  /** Learns a record into own and the serving model; after advance(), the record at that position. */
  learnOne(record: DataRecord): LearnResult {
    const at = this.at;
    this.at = undefined;
    const result = this.serving.learnOne(record);
    if (result.learned && this.serving !== this.own) this.own.learnOne(record);
    if (result.learned) {
      this.version++;
      if (at) {
        let recent = this.recent.get(at[0]);
        if (!recent) this.recent.set(at[0], (recent = new RecentRecords()));
        recent.add(at[1], record);
      }
    }
    return result;
  }

  /** Per source, the runs of positions this member learned: published with its contribution. */
  ownRanges(): LearnedRanges {
    const out: LearnedRanges = {};
    for (const [source, runs] of this.ranges) out[source] = runs.map((r) => [r[0], r[1]]);
    return out;
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
  accept(
    member: string,
    snapshot: unknown,
    publishedAt: number,
    receivedAt = Date.now(),
    ranges: LearnedRanges = {},
  ): string | undefined {
    if (member === this.member) return undefined;
    const s = snapshot as Partial<ModelSnapshot> | null;
    if (typeof s !== 'object' || s === null || typeof s.options !== 'object' || !Array.isArray(s.schema))
      return this.refuse(member, 'damaged: not a model snapshot with a schema');
    const why = incompatibility(this.own.schema, this.own.resolvedOptions, s.schema, s.options);
    if (why) return this.refuse(member, why);
    const current = this.others.get(member);
    if (current && current.publishedAt > publishedAt) return undefined; // an older one, late
    const records = typeof s.recordsLearned === 'number' ? s.recordsLearned : 0;
    this.others.set(member, {
      snapshot: s as ModelSnapshot,
      model: undefined,
      records,
      publishedAt,
      receivedAt,
      ranges,
    });
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
    this.forgetOverlaps();
    if (this.others.size === 0) {
      this.serving = this.own;
      return true;
    }
    const serving = modelFromJSON(this.own.toJSON());
    for (const [member, c] of this.others) {
      try {
        c.model ??= modelFromJSON(c.snapshot!);
        c.snapshot = undefined;
        serving.merge(c.model);
      } catch (error) {
        // A contribution that passed the checks but still does not load or merge (its categories, say) stays out.
        this.others.delete(member);
        this.refuse(member, (error as Error).message);
      }
    }
    merged.add(serving);
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
        records: c.records,
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

  /** Forgets own copies of records a member whose name sorts first learned too (see the top of this file). */
  private forgetOverlaps(): void {
    const before = this.forgottenTwice;
    for (const [member, c] of this.others) {
      if (member > this.member) continue;
      for (const [source, recent] of this.recent) {
        const runs = c.ranges[source];
        if (!runs || runs.length === 0) continue;
        if (runs[runs.length - 1][1] < recent.min || runs[0][0] > recent.max) continue;
        for (let i = 0; i < RECENT_RECORDS; i++) {
          const position = recent.positions[i];
          if (position < 0 || !inRuns(runs, position)) continue;
          const record = recent.records[i]!;
          recent.positions[i] = -1;
          recent.records[i] = undefined;
          if (this.own.forgetOne(record).learned) this.forgottenTwice++;
        }
      }
    }
    if (this.forgottenTwice > before) this.version++;
  }

  private refuse(member: string, why: string): string {
    this.refused++;
    this.lastRefusal = `contribution of ${member} refused: ${why}`;
    return this.lastRefusal;
  }
}

/** Why two models' contributions must not be merged (other attributes or detector options), if they must not. */
export function incompatibility(
  mySchema: unknown,
  a: ResolvedOptions,
  theirSchema: unknown,
  b: Partial<ResolvedOptions>,
): string | undefined {
  if (JSON.stringify(mySchema) !== JSON.stringify(theirSchema)) return 'another attribute schema';
  if (!Array.isArray(b.extraDetectors)) return 'damaged: no detector options';
  if (a.detector !== b.detector || a.extraDetectors.join() !== b.extraDetectors.join()) return 'other detectors';
  if (a.halfLife !== b.halfLife) return 'another forgetting half-life';
  if (a.warmupRecords !== b.warmupRecords) return 'another warm-up';
  if (a.invalidValues !== b.invalidValues) return 'another invalid-value policy';
  if (JSON.stringify(a.threshold) !== JSON.stringify(b.threshold)) return 'another threshold';
  return undefined;
}

/** True when a position lies in one of the sorted runs. */
function inRuns(runs: [number, number][], position: number): boolean {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (position < runs[mid][0]) hi = mid - 1;
    else if (position > runs[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}
