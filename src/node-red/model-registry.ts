// Live models shared by the learner and scorer nodes of a flow. Flow context is where a model is kept (and, with a
// persistent store, saved); this registry holds the live instance so a message costs a Map lookup, not a context
// read, and remembers what the editor's sidebar shows.
import { modelFromJSON, type Model } from '../engine';
import { readFileIfPresent, writeFileDurably } from './durable-file';

/** The part of Node-RED's flow context the registry uses (callback form works with every store). */
export interface FlowContext {
  get(key: string, store: string | undefined, callback: (err: Error | null | undefined, value: unknown) => void): void;
  set(key: string, value: unknown, store: string | undefined, callback: (err?: Error | null) => void): void;
}

/** A value from flow context (callback form, which every store supports). */
export function readContext(context: FlowContext, key: string, store: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) =>
    context.get(key, store, (err, value) => (err ? reject(err) : resolve(value))),
  );
}

/** Writes a value to flow context; a persistent store serialises it through its toJSON(). */
export function writeContext(
  context: FlowContext,
  key: string,
  value: unknown,
  store: string | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => context.set(key, value, store, (err) => (err ? reject(err) : resolve())));
}

export interface ScorePoint {
  time: number;
  score: number;
  threshold: number;
  label?: number;
}

export interface EvaluationSummary {
  rocAuc: number;
  averagePrecision: number;
  precision: number;
  recall: number;
  f1: number;
}

const RECENT_SCORES = 200;

/** One named model of one flow (tab or subflow instance) and one context store. */
export class ModelEntry {
  model: Model | undefined;
  private loading: Promise<Model | undefined> | undefined;
  users = 0;
  /** The learner nodes of this model (by id), and whether each has an attribute table. */
  private readonly learners = new Map<string, boolean>();
  /** The field each scorer with a label field reads as its label (by node id). */
  private readonly labelFields = new Map<string, string>();
  private readonly labelFieldListeners = new Set<() => void>();
  /** Records learned per second, smoothed; updated by the learner. */
  learnRate = 0;
  /** Live evaluation by each scorer with a label field (by node id): scorers may use different detectors. */
  private readonly evaluations = new Map<string, DetectorEvaluation>();
  // Ring buffer: the scorer adds a point per record, so no shifting.
  private readonly scoreRing: ScorePoint[] = [];
  private scoreNext = 0;
  private changed = true;
  /** Records a learner was given again (a replay after a fault) and did not learn a second time. */
  replayed = 0;
  /** Something the last load had to work around (a damaged checkpoint), for a learner to warn about once. */
  loadWarning: string | undefined;
  /** With "one model per key": what the keyed learner says of its keys (the entry itself then holds no model). */
  keyedSummary: (() => unknown) | undefined;
  /** A learner still making the model (reading its fleet's model topic): scorers wait for it before scoring. */
  pending: Promise<unknown> | undefined;
  /** In a fleet: the members and their contributions (see fleet-sharing.ts). */
  fleetSummary: (() => unknown) | undefined;
  /** Saves run one after another, so a checkpoint never overwrites a later one. */
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly flowId: string,
    readonly name: string,
    readonly store: string | undefined,
    private readonly context: FlowContext,
    /** With a persistent store: the durable checkpoint written before every save (see checkpoint.ts). */
    readonly checkpointFile: string | undefined,
  ) {}

  /**
   * Reads the model once: a live model in context (redeploy) is reused; else the checkpoint, when there is one,
   * wins over the context store's value (every save writes the checkpoint first, so it is never older).
   */
  load(): Promise<Model | undefined> {
    if (this.model) return Promise.resolve(this.model);
    this.loading ??= readContext(this.context, this.name, this.store)
      .then(async (value) => {
        if (isLiveModel(value)) return value;
        const checkpoint = await this.readCheckpoint();
        if (checkpoint) return checkpoint;
        if (value === undefined || value === null) return undefined;
        try {
          return modelFromJSON(value);
        } catch (error) {
          throw new Error(`the value under "${this.name}" in flow context is not a model: ${(error as Error).message}`);
        }
      })
      .then(
        (model) => {
          // A learner may have created one meanwhile: it wins.
          this.model ??= model;
          this.loading = undefined;
          return this.model;
        },
        (error) => {
          this.loading = undefined;
          throw error;
        },
      );
    return this.loading;
  }

  private async readCheckpoint(): Promise<Model | undefined> {
    if (!this.checkpointFile) return undefined;
    try {
      const text = await readFileIfPresent(this.checkpointFile);
      return text === undefined ? undefined : modelFromJSON(text);
    } catch (error) {
      this.loadWarning =
        `the checkpoint ${this.checkpointFile} could not be read (${(error as Error).message}): using the ` +
        `context store's model; it is overwritten at the next save`;
      return undefined;
    }
  }

  /**
   * Writes the live model to flow context, with a persistent store after writing it durably to its checkpoint.
   * The snapshot is taken now, synchronously: what was learned before this call is in it.
   */
  save(model: Model | undefined = this.model): Promise<void> {
    const text = this.checkpointFile && model ? JSON.stringify(model) : undefined;
    const file = this.checkpointFile;
    const write = async (): Promise<void> => {
      if (file && text !== undefined) await writeFileDurably(file, text);
      await writeContext(this.context, this.name, model, this.store);
    };
    const saved = this.saving.then(write, write);
    this.saving = saved.catch(() => undefined);
    return saved;
  }

  /** A new instance of the same model (a fleet's merge of new contributions): scores and evaluations go on. */
  serve(model: Model): void {
    this.model = model;
    this.changed = true;
  }

  replace(model: Model | undefined): void {
    this.model = model;
    this.scoreRing.length = 0;
    this.scoreNext = 0;
    this.evaluations.clear();
    this.changed = true;
  }

  /** A scorer's evaluation so far; undefined removes it (the scorer closed). */
  setEvaluation(scorerId: string, evaluation: DetectorEvaluation | undefined): void {
    if (evaluation) this.evaluations.set(scorerId, evaluation);
    else this.evaluations.delete(scorerId);
    this.changed = true;
  }

  addScore(point: ScorePoint): void {
    this.scoreRing[this.scoreNext] = point;
    this.scoreNext = (this.scoreNext + 1) % RECENT_SCORES;
    this.changed = true;
  }

  /** The latest scores, oldest first. */
  recentScores(): ScorePoint[] {
    if (this.scoreRing.length < RECENT_SCORES) return this.scoreRing.slice();
    return [...this.scoreRing.slice(this.scoreNext), ...this.scoreRing.slice(0, this.scoreNext)];
  }

  addLearner(nodeId: string, hasTable: boolean): void {
    this.learners.set(nodeId, hasTable);
    this.changed = true;
  }

  removeLearner(nodeId: string): void {
    this.learners.delete(nodeId);
    this.changed = true;
  }

  /** A scorer's label field; undefined removes it (the scorer closed). Listeners hear of fields new to the model. */
  setLabelField(scorerId: string, field: string | undefined): void {
    const before = this.labelFieldNames();
    if (field) this.labelFields.set(scorerId, field);
    else this.labelFields.delete(scorerId);
    if (field && !before.includes(field)) for (const listener of this.labelFieldListeners) listener();
  }

  /** The fields scorers of this model read as their label, each once, sorted. */
  labelFieldNames(): string[] {
    return [...new Set(this.labelFields.values())].sort();
  }

  /** Calls listener whenever a scorer brings a label field the model did not have; returns the unsubscribe. */
  onLabelFieldAdded(listener: () => void): () => void {
    this.labelFieldListeners.add(listener);
    return () => this.labelFieldListeners.delete(listener);
  }

  markChanged(): void {
    this.changed = true;
  }

  /** True once after each change: the sidebar publisher sends only what moved. */
  takeChanged(): boolean {
    const was = this.changed;
    this.changed = false;
    return was;
  }

  summary(): ModelSummary {
    const model = this.model;
    let statistics: unknown;
    let schema: unknown;
    if (model) {
      statistics = model.statistics();
      schema = model.schema;
    }
    return {
      id: this.id,
      flowId: this.flowId,
      name: this.name,
      store: this.store ?? 'default',
      exists: model !== undefined,
      // Guessed and still standing: a learner with a table has taken the schema on (it keeps a model only when its
      // table matches the schema).
      schemaGuessed: model !== undefined && model.schemaGuessed && ![...this.learners.values()].some(Boolean),
      learners: [...this.learners.keys()],
      recordsLearned: model?.recordsLearned ?? 0,
      replayed: this.replayed,
      detectors: model?.detectors ?? [],
      learnRate: this.learnRate,
      schema,
      statistics,
      recentScores: this.recentScores(),
      ...this.evaluationSummary(model?.detectors[0]),
      ...(this.keyedSummary ? { keyed: this.keyedSummary() } : {}),
      ...(this.fleetSummary ? { fleet: this.fleetSummary() } : {}),
    };
  }

  /** Every scorer's evaluation, by detector, and the default detector's (else the first) as the evaluation. */
  private evaluationSummary(defaultDetector: string | undefined): Pick<ModelSummary, 'evaluation' | 'evaluations'> {
    const evaluations = [...this.evaluations.values()].sort((a, b) => a.detector.localeCompare(b.detector));
    const main = evaluations.find((e) => e.detector === defaultDetector) ?? evaluations[0];
    return { evaluation: main, evaluations };
  }
}

export interface ModelSummary {
  id: string;
  flowId: string;
  name: string;
  store: string;
  exists: boolean;
  /** The attribute types were guessed from the first records, and no learner of the model has a table. */
  schemaGuessed: boolean;
  /** The ids of the model's learner nodes (the sidebar copies a guessed schema into their tables). */
  learners: string[];
  recordsLearned: number;
  /** Records replayed from Kafka (after a fault) that the model had learned already and did not learn again. */
  replayed: number;
  /** The detectors the model learns, its default first. */
  detectors: string[];
  learnRate: number;
  schema: unknown;
  statistics: unknown;
  recentScores: ScorePoint[];
  /** The evaluation of the default detector's scorer, else of the first scorer with a label field. */
  evaluation: DetectorEvaluation | undefined;
  /** One per scorer with a label field, by detector name. */
  evaluations: DetectorEvaluation[];
  /** With "one model per key": the counts of keys and the most active ones (see keyed-models.ts). */
  keyed?: unknown;
  /** Sharing on a model topic: the members, their records and the age of their contributions. */
  fleet?: unknown;
}

/** A scorer's running evaluation, with the detector it scores with. */
export interface DetectorEvaluation extends EvaluationSummary {
  detector: string;
}

export function isLiveModel(value: unknown): value is Model {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Model).scoreOne === 'function' &&
    typeof (value as Model).learnOne === 'function'
  );
}

const entries = new Map<string, ModelEntry>();

/**
 * The entry for a model name in a flow; every acquire is paired with a release when the node closes. Every node
 * of the model passes the same checkpoint file (checkpointFileFor): whichever node loads the model first reads it.
 */
export function acquireModel(
  flowId: string,
  name: string,
  store: string | undefined,
  context: FlowContext,
  checkpointFile?: string,
): ModelEntry {
  const id = `${flowId}/${store ?? ''}/${name}`;
  let entry = entries.get(id);
  if (!entry) {
    entry = new ModelEntry(id, flowId, name, store, context, checkpointFile);
    entries.set(id, entry);
  }
  entry.users++;
  return entry;
}

export function releaseModel(entry: ModelEntry): void {
  entry.users--;
  if (entry.users <= 0) entries.delete(entry.id);
}

export function listModels(): ModelEntry[] {
  return [...entries.values()];
}

export function findModel(id: string): ModelEntry | undefined {
  return entries.get(id);
}
