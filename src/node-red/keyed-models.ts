// One model per key (a machine, a device) under one model name, shared by the learner and scorer nodes of a flow.
// At most maxLive models are in memory: past that the least recently used one is written to a file of its own (with
// a persistent context store) and dropped, and read back when its key returns; with the memory store an evicted
// model is forgotten. A file per key rather than the context store itself: Node-RED's file store keeps a flow's
// whole context in one cached JSON file, so thousands of models there would all stay in memory and be rewritten
// together every 30 s.
import fs from 'node:fs';
import path from 'node:path';
import { modelFromJSON, type Model } from '../engine';
import { safeName } from './checkpoint';
import { isLiveModel, readContext, writeContext, type FlowContext } from './model-registry';

/** Live models when the node does not say: about 20 MB of auto models of 3 to 9 attributes (bench/keyed.ts). */
export const DEFAULT_MAX_LIVE = 100;
export const MAX_KEY_LENGTH = 200;
/** The key of the shared model that records without a key learn into under the "default model" policy. */
export const DEFAULT_KEY = '';
const DEFAULT_FILE = '=default'; // '=' never comes out of safeName, so no key's file can be named so

/** A live model of one key. */
export interface KeyedSlot {
  readonly key: string;
  model: Model;
  /** Learned (or replaced) since its file was last written. */
  dirty: boolean;
  /** For the sidebar: records learned per second at the last tick, the count then, and the last score given. */
  rate?: number;
  learnedAtTick?: number;
  lastScore?: number;
}

/** What the sidebar shows of a keyed model: counts, and the most active live keys. */
export interface KeyedSummary {
  live: number;
  stored: number;
  evicted: number;
  reloaded: number;
  forgotten: number;
  persistent: boolean;
  keys: KeySummary[];
}

export interface KeySummary {
  key: string;
  recordsLearned: number;
  learnRate: number;
  lastScore: number | undefined;
}

/**
 * Where the keys' models live when not in memory, instead of the folder or context: fleet learning per key
 * (keyed-fleet-sharing.ts), whose models are a member's own contribution merged with the others'.
 */
export interface KeyedBacking {
  /** The key's model to make live (a new own from `factory` when the key has none), or undefined. */
  open(key: string, factory: ((key: string) => Model) | undefined): Model | undefined;
  /** The key's model without making it live (statistics, a snapshot, the sidebar's detail). */
  peek(key: string, factory: ((key: string) => Model) | undefined): Model | undefined;
  /** The key's live model leaves memory. */
  evicted(key: string): void;
  /** A new model for the key (reset, load): returns the model to serve. */
  replaced(key: string, model: Model): Model;
  has(key: string): boolean;
  /** Keys known that are not live. */
  storedKeys(live: (key: string) => boolean): string[];
  readonly storedCount: number;
  /** What the sidebar's key detail shows of the key's sharing (a fleet: its members and their records). */
  describe(key: string): unknown;
}

/** How many keys the sidebar lists, the most active first. */
const SUMMARY_KEYS = 20;

export class KeyedModels {
  users = 0;
  maxLive = DEFAULT_MAX_LIVE;
  /** Creates a key's model on first sight with a learner's settings; without one, unknown keys have no model. */
  factory: ((key: string) => Model) | undefined;
  /** Told when a key's file cannot be read or written. */
  onWarning: (message: string) => void = () => undefined;
  /** Insertion order is recency: the first entry is the least recently used. */
  private readonly live = new Map<string, KeyedSlot>();
  /** Keys whose model is in its file and not live. */
  private readonly stored = new Set<string>();
  private last: KeyedSlot | undefined;
  /** Files of evicted models written but not yet flushed to disk: the next save flushes them, once each. */
  private readonly unsynced = new Set<string>();
  private loading: Promise<void> | undefined;
  private backingUsed: KeyedBacking | undefined;
  /** Models written to their file and dropped, read back, and (memory store) dropped and forgotten. */
  evicted = 0;
  reloaded = 0;
  forgotten = 0;

  constructor(
    readonly id: string,
    readonly flowId: string,
    readonly name: string,
    readonly store: string | undefined,
    private readonly context: FlowContext,
    /** With a persistent store: the folder of the per-key files (keyedFolderFor). */
    readonly folder: string | undefined,
  ) {}

  /** Fleet learning per key: the models kept elsewhere. Setting it drops what is live (another's models). */
  get backing(): KeyedBacking | undefined {
    return this.backingUsed;
  }

  set backing(backing: KeyedBacking | undefined) {
    this.backingUsed = backing;
    this.live.clear();
    this.stored.clear();
    this.last = undefined;
  }

  /** Swaps a live key's model (a fleet's serving model rebuilt): scorers score the new one from now on. */
  replaceLive(key: string, model: Model): void {
    const slot = this.live.get(key);
    if (slot) slot.model = model;
  }

  get liveCount(): number {
    return this.live.size;
  }

  /** Keys whose model is saved and not in memory. */
  get storedCount(): number {
    return this.backingUsed ? this.backingUsed.storedCount : this.stored.size;
  }

  /** Where the memory store keeps the live models across a redeploy. */
  private get contextKey(): string {
    return `stream-ml-keyed-${safeName(this.name)}`;
  }

  /** Finds what is kept, once: the files of a persistent store, or the live models a redeploy left in context. */
  load(): Promise<void> {
    this.loading ??= (async () => {
      if (this.backingUsed) return;
      if (this.folder) {
        let files: string[] = [];
        try {
          files = await fs.promises.readdir(this.folder);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
        if (this.backingUsed) return;
        for (const file of files) {
          const key = keyOfFile(file);
          if (key !== undefined && !this.live.has(key)) this.stored.add(key);
        }
      } else {
        const kept = await readContext(this.context, this.contextKey, this.store);
        if (this.backingUsed) return;
        if (kept instanceof Map)
          for (const [key, model] of kept as Map<string, unknown>)
            if (typeof key === 'string' && isLiveModel(model) && !this.live.has(key))
              this.live.set(key, { key, model, dirty: false });
        this.evictOver();
      }
    })();
    return this.loading;
  }

  /** The key's live model: in memory, else read back from its file, else (create) a new one from the factory. */
  slot(key: string, create: boolean): KeyedSlot | undefined {
    const last = this.last;
    // The most recent already: nothing to reorder.
    if (last !== undefined && last.key === key) return last;
    let slot = this.live.get(key);
    if (slot) {
      this.live.delete(key);
      this.live.set(key, slot);
    } else if (this.backingUsed) {
      const model = this.backingUsed.open(key, create ? this.factory : undefined);
      if (!model) return undefined;
      slot = { key, model, dirty: false };
      this.live.set(key, slot);
      this.evictOver();
    } else {
      const model = this.stored.has(key) ? this.readStored(key) : undefined;
      if (model) {
        this.stored.delete(key);
        this.reloaded++;
      } else if (!create || !this.factory) return undefined;
      slot = { key, model: model ?? this.factory!(key), dirty: model === undefined };
      this.live.set(key, slot);
      this.evictOver();
    }
    this.last = slot;
    return slot;
  }

  /** True when the key has a model, live or stored. */
  has(key: string): boolean {
    if (this.backingUsed) return this.live.has(key) || this.backingUsed.has(key);
    return this.live.has(key) || this.stored.has(key);
  }

  /** Every key with a model, live ones first (most recently used last). */
  keys(): string[] {
    if (this.backingUsed) return [...this.live.keys(), ...this.backingUsed.storedKeys((k) => this.live.has(k))];
    return [...this.live.keys(), ...this.stored];
  }

  /** The live models, least recently used first. */
  *liveModels(): IterableIterator<Model> {
    for (const slot of this.live.values()) yield slot.model;
  }

  /** The key's model as a snapshot, live or from its file (without making it live). */
  snapshotOf(key: string): unknown {
    const slot = this.live.get(key);
    if (slot) return slot.model.toJSON();
    if (this.backingUsed) return this.backingUsed.peek(key, this.factory)?.toJSON();
    if (!this.stored.has(key)) return undefined;
    return JSON.parse(fs.readFileSync(this.fileOf(key), 'utf8'));
  }

  /** The key's model, live or read from its file without making it live (statistics of every key). */
  modelOf(key: string): Model | undefined {
    const live = this.live.get(key)?.model;
    if (live || !this.backingUsed) return live ?? (this.stored.has(key) ? this.readStored(key) : undefined);
    return this.backingUsed.peek(key, this.factory);
  }

  /** Replaces (or sets) a key's model: reset, load. */
  set(key: string, model: Model): KeyedSlot {
    if (this.backingUsed) model = this.backingUsed.replaced(key, model);
    this.stored.delete(key);
    this.live.delete(key);
    const slot: KeyedSlot = { key, model, dirty: true };
    this.live.set(key, slot);
    this.last = slot;
    this.evictOver();
    return slot;
  }

  /** Drops a key: its model and its file. */
  delete(key: string): void {
    if (this.last?.key === key) this.last = undefined;
    this.live.delete(key);
    this.stored.delete(key);
    if (this.folder && !this.backingUsed) fs.rmSync(this.fileOf(key), { force: true });
  }

  /** Once a second (the learner's status timer): each live key's learning rate. */
  tick(): void {
    for (const slot of this.live.values()) {
      const learned = slot.model.recordsLearned;
      slot.rate = slot.learnedAtTick === undefined ? 0 : Math.max(0, learned - slot.learnedAtTick);
      slot.learnedAtTick = learned;
    }
  }

  summary(): KeyedSummary {
    const keys: KeySummary[] = [];
    for (const slot of this.live.values())
      keys.push({
        key: slot.key,
        recordsLearned: slot.model.recordsLearned,
        learnRate: slot.rate ?? 0,
        lastScore: slot.lastScore,
      });
    keys.sort((a, b) => b.learnRate - a.learnRate || b.recordsLearned - a.recordsLearned);
    return {
      live: this.live.size,
      stored: this.storedCount,
      evicted: this.evicted,
      reloaded: this.reloaded,
      forgotten: this.forgotten,
      persistent: this.folder !== undefined || this.backingUsed !== undefined,
      keys: keys.slice(0, SUMMARY_KEYS),
    };
  }

  /** Writes every model learned since its last write (persistent store), or leaves the live models in context. */
  save(): Promise<void> {
    // A backing keeps the models itself (a fleet: on its model topic).
    if (this.backingUsed) return Promise.resolve();
    if (!this.folder) {
      const models = new Map<string, Model>();
      for (const [key, slot] of this.live) models.set(key, slot.model);
      return writeContext(this.context, this.contextKey, models, this.store);
    }
    try {
      let wrote = this.unsynced.size > 0;
      for (const file of this.unsynced) syncFile(file);
      this.unsynced.clear();
      for (const slot of this.live.values()) {
        if (!slot.dirty) continue;
        this.write(slot, true);
        wrote = true;
      }
      if (wrote) syncFolder(this.folder);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  private evictOver(): void {
    const limit = Math.max(1, this.maxLive);
    while (this.live.size > limit) {
      const oldest = this.live.values().next().value as KeyedSlot;
      if (!this.evict(oldest)) return;
    }
  }

  /** False when the model could not be written: it stays live (memory over the cap, rather than a lost model). */
  private evict(slot: KeyedSlot): boolean {
    if (this.backingUsed) {
      this.backingUsed.evicted(slot.key);
      this.evicted++;
    } else if (this.folder) {
      try {
        // Flushed to disk at the next save (a checkpoint, with Kafka records), not one by one here.
        if (slot.dirty) this.unsynced.add(this.write(slot, false));
      } catch (error) {
        this.onWarning(`could not save the model of key "${slot.key}" to evict it: ${(error as Error).message}`);
        return false;
      }
      this.stored.add(slot.key);
      this.evicted++;
    } else this.forgotten++;
    this.live.delete(slot.key);
    if (this.last === slot) this.last = undefined;
    return true;
  }

  /** Written whole or not at all: a temp file (flushed to disk when `flush`), renamed over the key's file. */
  private write(slot: KeyedSlot, flush: boolean): string {
    const file = this.fileOf(slot.key);
    fs.mkdirSync(this.folder!, { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(slot.model));
      if (flush) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    slot.dirty = false;
    return file;
  }

  private readStored(key: string): Model | undefined {
    try {
      return modelFromJSON(fs.readFileSync(this.fileOf(key), 'utf8'));
    } catch (error) {
      this.stored.delete(key);
      this.onWarning(
        `the saved model of key "${key}" could not be read (${(error as Error).message}): starting a new one`,
      );
      return undefined;
    }
  }

  private fileOf(key: string): string {
    return path.join(this.folder!, `${key === DEFAULT_KEY ? DEFAULT_FILE : safeName(key)}.json`);
  }
}

/** Flushes a file written earlier; one deleted since (its key dropped) has nothing to flush. */
function syncFile(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function syncFolder(folder: string): void {
  if (process.platform === 'win32') return;
  const fd = fs.openSync(folder, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The key a file of the folder holds, or undefined for anything else (a temp file). */
export function keyOfFile(file: string): string | undefined {
  if (!file.endsWith('.json')) return undefined;
  const base = file.slice(0, -5);
  if (base === DEFAULT_FILE) return DEFAULT_KEY;
  try {
    return decodeURIComponent(base);
  } catch {
    return undefined;
  }
}

/**
 * A key as the models are filed under: a non-empty string, a finite number or a boolean as text, a Buffer (a Kafka
 * key) as UTF-8; undefined when there is none (missing, null, empty). Throws when the value cannot be a key.
 */
export function keyOf(value: unknown): string | undefined {
  let key: string;
  if (typeof value === 'string') key = value;
  else if (typeof value === 'number' && Number.isFinite(value)) key = String(value);
  else if (typeof value === 'boolean') key = String(value);
  else if (value instanceof Uint8Array) key = Buffer.from(value.buffer, value.byteOffset, value.length).toString();
  else if (value === undefined || value === null) return undefined;
  else throw new Error(`the key must be a string or a number, not ${Array.isArray(value) ? 'an array' : typeof value}`);
  if (key.length === 0) return undefined;
  if (key.length > MAX_KEY_LENGTH) throw new Error(`the key is longer than ${MAX_KEY_LENGTH} characters`);
  return key;
}

export type KeySource = 'msg' | 'record';

/**
 * Where a record's key comes from: a message property (every record of a batch shares it, unless it is an array
 * with one key per record, as the Kafka consumer's msg.kafka.keys) or a field of each record.
 */
export class KeyReader {
  constructor(
    private readonly source: KeySource,
    private readonly read: (from: object) => unknown,
    /** Says where the key is looked for, for errors. */
    readonly description: string,
  ) {}

  /** What the message holds for its records' keys: read once per message. */
  ofMessage(msg: object): unknown {
    return this.source === 'msg' ? this.read(msg) : undefined;
  }

  /** The key of record `index` of a message of `count` records (value: what ofMessage gave). */
  keyAt(value: unknown, record: object, index: number, count: number): string | undefined {
    if (this.source === 'record') return keyOf(this.read(record));
    if (Array.isArray(value)) {
      if (count === 1 && value.length !== 1) throw new Error(`${this.description} is an array, not a key`);
      if (value.length !== count)
        throw new Error(`${this.description} has ${value.length} keys for a batch of ${count} records`);
      return keyOf(value[index]);
    }
    return keyOf(value);
  }
}

/** The no-key policy: an error to Catch nodes (the record is not learned or scored), or the shared default model. */
export type NoKeyPolicy = 'error' | 'default';

export function parseNoKeyPolicy(value: unknown): NoKeyPolicy {
  if (value === undefined || value === '' || value === 'error') return 'error';
  if (value === 'default') return 'default';
  throw new Error(`no-key policy "${String(value)}" is unknown; use error or default`);
}

/** The dialog's key types: a KeyReader's sources, or a JSONata expression on the message (see message-keys.ts). */
export type KeySetting = KeySource | 'jsonata';

export function parseKeySource(value: unknown): KeySetting {
  if (value === undefined || value === '' || value === 'msg') return 'msg';
  if (value === 'record' || value === 'jsonata') return value;
  throw new Error(`key source "${String(value)}" is unknown; use msg, record or jsonata`);
}

/** The live-model cap from the dialog: empty is the default, else a whole number of at least 1. */
export function parseMaxLive(value: unknown): number {
  if (value === undefined || value === null || value === '') return DEFAULT_MAX_LIVE;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`the live-model limit must be a whole number >= 1, not "${value}"`);
  return n;
}

const collections = new Map<string, KeyedModels>();

/** The keyed models of a name in a flow, shared by its nodes; every acquire is paired with a release on close. */
export function acquireKeyedModels(
  flowId: string,
  name: string,
  store: string | undefined,
  context: FlowContext,
  folder: string | undefined,
): KeyedModels {
  const id = `${flowId}/${store ?? ''}/${name}`;
  let models = collections.get(id);
  if (!models) {
    models = new KeyedModels(id, flowId, name, store, context, folder);
    collections.set(id, models);
  }
  models.users++;
  return models;
}

export function releaseKeyedModels(models: KeyedModels): void {
  models.users--;
  if (models.users <= 0) collections.delete(models.id);
}

export function findKeyedModels(id: string): KeyedModels | undefined {
  return collections.get(id);
}

export function listKeyedModels(): KeyedModels[] {
  return [...collections.values()];
}
