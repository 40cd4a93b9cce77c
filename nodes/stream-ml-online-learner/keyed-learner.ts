// The online learner with "one model per key": each record learns into the model of its key (a machine, a device),
// created on first sight with the node's settings, kept in a KeyedModels collection the scorers of the name share.
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { createModel, modelFromJSON, type DataRecord, type Model, type ModelOptions } from '../../src/engine';
import { forgetSample, sampleSlot } from '../../src/node-red/admin';
import { keyedFolderFor } from '../../src/node-red/checkpoint';
import { CheckpointBarrier } from '../../src/node-red/checkpoint-barrier';
import { KafkaPositions } from '../../src/node-red/kafka-positions';
import {
  acquireKeyedModels,
  DEFAULT_KEY,
  keyOf,
  parseMaxLive,
  parseNoKeyPolicy,
  releaseKeyedModels,
} from '../../src/node-red/keyed-models';
import { withLabelFields } from '../../src/node-red/label-fields';
import { acquireModel, releaseModel, type FlowContext } from '../../src/node-red/model-registry';
import { RateMeter } from '../../src/node-red/rate';
import { messageKeysFor, type MessageKeys } from '../../src/node-red/message-keys';
import { isBatch, recordOf, recordsOf } from '../../src/node-red/records';
import { withoutPositions } from '../../src/node-red/snapshots';
import { StartGate } from '../../src/node-red/start-gate';
import { TemplateFile } from '../../src/node-red/keyed-template';
import { ClosingState, holdMessage, markNotFinished, releaseMessage } from '../../src/node-red/unfinished';
import { KeyedFleetSharing } from '../../src/node-red/keyed-fleet-sharing';
import type { FleetOption } from './fleet-option';

export interface KeyedLearnerSettings {
  modelName: string;
  store: string | undefined;
  options: ModelOptions;
  readRecords: (msg: object) => unknown;
  readCommand: (msg: object) => unknown;
  skipFlagged: boolean;
  statsEvery: number | undefined;
  saveEvery: number;
  /** From the dialog: where the key is, what a record without one does, the live cap, and more. */
  keySource: unknown;
  keyProperty: unknown;
  noKey: unknown;
  maxLive: unknown;
  allKeysAs: unknown;
  template: unknown;
  /** Sharing on a model topic, per key (keyed-fleet-sharing.ts). */
  fleet?: FleetOption;
}

type Send = (msg: NodeMessage | (NodeMessage | null)[]) => void;
type Done = (err?: Error) => void;

const COMMANDS = ['reset', 'forget', 'snapshot', 'load', 'merge', 'pause', 'resume', 'statistics', 'template'];

/** The snapshot of every key as one object (the "one object" choice), which `load` and `merge` take back. */
export const KEYED_SNAPSHOT_FORMAT = 'stream-ml-keyed-models';

/** How often the merge of all keys is made again for new keys (the "merge of all keys" template). */
const TEMPLATE_REFRESH_MS = 10_000;

export function startKeyedLearner(RED: NodeAPI, node: Node, settings: KeyedLearnerSettings): void {
  const { modelName, store, options } = settings;
  let messageKeys: MessageKeys;
  let noKey: ReturnType<typeof parseNoKeyPolicy>;
  let maxLive: number;
  const allAsObject = settings.allKeysAs === 'object';
  const templateMode = settings.template === 'merged' ? 'merged' : settings.template === 'snapshot' ? 'snapshot' : '';
  try {
    messageKeys = messageKeysFor(RED, node, settings.keySource, settings.keyProperty);
    noKey = parseNoKeyPolicy(settings.noKey);
    maxLive = parseMaxLive(settings.maxLive);
  } catch (error) {
    node.error((error as Error).message);
    node.status({ fill: 'red', shape: 'ring', text: (error as Error).message });
    return;
  }
  const keys = messageKeys.reader;

  const sample = sampleSlot(node.id);
  const flowContext = node.context().flow as unknown as FlowContext;
  const flowId = (node as unknown as { z: string }).z ?? 'global';
  // The registry entry is only for what the scorers of the name tell the learners: their label fields.
  const entry = acquireModel(flowId, modelName, store, flowContext);
  entry.addLearner(node.id, options.attributes !== undefined);
  const models = acquireKeyedModels(
    flowId,
    modelName,
    store,
    flowContext,
    keyedFolderFor(RED.settings, flowId, store, modelName),
  );
  models.maxLive = maxLive;
  models.onWarning = (message) => node.warn(`model "${modelName}": ${message}`);
  let template: Model | undefined;
  let templateAt = 0;
  models.factory = newModel;
  // Sharing on a model topic: each key's model is this member's own for the key merged with the others' latest;
  // the keys' models are kept by the sharing (on the topic), not in files.
  const sharing = settings.fleet
    ? new KeyedFleetSharing({
        ...settings.fleet,
        modelName,
        warn: (message) => node.warn(message),
        serve: (key, model) => models.replaceLive(key, model),
      })
    : undefined;
  if (sharing) {
    models.backing = sharing.fleet;
    entry.fleetSummary = () => sharing.summary();
  }

  /** A new key's model: the node's settings, or a copy of the template (without its Kafka offsets). */
  function newModel(): Model {
    // In a fleet a new key's own starts empty: a template's records would be published as this member's.
    const base = sharing ? undefined : templateModel();
    if (base) return modelFromJSON(withoutPositions(base.toJSON()));
    const labelFields = entry.labelFieldNames();
    if (!options.attributes) return createModel({ ...options, labelFields });
    return createModel({ ...options, attributes: withLabelFields(options.attributes, labelFields).attributes });
  }

  function templateModel(): Model | undefined {
    if (templateMode !== 'merged') return templateMode === 'snapshot' ? template : undefined;
    const now = Date.now();
    // Remade for each new key while it is still warming up, then at most every TEMPLATE_REFRESH_MS.
    const warm = template !== undefined && template.recordsLearned >= template.resolvedOptions.warmupRecords;
    if (warm && now - templateAt < TEMPLATE_REFRESH_MS) return template;
    templateAt = now;
    template = undefined;
    for (const model of models.liveModels()) {
      if (model.recordsLearned === 0) continue;
      const copy = modelFromJSON(withoutPositions(model.toJSON()));
      if (!template) template = copy;
      else
        try {
          template.merge(copy);
        } catch {
          // A key whose model cannot merge (another schema) is left out of the template.
        }
    }
    return template;
  }

  // In a fleet, a Kafka record's message is finished once a published contribution of its key has it.
  const barrier =
    sharing || models.folder
      ? new CheckpointBarrier({
          save: () => (sharing ? sharing.checkpoint() : models.save()),
          onError: (error) => {
            lastError = `checkpoint failed: ${error.message}`;
            node.warn(`saving model "${modelName}" failed: ${error.message}; its Kafka records wait for the next try`);
            showStatus();
          },
        })
      : undefined;
  const positions = new KafkaPositions();
  const rate = new RateMeter();
  let paused = false;
  let invalid = 0;
  let skippedFlagged = 0;
  let replayed = 0;
  let withoutKey = 0;
  let keyFailures = 0;
  let lastError = '';

  // The template snapshot survives a restart when the store is persistent (a file beside the keys' folder).
  const templateFile = new TemplateFile(templateMode === 'snapshot' && !sharing ? models.folder : undefined);
  const starting = models
    .load()
    .then(() => readTemplate())
    .then(() => {
      if (!sharing) return;
      node.status({ fill: 'yellow', shape: 'ring', text: `reading model topic ${settings.fleet!.topic}` });
      return sharing.start();
    })
    .catch((error: Error) => {
      sharing?.begin();
      node.error(`could not read the models of "${modelName}": ${error.message}`);
    });
  async function readTemplate(): Promise<void> {
    try {
      const saved = await templateFile.read();
      if (saved !== undefined) template = modelFromJSON(withoutPositions(saved));
    } catch (error) {
      node.warn(
        `model "${modelName}": the saved template (${templateFile.file}) could not be read ` +
          `(${(error as Error).message}): new keys start with the node's settings until a template is sent`,
      );
    }
  }

  // Scorers of the name wait for the topic to be read, as with an unkeyed fleet, and for the saved template: a key
  // they meet first is made with it.
  if (sharing || templateFile.file) entry.pending = starting.finally(() => (entry.pending = undefined));
  let gate = new StartGate(starting);

  function showStatus(): void {
    if (lastError) return node.status({ fill: 'red', shape: 'dot', text: lastError });
    const parts = [`${modelName}: ${models.liveCount.toLocaleString('en-US')} keys live`];
    if (models.folder || sharing) parts.push(`${models.storedCount.toLocaleString('en-US')} stored`);
    else if (models.forgotten > 0) parts.push(`${models.forgotten.toLocaleString('en-US')} evicted, forgotten`);
    if (rate.perSecond > 0) parts.push(`${Math.round(rate.perSecond).toLocaleString('en-US')}/s`);
    if (withoutKey > 0) parts.push(`${withoutKey} without key`);
    if (keyFailures > 0) parts.push(`key expression failed: ${keyFailures}`);
    if (invalid > 0) parts.push(`${invalid} invalid`);
    if (skippedFlagged > 0) parts.push(`${skippedFlagged} flagged skipped`);
    if (replayed > 0) parts.push(`${replayed.toLocaleString('en-US')} replayed, not relearned`);
    if (sharing) parts.push(`fleet of ${sharing.summary().members.length}`);
    node.status({
      fill: paused ? 'yellow' : 'green',
      shape: paused ? 'ring' : 'dot',
      text: (paused ? 'paused · ' : '') + parts.join(' · '),
    });
  }

  const save = (): void => {
    (sharing ? sharing.checkpoint() : models.save()).catch((error: Error) =>
      node.warn(`saving model "${modelName}" failed: ${error.message}`),
    );
  };
  entry.keyedSummary = () => models.summary();
  const statusTimer = setInterval(() => {
    rate.tick();
    models.tick();
    entry.learnRate = rate.perSecond;
    entry.markChanged();
    showStatus();
  }, 1000);
  const saveTimer = setInterval(save, settings.saveEvery * 1000);
  const statsTimer =
    settings.statsEvery === undefined
      ? undefined
      : setInterval(() => sendPerKey('statistics', undefined, node.send.bind(node)), settings.statsEvery * 1000);

  /** The key of a record, or undefined (counted, and an error under the error policy) when it has none. */
  function keyFor(msg: NodeMessage, keysValue: unknown, record: DataRecord, index: number, count: number) {
    let reason: string | undefined;
    try {
      const key = keys.keyAt(keysValue, record as object, index, count);
      if (key !== undefined) return key;
    } catch (error) {
      reason = (error as Error).message;
    }
    if (noKey === 'default') return DEFAULT_KEY;
    withoutKey++;
    node.error(`record not learned: ${reason ?? `it has no key (${keys.description})`}`, msg);
    return undefined;
  }

  function learnRecord(msg: NodeMessage, record: DataRecord, index: number, count: number, keysValue: unknown): void {
    const key = keyFor(msg, keysValue, record, index, count);
    if (key === undefined) return;
    const slot = models.slot(key, true)!;
    // In a fleet: the key's own and serving models, and the positions the others' contributions cover.
    const fleet = sharing?.fleetOf(key);
    const model = fleet ?? slot.model;
    // Each key's model keeps the offsets of its own records: a replay is skipped per key.
    const source = positions.source;
    if (source !== undefined) {
      const position = positions.at(index);
      const learned = fleet ?? slot.model.positions;
      if (learned.covers(source, position)) {
        replayed++;
        return;
      }
      learned.advance(source, position);
      slot.dirty = true;
    }
    if (settings.skipFlagged && isFlagged((msg as { anomaly?: unknown }).anomaly, index)) {
      skippedFlagged++;
      return;
    }
    let reason: string | undefined;
    try {
      const result = model.learnOne(record);
      reason = result.learned ? undefined : result.reason;
    } catch (error) {
      reason = (error as Error).message;
    }
    slot.dirty = true;
    if (reason === undefined) rate.count++;
    else {
      invalid++;
      if (options.invalidValues === 'error') node.error(`record not learned: ${reason}`, msg);
    }
  }

  /** Snapshots or statistics of one key, or of every key (one message each, or one object). */
  function sendPerKey(what: 'snapshot' | 'statistics', key: string | undefined, send: Send): void {
    const of = (k: string): unknown => (what === 'snapshot' ? models.snapshotOf(k) : models.modelOf(k)?.statistics());
    if (key !== undefined) {
      if (!models.has(key)) throw new Error(`model "${modelName}" has no key "${key}"`);
      send([null, { topic: what, model: modelName, key, payload: of(key) } as NodeMessage]);
      return;
    }
    if (allAsObject) {
      const byKey: Record<string, unknown> = {};
      for (const k of models.keys()) byKey[k] = of(k);
      const payload = what === 'snapshot' ? { format: KEYED_SNAPSHOT_FORMAT, version: 1, models: byKey } : byKey;
      send([null, { topic: what, model: modelName, payload } as NodeMessage]);
    } else
      for (const k of models.keys())
        send([null, { topic: what, model: modelName, key: k, payload: of(k) } as NodeMessage]);
  }

  /** A keyed snapshot's models by key, for load and merge without a key. */
  function keyedSnapshot(payload: unknown): [string, unknown][] {
    const value = typeof payload === 'string' ? (JSON.parse(payload) as unknown) : payload;
    const format = (value as { format?: unknown } | null)?.format;
    if (format !== KEYED_SNAPSHOT_FORMAT)
      throw new Error(
        `without msg.key, ${modelName} needs the snapshot of every key (format "${KEYED_SNAPSHOT_FORMAT}")`,
      );
    return Object.entries((value as { models: Record<string, unknown> }).models ?? {});
  }

  function runCommand(command: string, msg: NodeMessage, send: Send, keysValue: unknown, failure?: Error): void {
    // msg.key picks one key; without it, a command is for every key.
    const selected = keyOf((msg as { key?: unknown }).key);
    switch (command) {
      case 'reset':
        if (selected !== undefined) models.set(selected, newModel());
        // In a fleet every key gets a new own, published empty: the others' contributions stay in the merge.
        else
          for (const key of models.keys()) {
            if (sharing) models.set(key, newModel());
            else models.delete(key);
          }
        invalid = skippedFlagged = withoutKey = 0;
        save();
        break;
      case 'forget': {
        const records = recordsOf(settings.readRecords(msg));
        if (selected === undefined && failure)
          throw new Error(`records not forgotten: the key expression failed: ${failure.message}`);
        records.forEach((record, i) => {
          const key = selected ?? keyFor(msg, keysValue, record, i, records.length);
          const slot = key === undefined ? undefined : models.slot(key, false);
          if (!slot) throw new Error(`record not forgotten: model "${modelName}" has no key "${key}"`);
          const result = (sharing?.fleetOf(key!) ?? slot.model).forgetOne(record);
          slot.dirty = true;
          if (!result.learned) throw new Error(`record not forgotten: ${result.reason}`);
        });
        break;
      }
      case 'snapshot':
      case 'statistics':
        sendPerKey(command, selected, send);
        break;
      case 'load':
        if (selected !== undefined) models.set(selected, labelled(modelFromJSON(msg.payload)));
        else
          for (const [key, snapshot] of keyedSnapshot(msg.payload)) models.set(key, labelled(modelFromJSON(snapshot)));
        save();
        break;
      case 'merge': {
        // The other model's Kafka offsets are of another stream: each key's own offsets stay as they are.
        const merges: [string, unknown][] =
          selected !== undefined ? [[selected, msg.payload]] : keyedSnapshot(msg.payload);
        for (const [key, snapshot] of merges) {
          const slot = models.slot(key, true)!;
          const other = modelFromJSON(withoutPositions(snapshot));
          const fleet = sharing?.fleetOf(key);
          // In a fleet the merge goes into own (it is published as this member's), and the serving model is rebuilt.
          if (fleet) {
            fleet.own.merge(other);
            models.set(key, fleet.own);
          } else slot.model.merge(other);
          slot.dirty = true;
        }
        break;
      }
      case 'template':
        if (sharing) throw new Error("a template is not used in a fleet: a new key starts from the others' models");
        // The model new keys start from under the "a template snapshot" choice; an empty payload clears it.
        template =
          msg.payload === undefined || msg.payload === null || msg.payload === ''
            ? undefined
            : modelFromJSON(withoutPositions(msg.payload));
        templateFile
          .save(template?.toJSON())
          .catch((error: Error) => node.warn(`model "${modelName}": saving the template failed: ${error.message}`));
        break;
      case 'pause':
        paused = true;
        break;
      case 'resume':
        paused = false;
        break;
    }
    showStatus();
  }

  function labelled(model: Model): Model {
    model.setLabelFields(entry.labelFieldNames());
    return model;
  }

  // Not learned once closing, whether it arrived then or waited for the start gate or its keys: it could not reach
  // the next node.
  const closingState = new ClosingState(`the learner of model "${modelName}"`);
  function handle(msg: NodeMessage, send: Send, done: Done, keysValue: unknown, failure: Error | undefined): void {
    if (closingState.refused(msg, done)) return;
    try {
      const command = commandOf(settings.readCommand(msg));
      if (command) {
        runCommand(command, msg, send, keysValue, failure);
        return done();
      }
      const value = settings.readRecords(msg);
      let count = 1;
      if (isBatch(value)) {
        const batch = value as DataRecord[];
        count = batch.length;
        sample.record = batch[0];
        positions.read(msg, count);
        if (!paused && failure) keyFailed(msg, failure, count);
        else if (!paused) for (let i = 0; i < count; i++) learnRecord(msg, batch[i], i, count, keysValue);
      } else {
        const record = recordOf(value);
        sample.record = record;
        positions.read(msg, 1);
        if (!paused && failure) keyFailed(msg, failure, 1);
        else if (!paused) learnRecord(msg, record, 0, 1, keysValue);
      }
      lastError = '';
      send(msg);
      if (barrier && positions.source !== undefined && !paused) {
        holdMessage(msg._msgid);
        barrier.hold((durable) => {
          releaseMessage(msg._msgid);
          if (!durable) markNotFinished(msg, `the learner closed before the models of "${modelName}" were written`);
          done();
        }, count);
      } else done();
    } catch (error) {
      lastError = (error as Error).message;
      showStatus();
      done(error as Error);
    }
  }

  /** The key expression failed on a message: none of its records is learned, one error, whatever the policy. */
  function keyFailed(msg: NodeMessage, failure: Error, count: number): void {
    keyFailures += count;
    node.error(`records not learned: the key expression failed: ${failure.message}`, msg);
  }

  function input(msg: NodeMessage, send: Send, done: Done): void {
    messageKeys.read(msg, (keysValue, failure) => handle(msg, send, done, keysValue, failure));
  }

  node.on('input', (msg, send, done) => {
    if (gate.open) {
      // In a fleet, a partition not read lately may have been another member's: read the model topic first.
      const source = sharing ? KafkaPositions.sourceOf(msg) : undefined;
      const sync = source === undefined ? undefined : sharing!.syncFor(source);
      if (!sync) return input(msg, send as Send, done);
      gate = new StartGate(sync.catch((error: Error) => node.warn(`reading the model topic failed: ${error.message}`)));
    }
    gate.run(() => input(msg, send as Send, done));
  });

  node.on('close', (_removed: boolean, done: () => void) => {
    closingState.closing = true;
    clearInterval(statusTimer);
    clearInterval(saveTimer);
    if (statsTimer) clearInterval(statsTimer);
    gate
      .settled()
      .then(() => messageKeys.settled())
      .then(() => (barrier ? barrier.close() : models.save()))
      .then(() => templateFile.settled())
      .then(() => sharing?.checkpoint())
      .catch((error: Error) => node.warn(`saving model "${modelName}" failed: ${error.message}`))
      .then(() => sharing?.close())
      .finally(() => {
        // The live models are the fleet's merges: never to be kept as this learner's own.
        if (sharing && models.backing === sharing.fleet) models.backing = undefined;
        if (sharing) entry.fleetSummary = undefined;
        if (models.factory === newModel) models.factory = undefined;
        entry.removeLearner(node.id);
        entry.keyedSummary = undefined;
        releaseModel(entry);
        releaseKeyedModels(models);
        forgetSample(node.id, sample);
        done();
      });
  });
  showStatus();
}

function commandOf(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 32) return undefined;
  const command = value.trim().toLowerCase();
  return COMMANDS.includes(command) ? command : undefined;
}

function isFlagged(anomaly: unknown, index: number): boolean {
  const one = Array.isArray(anomaly) ? anomaly[index] : anomaly;
  return typeof one === 'object' && one !== null && (one as { isAnomaly?: unknown }).isAnomaly === true;
}
