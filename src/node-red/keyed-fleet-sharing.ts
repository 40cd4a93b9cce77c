// Fleet learning with one model per key: the unkeyed fleet's exchange (fleet-sharing.ts), once per key. Each member
// publishes, per key, its own contribution for that key, keyed ["<model>","<member>","<key>"] on the compacted model
// topic, so compaction keeps each member's latest per key; a checkpoint publishes only the keys learned since the
// last. A live key is a FleetModel (own + the others' latest for that key = the model served and scored). The
// others' contributions for every key are held here as they came, deflated: a key first seen or made live again
// after eviction starts from them, and its positions skip what the others learned. This member's own contribution
// of a key that leaves memory is held the same way (and published at the next checkpoint if it changed), so the
// live cap holds and nothing needs a file: the topic is where a fleet's models are kept, and it wins on restart.
import zlib from 'node:zlib';
import { FleetModel, modelFromJSON, type FleetMember, type Model } from '../engine';
import type { KafkaConnection } from '../kafka/connection';
import { ModelTopic } from '../kafka/model-topic';
import { CONTRIBUTION_FORMAT, decode, RecentSources, type Contribution } from './fleet-sharing';
import type { KeyedBacking } from './keyed-models';

/** A contribution of one key: the unkeyed format with the key it is of. */
export interface KeyedContribution extends Contribution {
  key: string;
}

export interface KeyedFleetOptions {
  modelName: string;
  member: string;
  warn: (message: string) => void;
}

export interface KeyedFleetSharingOptions {
  connection: KafkaConnection;
  topic: string;
  modelName: string;
  member: string;
  /** How often the others' contributions are merged in and, while learning, own is published at the least (ms). */
  intervalMs: number;
  warn: (message: string) => void;
  /** A live key's new serving model (others merged in): scorers and the learner use it from now on. */
  serve: (key: string, model: Model) => void;
}

/** A member's latest contribution of a key as read (or, for this member, as it left memory). */
interface Held {
  /** As it came, until the next merge takes it in; then undefined. */
  raw: Buffer | undefined;
  /** Deflated: what is kept for a key that is not live. */
  packed: Buffer | undefined;
}

interface LiveKey {
  fleet: FleetModel;
  /** The fleet model's version last published (or read from the topic). */
  published: number;
}

export interface KeyedFleetSummary extends KeyedFleetCounts {
  topic: string;
  published: number;
  lastContributionBytes: number;
  publishedBytes: number;
}

/** What the keys' contributions hold, without the topic's figures. */
export interface KeyedFleetCounts {
  member: string;
  /** Every member with a contribution of some key, this one first. */
  members: string[];
  /** Keys with a contribution of some member, and those live. */
  keys: number;
  liveKeys: number;
  /** Contributions of others (and own of keys not live) held deflated, and their bytes. */
  heldContributions: number;
  heldBytes: number;
  refused: number;
  learnedTwiceForgotten: number;
  lastRefusal?: string;
}

export interface KeyFleetView {
  members: FleetMember[];
}

/** A contribution to publish: its record key and value; `published` once the topic has it. */
export interface Outgoing {
  messages: { key: string; value: Buffer }[];
  published(): void;
}

/**
 * The keys' fleet models and the contributions they are made of, without the topic: what arrives is given to
 * receive(), what is to be published comes from outgoing(). The KeyedModels of the learner's name use it as their
 * backing, so keys leaving and entering memory go through it.
 */
export class KeyedFleet implements KeyedBacking {
  /** Per key, per member, the latest contribution. */
  private readonly held = new Map<string, Map<string, Held>>();
  private readonly live = new Map<string, LiveKey>();
  /** Keys with contributions read but not yet taken in (merged into a live key, deflated). */
  private readonly arrived = new Set<string>();
  /** Keys whose own contribution, held since the key left memory, is not on the topic yet. */
  private readonly unpublished = new Set<string>();
  private started = false;
  private heldBytes = 0;
  private heldCount = 0;
  /** Refusals and forgotten overlaps of keys no longer live, kept for the summary. */
  private refusedBefore = 0;
  private forgottenBefore = 0;
  private lastRefusal: string | undefined;
  private readonly warnedRefusals = new Set<string>();

  constructor(private readonly options: KeyedFleetOptions) {}

  /** The topic has been read to its end (or could not be): keys may be made live, own echoes are ignored. */
  markStarted(): void {
    this.started = true;
  }

  /** The fleet model of a live key: what the learner learns into. */
  fleetOf(key: string): FleetModel | undefined {
    return this.live.get(key)?.fleet;
  }

  // KeyedBacking: how KeyedModels gets and drops the keys' models.

  open(key: string, factory: ((key: string) => Model) | undefined): Model | undefined {
    const existing = this.live.get(key);
    if (existing) return existing.fleet.serving;
    // Before the topic is read, this member's own contributions are not known yet.
    if (!this.started) return undefined;
    const built = this.build(key, factory);
    if (!built) return undefined;
    // An own held since eviction and not yet published is published by the live key from now on.
    const pending = this.unpublished.delete(key);
    // While live, own is the fleet model's: the held copy would only go stale.
    this.unhold(key, this.options.member);
    this.live.set(key, { fleet: built.fleet, published: pending ? -1 : built.fleet.version });
    return built.fleet.serving;
  }

  peek(key: string, factory: ((key: string) => Model) | undefined): Model | undefined {
    return this.live.get(key)?.fleet.serving ?? this.build(key, factory)?.fleet.serving;
  }

  evicted(key: string): void {
    const live = this.live.get(key);
    if (!live) return;
    this.live.delete(key);
    this.refusedBefore += live.fleet.refused;
    this.forgottenBefore += live.fleet.forgottenTwice;
    // Own is held as its contribution would be published: from it the key is made live again.
    this.hold(key, this.options.member, this.encode(key, live.fleet));
    if (live.fleet.version !== live.published) this.unpublished.add(key);
    this.arrived.add(key);
  }

  replaced(key: string, model: Model): Model {
    const live = this.live.get(key);
    if (!live) {
      // Not live: made live around the new own, with the others' contributions for the key.
      this.unhold(key, this.options.member);
      this.unpublished.delete(key);
      const built = this.build(key, () => model)!;
      this.live.set(key, { fleet: built.fleet, published: -1 });
      return built.fleet.serving;
    }
    live.fleet.replaceOwn(model);
    return live.fleet.serving;
  }

  has(key: string): boolean {
    return this.live.has(key) || (this.held.get(key)?.size ?? 0) > 0;
  }

  storedKeys(isLive: (key: string) => boolean): string[] {
    const out: string[] = [];
    for (const [key, members] of this.held) if (members.size > 0 && !isLive(key)) out.push(key);
    return out;
  }

  get storedCount(): number {
    let n = 0;
    for (const [key, members] of this.held) if (members.size > 0 && !this.live.has(key)) n++;
    return n;
  }

  /** The members of one key, each with its own records of it (the sidebar's key detail). */
  describe(key: string): KeyFleetView | undefined {
    const live = this.live.get(key);
    if (live) return { members: live.fleet.members() };
    const members = this.held.get(key);
    if (!members) return undefined;
    const out: FleetMember[] = [];
    for (const [member, held] of members) {
      try {
        const c = this.contributionOf(held);
        const own = member === this.options.member;
        out.push({
          member,
          records: c.snapshot.recordsLearned ?? 0,
          own,
          ...(own ? {} : { publishedAt: c.publishedAt }),
        });
      } catch {
        // Damaged: counted when it was read.
      }
    }
    if (!out.some((m) => m.own)) out.unshift({ member: this.options.member, records: 0, own: true });
    out.sort((a, b) => Number(b.own) - Number(a.own) || a.member.localeCompare(b.member));
    return { members: out };
  }

  counts(): KeyedFleetCounts {
    const members = new Set<string>([this.options.member]);
    let refused = this.refusedBefore;
    let forgotten = this.forgottenBefore;
    for (const held of this.held.values()) for (const member of held.keys()) members.add(member);
    for (const { fleet } of this.live.values()) {
      refused += fleet.refused;
      forgotten += fleet.forgottenTwice;
      for (const m of fleet.members()) members.add(m.member);
    }
    const keys = new Set([...this.live.keys(), ...this.storedKeys((k) => this.live.has(k))]);
    return {
      member: this.options.member,
      members: [...members],
      keys: keys.size,
      liveKeys: this.live.size,
      heldContributions: this.heldCount,
      heldBytes: this.heldBytes,
      refused,
      learnedTwiceForgotten: forgotten,
      ...(this.lastRefusal ? { lastRefusal: this.lastRefusal } : {}),
    };
  }

  /** A key's fleet model: own from this member's held contribution, else from the factory; the others' merged in. */
  private build(
    key: string,
    factory: ((key: string) => Model) | undefined,
  ): { fleet: FleetModel; fromTopic: boolean } | undefined {
    this.takeArrived();
    const members = this.held.get(key);
    const mine = members?.get(this.options.member);
    let own: Model | undefined;
    let ranges: Contribution['ranges'];
    if (mine) {
      try {
        const c = this.contributionOf(mine);
        own = modelFromJSON(c.snapshot);
        ranges = c.ranges;
      } catch (error) {
        this.options.warn(
          `this member's contribution of key "${key}" on the model topic is damaged ` +
            `(${(error as Error).message}): starting the key anew`,
        );
      }
    }
    const fromTopic = own !== undefined;
    own ??= factory?.(key);
    if (!own) return undefined;
    const fleet = new FleetModel(this.options.member, own, fromTopic ? ranges : undefined);
    if (members)
      for (const [member, held] of members) if (member !== this.options.member) this.accept(fleet, key, member, held);
    fleet.rebuild();
    return { fleet, fromTopic };
  }

  private accept(fleet: FleetModel, key: string, member: string, held: Held): void {
    let refusal: string | undefined;
    try {
      const c = this.contributionOf(held);
      refusal = fleet.accept(member, c.snapshot, c.publishedAt, Date.now(), c.ranges);
    } catch (error) {
      fleet.refused++;
      refusal = fleet.lastRefusal = `contribution of ${member} refused: ${(error as Error).message}`;
    }
    if (!refusal) return;
    this.lastRefusal = `key "${key}": ${refusal}`;
    // Once per member and reason: the same refusal comes again with every key and every contribution.
    const once = `${member}\u0000${refusal}`;
    if (!this.warnedRefusals.has(once)) {
      this.warnedRefusals.add(once);
      this.options.warn(this.lastRefusal);
    }
  }

  private contributionOf(held: Held): KeyedContribution {
    const raw = held.raw ?? zlib.inflateRawSync(held.packed!);
    return decode(raw) as KeyedContribution;
  }

  private encode(key: string, fleet: FleetModel): Buffer {
    const contribution: KeyedContribution = {
      format: CONTRIBUTION_FORMAT,
      version: 1,
      model: this.options.modelName,
      member: this.options.member,
      key,
      publishedAt: Date.now(),
      snapshot: fleet.own.toJSON(),
      ranges: fleet.ownRanges(),
    };
    return Buffer.from(JSON.stringify(contribution));
  }

  /**
   * The contributions of every key whose own changed since it was last published, snapshotted now (undefined when
   * none did); `published()` once the topic has them.
   */
  outgoing(): Outgoing | undefined {
    const messages: { key: string; value: Buffer }[] = [];
    const published: (() => void)[] = [];
    for (const [key, live] of this.live) {
      const version = live.fleet.version;
      if (version === live.published) continue;
      messages.push({
        key: topicKeyOf(this.options.modelName, this.options.member, key),
        value: this.encode(key, live.fleet),
      });
      published.push(() => (live.published = Math.max(live.published, version)));
    }
    for (const key of this.unpublished) {
      const held = this.held.get(key)?.get(this.options.member);
      if (!held) continue;
      const value = held.raw ?? zlib.inflateRawSync(held.packed!);
      messages.push({ key: topicKeyOf(this.options.modelName, this.options.member, key), value });
      published.push(() => {
        if (this.held.get(key)?.get(this.options.member) !== held) return;
        this.unpublished.delete(key);
        this.arrived.add(key); // deflated at the next merge
      });
    }
    if (messages.length === 0) return undefined;
    return { messages, published: () => published.forEach((done) => done()) };
  }

  /** Takes in what arrived and rebuilds the live keys whose others changed: `serve` gets each new serving model. */
  merge(serve: (key: string, model: Model) => void): void {
    this.takeArrived();
    for (const [key, live] of this.live) if (live.fleet.rebuild()) serve(key, live.fleet.serving);
  }

  /** Contributions read since the last merge: into their live key's fleet model, then deflated. */
  private takeArrived(): void {
    for (const key of this.arrived) {
      const members = this.held.get(key);
      if (!members) continue;
      const live = this.live.get(key);
      for (const [member, held] of members) {
        if (!held.raw) continue;
        if (live && member !== this.options.member) this.accept(live.fleet, key, member, held);
        // This member's own waiting to be published stays as it is until then (it is published from it).
        if (member === this.options.member && this.unpublished.has(key)) continue;
        const packed = zlib.deflateRawSync(held.raw);
        this.heldBytes += packed.length - held.raw.length;
        held.packed = packed;
        held.raw = undefined;
      }
    }
    this.arrived.clear();
  }

  private hold(key: string, member: string, value: Buffer): void {
    let members = this.held.get(key);
    if (!members) this.held.set(key, (members = new Map()));
    const before = members.get(member);
    if (before) this.heldBytes -= (before.raw ?? before.packed!).length;
    else this.heldCount++;
    members.set(member, { raw: value, packed: undefined });
    this.heldBytes += value.length;
  }

  private unhold(key: string, member: string): void {
    const members = this.held.get(key);
    const before = members?.get(member);
    if (!before) return;
    this.heldBytes -= (before.raw ?? before.packed!).length;
    this.heldCount--;
    members!.delete(member);
    if (members!.size === 0) this.held.delete(key);
  }

  /** A record of the model topic: a contribution of a key of this model (or not: then nothing happens). */
  receive(topicKey: string, value: Buffer | null): void {
    const parsed = parseTopicKey(topicKey, this.options.modelName);
    if (!parsed) return; // another model's, or an unkeyed contribution
    const [member, key] = parsed;
    // After the start, this member's own contributions are what it has: the topic echoes them back.
    if (this.started && member === this.options.member) return;
    if (value === null) {
      this.unhold(key, member);
      this.live.get(key)?.fleet.drop(member);
      return;
    }
    this.hold(key, member, value);
    this.arrived.add(key);
  }
}

/** The learner's entry point: a KeyedFleet kept in step with the compacted model topic. */
export class KeyedFleetSharing {
  readonly fleet: KeyedFleet;
  private readonly topic: ModelTopic;
  private publishing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly recent = new RecentSources();
  private closed = false;

  constructor(private readonly options: KeyedFleetSharingOptions) {
    this.fleet = new KeyedFleet({ modelName: options.modelName, member: options.member, warn: options.warn });
    this.topic = new ModelTopic(options.connection, options.topic, `stream-ml-fleet-${options.member}`, {
      record: (key, value) => this.fleet.receive(key, value),
      warn: options.warn,
    });
  }

  /** Reads the topic to its end: this member's own contributions per key, and the others'. */
  async start(): Promise<void> {
    this.topic.start();
    await this.topic.caughtUp();
    this.begin();
  }

  /** Goes on without what the topic holds (when the start could not read it). */
  begin(): void {
    this.fleet.markStarted();
    this.merge();
    this.timer ??= setInterval(() => this.tick(), this.options.intervalMs);
  }

  /** The fleet model of a live key: what the learner learns into. */
  fleetOf(key: string): FleetModel | undefined {
    return this.fleet.fleetOf(key);
  }

  /**
   * Publishes every key whose own changed since its last publish; resolves once the topic has them. One at a
   * time: the snapshots are taken when the previous publish is done, so they have everything learned before.
   */
  checkpoint(): Promise<void> {
    const next = this.publishing.then(async () => {
      const outgoing = this.fleet.outgoing();
      if (!outgoing) return;
      await this.topic.publishAll(outgoing.messages);
      outgoing.published();
    });
    this.publishing = next.catch(() => undefined);
    return next;
  }

  /** As FleetSharing.syncFor: undefined when the source was read a moment ago, else a read of the topic to its end. */
  syncFor(source: string): Promise<void> | undefined {
    return this.recent.readRecently(source) ? undefined : this.topic.caughtUp().then(() => this.merge());
  }

  summary(): KeyedFleetSummary {
    return {
      ...this.fleet.counts(),
      topic: this.options.topic,
      published: this.topic.stats.published,
      lastContributionBytes: this.topic.stats.lastPublishedBytes,
      publishedBytes: this.topic.stats.publishedBytes,
    };
  }

  /** Stops reading (the learner publishes what is left with a last checkpoint before). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
    await this.topic.close();
  }

  private tick(): void {
    if (this.closed) return;
    this.merge();
    this.checkpoint().catch((error: Error) =>
      this.options.warn(`publishing to ${this.options.topic} failed: ${error.message}`),
    );
  }

  private merge(): void {
    this.fleet.merge(this.options.serve);
  }
}

/** The record key of a member's contribution of one key of a model. */
export function topicKeyOf(model: string, member: string, key: string): string {
  return JSON.stringify([model, member, key]);
}

/** [member, key] of a record key of this model's keyed contributions, else undefined. */
export function parseTopicKey(topicKey: string, model: string): [string, string] | undefined {
  try {
    const parsed = JSON.parse(topicKey) as unknown;
    if (
      Array.isArray(parsed) &&
      parsed.length === 3 &&
      parsed[0] === model &&
      typeof parsed[1] === 'string' &&
      typeof parsed[2] === 'string'
    )
      return [parsed[1], parsed[2]];
  } catch {
    // Not one of ours.
  }
  return undefined;
}
