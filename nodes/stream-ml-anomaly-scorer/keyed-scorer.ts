// The anomaly scorer with "one model per key": each record is scored by the model of its key, which a learner of the
// name creates on first sight (so the first record of a new key is scored, warming up, by an empty model as a
// separate model would be). Each key is judged against its own model's threshold, learned from that key's scores,
// unless the node's threshold is fixed.
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { createModel, type DataRecord, type DetectorName, type Model, type ScoreResult } from '../../src/engine';
import { StreamingEvaluator } from '../../src/engine/evaluation';
import { keyedFolderFor } from '../../src/node-red/checkpoint';
import { KafkaPositions } from '../../src/node-red/kafka-positions';
import { acquireKeyedModels, DEFAULT_KEY, parseNoKeyPolicy, releaseKeyedModels } from '../../src/node-red/keyed-models';
import { withLabelFields } from '../../src/node-red/label-fields';
import { parseAttributeTable } from '../../src/node-red/model-config';
import { acquireModel, releaseModel, type FlowContext } from '../../src/node-red/model-registry';
import { RateMeter } from '../../src/node-red/rate';
import { messageKeysFor, type MessageKeys } from '../../src/node-red/message-keys';
import { isBatch, recordOf } from '../../src/node-red/records';
import { ClosingState } from '../../src/node-red/unfinished';
import { StartGate } from '../../src/node-red/start-gate';

export interface KeyedScorerSettings {
  modelName: string;
  store: string | undefined;
  readRecords: (msg: object) => unknown;
  splitOutputs: boolean;
  writeToPayload: boolean;
  labelField: string;
  onInvalid: string;
  /** A fixed threshold for every key; undefined: each key's model's own. */
  fixedThreshold: number | undefined;
  detector: DetectorName | undefined;
  topContributions: number;
  learn: boolean;
  attributes: unknown;
  keySource: unknown;
  keyProperty: unknown;
  noKey: unknown;
}

type Send = (msg: NodeMessage | (NodeMessage | null)[]) => void;

interface KeyedAnomaly extends ScoreResult {
  model: string;
  /** The record's key; absent when it had none. */
  key?: string;
  replayed?: true;
  evaluation?: { rocAuc: number; precision: number; recall: number; f1: number };
}

export function startKeyedScorer(RED: NodeAPI, node: Node, settings: KeyedScorerSettings): void {
  const { modelName, store, labelField, onInvalid, detector, topContributions } = settings;
  let messageKeys: MessageKeys;
  let noKey: ReturnType<typeof parseNoKeyPolicy>;
  let ownFactory: ((key: string) => Model) | undefined;
  try {
    messageKeys = messageKeysFor(RED, node, settings.keySource, settings.keyProperty);
    noKey = parseNoKeyPolicy(settings.noKey);
    if (settings.learn) {
      const table = parseAttributeTable(settings.attributes);
      ownFactory = () => {
        const labelFields = entry.labelFieldNames();
        return createModel({
          attributes: table && withLabelFields(table, labelFields).attributes,
          detector,
          labelFields,
        });
      };
    }
  } catch (error) {
    node.error((error as Error).message);
    node.status({ fill: 'red', shape: 'ring', text: (error as Error).message });
    return;
  }
  const keys = messageKeys.reader;

  const flowContext = node.context().flow as unknown as FlowContext;
  const flowId = (node as unknown as { z: string }).z ?? 'global';
  const entry = acquireModel(flowId, modelName, store, flowContext);
  if (labelField) entry.setLabelField(node.id, labelField);
  const models = acquireKeyedModels(
    flowId,
    modelName,
    store,
    flowContext,
    keyedFolderFor(RED.settings, flowId, store, modelName),
  );
  // The sidebar shows the keys (a learner of the name says so too).
  const describe = () => models.summary();
  entry.keyedSummary ??= describe;
  // A scorer that learns creates keys' models when no learner of the name does.
  if (ownFactory && !models.factory) models.factory = ownFactory;
  const positions = new KafkaPositions();
  const evaluator = labelField ? new StreamingEvaluator() : undefined;
  const rate = new RateMeter();
  let flagged = 0;
  let invalid = 0;
  let replayed = 0;
  let withoutKey = 0;
  let keyFailures = 0;
  let lastError = '';
  const gate = new StartGate(
    models
      .load()
      .catch((error: Error) => node.error(`could not read the models of "${modelName}": ${error.message}`))
      // A fleet's learner reads its model topic first: scoring before would score without the keys' models.
      .then(() => entry.pending),
  );

  function showStatus(): void {
    if (lastError) return node.status({ fill: 'red', shape: 'dot', text: lastError });
    const parts = [
      `${models.liveCount.toLocaleString('en-US')} keys live`,
      `${Math.round(rate.perSecond).toLocaleString('en-US')}/s`,
      `${flagged} flagged`,
    ];
    if (models.folder) parts.splice(1, 0, `${models.storedCount.toLocaleString('en-US')} stored`);
    if (evaluator && evaluator.records > 0) {
      const auc = evaluator.rocAuc();
      if (!Number.isNaN(auc)) parts.push(`AUC ${auc.toFixed(3)}`);
    }
    if (withoutKey > 0) parts.push(`${withoutKey} without key`);
    if (keyFailures > 0) parts.push(`key expression failed: ${keyFailures}`);
    if (invalid > 0) parts.push(`${invalid} invalid`);
    if (replayed > 0) parts.push(`${replayed.toLocaleString('en-US')} replayed`);
    node.status({ fill: 'green', shape: 'dot', text: parts.join(' · ') });
  }
  const statusTimer = setInterval(() => {
    rate.tick();
    // The evaluation over every key, for the sidebar (as the unkeyed scorer's).
    if (evaluator && evaluator.records > 0) {
      const e = evaluator.summary();
      entry.setEvaluation(node.id, {
        detector: detector ?? 'default',
        rocAuc: e.rocAuc,
        averagePrecision: e.averagePrecision,
        precision: e.precision,
        recall: e.recall,
        f1: e.f1,
      });
    }
    showStatus();
  }, 1000);

  function noModel(key: string | undefined, reason?: string): KeyedAnomaly {
    const result: KeyedAnomaly = {
      model: modelName,
      score: 0,
      isAnomaly: false,
      threshold: settings.fixedThreshold ?? 1,
      detector: 'none',
      contributions: [],
      warmingUp: true,
    };
    if (key !== undefined) result.key = key;
    if (reason !== undefined) result.invalid = reason;
    return result;
  }

  function scoreRecord(
    msg: NodeMessage,
    record: DataRecord,
    index: number,
    count: number,
    keysValue: unknown,
    keyFailure: string | undefined,
  ) {
    // The key expression failed on the message: an error whatever the no-key policy (reported once per message).
    if (keyFailure !== undefined) {
      keyFailures++;
      invalid++;
      return noModel(undefined, keyFailure);
    }
    let key: string | undefined;
    let reason: string | undefined;
    try {
      key = keys.keyAt(keysValue, record as object, index, count);
    } catch (error) {
      reason = (error as Error).message;
    }
    if (key === undefined) {
      if (noKey === 'default') key = DEFAULT_KEY;
      else {
        withoutKey++;
        invalid++;
        const why = reason ?? `the record has no key (${keys.description})`;
        if (onInvalid === 'error') node.error(`record not scored: ${why}`, msg);
        return noModel(undefined, why);
      }
    }
    const slot = models.slot(key, true);
    // No learner has made this key's model yet: passes, warming up.
    if (!slot) return noModel(key);
    const model = slot.model;
    const scored = model.scoreOne(record, topContributions, detector);
    if (scored.invalid) {
      invalid++;
      if (onInvalid === 'error')
        node.error(`record does not match the model of key "${key}" of "${modelName}": ${scored.invalid}`, msg);
      return { ...scored, model: modelName, key };
    }
    const source = positions.source;
    const position = source === undefined ? 0 : positions.at(index);
    const isReplay = source !== undefined && model.positions.covers(source, position);
    const fixed = settings.fixedThreshold;
    const result: KeyedAnomaly = {
      score: scored.score,
      isAnomaly: fixed === undefined ? scored.isAnomaly : !scored.warmingUp && scored.score > fixed,
      threshold: fixed ?? scored.threshold,
      detector: scored.detector,
      contributions: scored.contributions,
      warmingUp: scored.warmingUp,
      model: modelName,
      key,
    };
    if (scored.label !== undefined) result.label = scored.label;
    slot.lastScore = scored.score;
    if (isReplay) {
      result.replayed = true;
      replayed++;
    }
    if (result.isAnomaly) flagged++;
    if (evaluator && !isReplay) {
      const label = labelOf(record, labelField, scored.label);
      if (label !== undefined) {
        evaluator.add(result.score, label, result.isAnomaly);
        const { precision, recall, f1 } = evaluator.metrics();
        result.evaluation = { rocAuc: evaluator.rocAuc(), precision, recall, f1 };
      }
    }
    if (settings.learn && !isReplay) {
      model.learnOne(record);
      if (source !== undefined) model.positions.advance(source, position);
      slot.dirty = true;
    }
    rate.count++;
    return result;
  }

  function handle(msg: NodeMessage, send: Send, keysValue: unknown, failure: Error | undefined): void {
    const value = settings.readRecords(msg);
    const keyFailure = failure && `the key expression failed: ${failure.message}`;
    if (keyFailure !== undefined && onInvalid === 'error') node.error(`records not scored: ${keyFailure}`, msg);
    let anomaly: KeyedAnomaly | KeyedAnomaly[];
    let anyAnomaly = false;
    let allInvalid = true;
    if (isBatch(value)) {
      // Records of a batch may be of several keys: each goes to its own model, the results stay in record order.
      const records = value as DataRecord[];
      positions.read(msg, records.length);
      const results = new Array<KeyedAnomaly>(records.length);
      for (let i = 0; i < records.length; i++) {
        const r = scoreRecord(msg, records[i], i, records.length, keysValue, keyFailure);
        results[i] = r;
        if (!r.invalid) allInvalid = false;
        if (r.isAnomaly) anyAnomaly = true;
      }
      if (onInvalid === 'drop' && allInvalid) return;
      if (settings.writeToPayload)
        for (let i = 0; i < records.length; i++) Object.assign(records[i], { anomaly: results[i] });
      else (msg as Record<string, unknown>).anomaly = results;
    } else {
      positions.read(msg, 1);
      anomaly = scoreRecord(msg, recordOf(value), 0, 1, keysValue, keyFailure);
      if (onInvalid === 'drop' && anomaly.invalid) return;
      anyAnomaly = anomaly.isAnomaly;
      if (settings.writeToPayload && typeof value === 'object' && value !== null && !Array.isArray(value))
        (value as Record<string, unknown>).anomaly = anomaly;
      else (msg as Record<string, unknown>).anomaly = anomaly;
    }
    if (!settings.splitOutputs) return send(msg);
    send(anyAnomaly ? [null, msg] : [msg, null]);
  }

  // Once closing, what this node sends would reach no node: the message is left to the next flow.
  const closingState = new ClosingState(`the scorer of model "${modelName}"`);
  function input(msg: NodeMessage, send: Send, done: (error?: Error) => void): void {
    messageKeys.read(msg, (keysValue, failure) => {
      if (closingState.refused(msg, done)) return;
      try {
        handle(msg, send, keysValue, failure);
        lastError = '';
        done();
      } catch (error) {
        lastError = (error as Error).message;
        done(error as Error);
      }
    });
  }

  node.on('input', (msg, send, done) => {
    if (gate.open) input(msg, send as Send, done);
    else gate.run(() => input(msg, send as Send, done));
  });

  node.on('close', (_removed: boolean, done: () => void) => {
    closingState.closing = true;
    clearInterval(statusTimer);
    void gate
      .settled()
      .then(() => messageKeys.settled())
      .finally(() => {
        const saved = settings.learn ? models.save() : Promise.resolve();
        saved
          .catch((error: Error) => node.warn(`saving the models of "${modelName}" failed: ${error.message}`))
          .finally(() => {
            if (models.factory === ownFactory) models.factory = undefined;
            entry.setLabelField(node.id, undefined);
            entry.setEvaluation(node.id, undefined);
            if (entry.keyedSummary === describe) entry.keyedSummary = undefined;
            releaseModel(entry);
            releaseKeyedModels(models);
            done();
          });
      });
  });
  showStatus();
}

/** The true label: a field of the record (by name, or by position for arrays), else the model's label attribute. */
function labelOf(record: DataRecord, labelField: string, modelLabel: number | undefined): number | undefined {
  const raw = Array.isArray(record) ? record[Number(labelField)] : (record as Record<string, unknown>)[labelField];
  if (raw === undefined) return modelLabel;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}
