// Fleet learning for a learner: its FleetModel kept in step with a compacted model topic. Each member publishes
// its own contribution (keyed by model name and member) and merges every other member's latest into the model it
// serves. A Kafka record counts as learned (its offset may be committed) only once a published contribution has it,
// so a member that dies never takes learned-but-unpublished records with it: whoever reads its partitions next
// learns them. Before learning from a partition it has not read lately (a rebalance may have brought it), a member
// reads the topic to its end, so the positions other members' contributions cover are skipped, not learned twice.
import os from 'node:os';
import crypto from 'node:crypto';
import {
  FleetModel,
  modelFromJSON,
  type FleetMember,
  type LearnedRanges,
  type Model,
  type ModelSnapshot,
} from '../engine';
import type { KafkaConnection } from '../kafka/connection';
import { ModelTopic } from '../kafka/model-topic';

export const CONTRIBUTION_FORMAT = 'stream-ml-contribution';

export interface Contribution {
  format: typeof CONTRIBUTION_FORMAT;
  version: 1;
  model: string;
  member: string;
  /** ms since the epoch, on the member's clock. */
  publishedAt: number;
  snapshot: ModelSnapshot;
  /** Per source, the runs of positions the member learned itself (to undo a record two members learned). */
  ranges?: LearnedRanges;
}

export interface FleetSharingOptions {
  connection: KafkaConnection;
  topic: string;
  modelName: string;
  member: string;
  /** How often others' contributions are merged in and, while learning, own is published at the least (ms). */
  intervalMs: number;
  warn: (message: string) => void;
  /** A new serving model (others merged in): the learner serves it from now on. */
  serve: (model: Model) => void;
}

/** A partition read less recently than this may have been another member's meanwhile. */
const QUIET_MS = 1_000;

/** When this member last read each source (a Kafka topic and partition): for the sync before learning from it. */
export class RecentSources {
  private readonly lastRead = new Map<string, number>();

  /** True when the source was read less than QUIET_MS ago; notes this read either way. */
  readRecently(source: string): boolean {
    const now = Date.now();
    const last = this.lastRead.get(source);
    this.lastRead.set(source, now);
    return last !== undefined && now - last < QUIET_MS;
  }
}

export interface FleetSummary {
  member: string;
  topic: string;
  members: (FleetMember & { ageMs?: number })[];
  records: number;
  refused: number;
  /** Records this member forgot because a member whose name sorts first had learned them too (a rebalance). */
  learnedTwiceForgotten: number;
  lastRefusal?: string;
  published: number;
  lastContributionBytes: number;
  publishedBytes: number;
}

/** A member name that stays the same across restarts of one Node-RED, and differs between two on one host. */
export function defaultMemberName(userDir: unknown): string {
  const folder = typeof userDir === 'string' ? userDir : process.cwd();
  const hash = crypto.createHash('sha256').update(folder).digest('hex').slice(0, 6);
  return `${os.hostname()}-${hash}`;
}

export class FleetSharing {
  private readonly topic: ModelTopic;
  private fleet: FleetModel | undefined;
  /** Latest value per member read before the fleet model exists (the start). */
  private readonly early = new Map<string, Buffer | null>();
  private published = -1;
  private publishing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly recent = new RecentSources();
  private closed = false;

  constructor(private readonly options: FleetSharingOptions) {
    this.topic = new ModelTopic(options.connection, options.topic, `stream-ml-fleet-${options.member}`, {
      record: (key, value) => this.onRecord(key, value),
      warn: options.warn,
    });
  }

  /**
   * Reads the topic to its end, then makes the fleet model: own is this member's latest contribution on the topic
   * (what the fleet knows it learned), else what `fallback` gives (a model kept in context, or a new one).
   */
  async start(choose: (own: Model | undefined) => Model): Promise<FleetModel> {
    this.topic.start();
    await this.topic.caughtUp();
    const mine = this.early.get(this.options.member);
    let own: Model | undefined;
    let ranges: LearnedRanges | undefined;
    if (mine) {
      try {
        const contribution = decode(mine);
        own = modelFromJSON(contribution.snapshot);
        ranges = contribution.ranges;
      } catch (error) {
        this.options.warn(
          `this member's contribution on ${this.options.topic} is damaged (${(error as Error).message})`,
        );
      }
    }
    const chosen = choose(own);
    const fleet = new FleetModel(this.options.member, chosen, chosen === own ? ranges : undefined);
    this.fleet = fleet;
    for (const [member, value] of this.early) if (member !== this.options.member) this.take(member, value);
    this.early.clear();
    fleet.rebuild();
    // What was read is published: an unchanged own is not published again.
    this.published = own && fleet.own === own ? fleet.version : -1;
    this.timer ??= setInterval(() => this.tick(), this.options.intervalMs);
    return fleet;
  }

  /** Makes the fleet model around `own` without reading the topic first (when the start could not). */
  adopt(own: Model): FleetModel {
    this.fleet = new FleetModel(this.options.member, own);
    this.timer ??= setInterval(() => this.tick(), this.options.intervalMs);
    return this.fleet;
  }

  /**
   * Publishes own when it changed since the last publish; resolves once the topic has it. One at a time: the
   * snapshot is taken when the previous publish is done, so it has everything learned before this call.
   */
  checkpoint(): Promise<void> {
    const next = this.publishing.then(() => this.publishNow());
    this.publishing = next.catch(() => undefined);
    return next;
  }

  /**
   * Undefined when the source's records can be learned at once (this member read it a moment ago); else a promise
   * that resolves once the topic has been read to its end and merged in (the partition may have been another
   * member's meanwhile).
   */
  syncFor(source: string): Promise<void> | undefined {
    return this.recent.readRecently(source) ? undefined : this.topic.caughtUp().then(() => this.merge());
  }

  summary(): FleetSummary | undefined {
    const fleet = this.fleet;
    if (!fleet) return undefined;
    const now = Date.now();
    return {
      member: this.options.member,
      topic: this.options.topic,
      members: fleet.members().map((m) => ({
        ...m,
        ...(m.publishedAt !== undefined ? { ageMs: Math.max(0, now - m.publishedAt) } : {}),
      })),
      records: fleet.serving.recordsLearned,
      refused: fleet.refused,
      learnedTwiceForgotten: fleet.forgottenTwice,
      ...(fleet.lastRefusal ? { lastRefusal: fleet.lastRefusal } : {}),
      published: this.topic.stats.published,
      lastContributionBytes: this.topic.stats.lastPublishedBytes,
      publishedBytes: this.topic.stats.publishedBytes,
    };
  }

  /** Publishes what is left, then stops reading. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
    await this.topic.close();
  }

  private async publishNow(): Promise<void> {
    const fleet = this.fleet;
    if (!fleet || fleet.version === this.published) return;
    const version = fleet.version;
    const contribution: Contribution = {
      format: CONTRIBUTION_FORMAT,
      version: 1,
      model: this.options.modelName,
      member: this.options.member,
      publishedAt: Date.now(),
      snapshot: fleet.own.toJSON(),
      ranges: fleet.ownRanges(),
    };
    await this.topic.publish(
      keyOf(this.options.modelName, this.options.member),
      Buffer.from(JSON.stringify(contribution)),
    );
    this.published = Math.max(this.published, version);
  }

  private tick(): void {
    if (this.closed) return;
    this.merge();
    this.checkpoint().catch((error: Error) =>
      this.options.warn(`publishing to ${this.options.topic} failed: ${error.message}`),
    );
  }

  private merge(): void {
    const fleet = this.fleet;
    if (fleet?.rebuild()) this.options.serve(fleet.serving);
  }

  private onRecord(key: string, value: Buffer | null): void {
    const member = memberOf(key, this.options.modelName);
    if (member === undefined) return; // another model's
    if (!this.fleet) this.early.set(member, value);
    else if (member !== this.options.member) this.take(member, value);
  }

  private take(member: string, value: Buffer | null): void {
    const fleet = this.fleet!;
    if (value === null) return fleet.drop(member);
    let contribution: Contribution;
    try {
      contribution = decode(value);
    } catch (error) {
      fleet.refused++;
      fleet.lastRefusal = `contribution of ${member} refused: ${(error as Error).message}`;
      this.options.warn(fleet.lastRefusal);
      return;
    }
    const refusal = fleet.accept(
      member,
      contribution.snapshot,
      contribution.publishedAt,
      Date.now(),
      contribution.ranges,
    );
    if (refusal) this.options.warn(refusal);
  }
}

/** The record key of a member's contribution to a model. */
export function keyOf(model: string, member: string): string {
  return JSON.stringify([model, member]);
}

/** The member of a key, when the key is of this model's contributions. */
export function memberOf(key: string, model: string): string | undefined {
  try {
    const parsed = JSON.parse(key) as unknown;
    if (Array.isArray(parsed) && parsed.length === 2 && parsed[0] === model && typeof parsed[1] === 'string')
      return parsed[1];
  } catch {
    // Not one of ours.
  }
  return undefined;
}

export function decode(value: Buffer): Contribution {
  const parsed = JSON.parse(value.toString('utf8')) as Partial<Contribution>;
  if (parsed.format !== CONTRIBUTION_FORMAT || parsed.version !== 1)
    throw new Error(`not a ${CONTRIBUTION_FORMAT} (version 1)`);
  if (typeof parsed.member !== 'string' || typeof parsed.publishedAt !== 'number' || !parsed.snapshot)
    throw new Error('a contribution needs member, publishedAt and snapshot');
  return parsed as Contribution;
}
