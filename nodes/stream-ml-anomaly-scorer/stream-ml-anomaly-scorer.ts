// Node-RED adapter for the anomaly scorer: scores each record with the named model, applies its own threshold,
// and tells which attributes drove the score. Optionally learns the record afterwards ("score, then learn").
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import {
  createModel,
  createThreshold,
  type DataRecord,
  type DetectorName,
  type Model,
  type ScoreResult,
  type Threshold,
  type ThresholdSpec,
} from '../../src/engine';
import { thresholdFromJSON } from '../../src/engine/thresholds';
import { StreamingEvaluator } from '../../src/engine/evaluation';
import { registerModelAdmin } from '../../src/node-red/admin';
import { withLabelFields } from '../../src/node-red/label-fields';
import {
  parseAttributeTable,
  parseDetector,
  parseOptionalPositive,
  parseThreshold,
} from '../../src/node-red/model-config';
import {
  acquireModel,
  readContext,
  releaseModel,
  writeContext,
  type EvaluationSummary,
  type FlowContext,
} from '../../src/node-red/model-registry';
import { checkpointFileFor } from '../../src/node-red/checkpoint';
import { KafkaPositions } from '../../src/node-red/kafka-positions';
import { RateMeter } from '../../src/node-red/rate';
import { isBatch, messagePropertyReader, recordOf } from '../../src/node-red/records';
import { ClosingState } from '../../src/node-red/unfinished';
import { StartGate } from '../../src/node-red/start-gate';
import { startKeyedScorer } from './keyed-scorer';

interface ScorerDef extends NodeDef {
  model: string;
  store: string;
  field: string;
  detector: string;
  thresholdKind: string;
  thresholdValue: string | number;
  output: string;
  outputs: number;
  labelField: string;
  learn: boolean;
  attributes: unknown;
  onInvalid: string;
  topContributions: string | number;
  keyed?: boolean;
  keySource?: string;
  keyProperty?: string;
  noKey?: string;
}

type Send = (msg: NodeMessage | (NodeMessage | null)[]) => void;

/** What the scorer writes on the message: the engine's result with this node's threshold applied. */
interface AnomalyOutput extends ScoreResult {
  model: string;
  /** The model had learned this Kafka record already: a replay after a fault, so a duplicated prediction. */
  replayed?: true;
  evaluation?: { rocAuc: number; precision: number; recall: number; f1: number };
}

export = function register(RED: NodeAPI): void {
  registerModelAdmin(RED);

  function AnomalyScorerNode(this: Node, config: ScorerDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const modelName = (config.model || '').trim();
    const store = config.store || undefined;
    const readRecords = messagePropertyReader(
      (m, e) => RED.util.getMessageProperty(m as NodeMessage, e),
      config.field || 'payload',
    );
    const splitOutputs = Number(config.outputs) === 2;
    const writeToPayload = config.output === 'payload';
    const labelField = (config.labelField || '').trim();
    const onInvalid = config.onInvalid || 'error';
    let thresholdSpec: ThresholdSpec;
    let threshold: Threshold;
    let topContributions: number;
    // Undefined: the model's default detector.
    let detector: DetectorName | undefined;
    try {
      if (!modelName) throw new Error('no model name: set one in the dialog');
      detector = config.detector ? parseDetector(config.detector) : undefined;
      thresholdSpec = parseThreshold(config.thresholdKind, config.thresholdValue);
      threshold = createThreshold(thresholdSpec);
      topContributions = parseOptionalPositive(config.topContributions, 'the number of contributions') ?? 3;
    } catch (error) {
      node.error((error as Error).message);
      node.status({ fill: 'red', shape: 'ring', text: (error as Error).message });
      return;
    }
    // One model per key is its own adapter: with the option off, nothing below changes.
    if (config.keyed)
      return startKeyedScorer(RED, node, {
        modelName,
        store,
        readRecords,
        splitOutputs,
        writeToPayload,
        labelField,
        onInvalid,
        fixedThreshold: thresholdSpec.kind === 'fixed' ? thresholdSpec.value : undefined,
        detector,
        topContributions,
        learn: !!config.learn,
        attributes: config.attributes,
        keySource: config.keySource,
        keyProperty: config.keyProperty,
        noKey: config.noKey,
      });

    const flowContext = node.context().flow as unknown as FlowContext;
    const flowId = (node as unknown as { z: string }).z ?? 'global';
    const entry = acquireModel(
      flowId,
      modelName,
      store,
      flowContext,
      checkpointFileFor(RED.settings, flowId, store, modelName),
    );
    const positions = new KafkaPositions();
    // The model's learners never learn the field this scorer reads as the true label (whenever they start).
    if (labelField) entry.setLabelField(node.id, labelField);
    const evaluator = labelField ? new StreamingEvaluator() : undefined;
    const rate = new RateMeter();
    let flagged = 0;
    let invalid = 0;
    let replayed = 0;
    let lastError = '';
    // The threshold learns from the scores it sees. It is kept in flow context (node context does not outlive a
    // redeploy when no context store is configured), in the model's store, so a redeploy or, with a persistent
    // store, a restart continues from it.
    const thresholdKey = `stream-ml-threshold-${node.id}`;
    const saveThreshold = (): Promise<void> =>
      writeContext(flowContext, thresholdKey, { model: modelName, detector, spec: thresholdSpec, threshold }, store);
    const gate = new StartGate(
      Promise.all([
        entry
          .load()
          .catch((error: Error) => {
            node.error(`could not read model "${modelName}" from context: ${error.message}`);
          })
          // A fleet's learner reads its model topic first: scoring before would score without the model.
          .then(() => entry.pending)
          .then(() => {
            // A scorer that learns creates the model when no learner has.
            if (config.learn && !entry.model) {
              const labelFields = entry.labelFieldNames();
              const table = parseAttributeTable(config.attributes);
              const attributes = table && withLabelFields(table, labelFields).attributes;
              entry.replace(createModel({ attributes, detector, labelFields }));
            }
          }),
        restoreThreshold(flowContext, thresholdKey, store, modelName, detector, thresholdSpec)
          .then(
            (saved) => {
              if (saved) threshold = saved;
            },
            (error: Error) => node.warn(`the saved threshold could not be read (${error.message}): starting afresh`),
          )
          // In a memory store the live object is then always current.
          .then(saveThreshold)
          .catch((error: Error) => node.warn(`saving the threshold failed: ${error.message}`)),
      ]),
    );
    const thresholdSaveTimer = setInterval(() => {
      saveThreshold().catch((error: Error) => node.warn(`saving the threshold failed: ${error.message}`));
    }, THRESHOLD_SAVE_MS);

    function showStatus(): void {
      if (lastError) return node.status({ fill: 'red', shape: 'dot', text: lastError });
      if (!entry.model) return node.status({ fill: 'grey', shape: 'ring', text: `waiting for model "${modelName}"` });
      const parts = [`${Math.round(rate.perSecond).toLocaleString('en-US')}/s`, `${flagged} flagged`];
      if (evaluator && evaluator.records > 0) {
        const auc = evaluator.rocAuc();
        if (!Number.isNaN(auc)) parts.push(`AUC ${auc.toFixed(3)}`);
      }
      if (invalid > 0) parts.push(`${invalid} invalid`);
      if (replayed > 0) parts.push(`${replayed.toLocaleString('en-US')} replayed`);
      const warming = entry.model.recordsLearned === 0 || lastWarmingUp;
      node.status({
        fill: warming ? 'yellow' : 'green',
        shape: 'dot',
        text: (warming ? 'warming up · ' : '') + parts.join(' · '),
      });
    }
    let lastWarmingUp = true;
    let lastPointAt = 0;
    const statusTimer = setInterval(() => {
      rate.tick();
      if (evaluator && entry.model && evaluator.records > 0) {
        const scoredBy = detector ?? entry.model.detectors[0];
        entry.setEvaluation(node.id, { detector: scoredBy, ...fullEvaluation(evaluator) });
      }
      showStatus();
    }, 1000);
    // The sidebar's chart shows the model's default detector against its threshold; scorers using another one
    // would mix in scores on another scale. Worked out once per model instance, not per record.
    let chartedModel: Model | undefined;
    let chartsScores = false;

    function scoreRecord(record: DataRecord, msg: NodeMessage, index: number): AnomalyOutput {
      const model = entry.model;
      if (!model) {
        return {
          model: modelName,
          score: 0,
          isAnomaly: false,
          threshold: threshold.value,
          detector: 'none',
          contributions: [],
          warmingUp: true,
          invalid: `no model "${modelName}" yet`,
        };
      }
      // A detector the model does not learn throws, and the message fails with that error.
      const scored = model.scoreOne(record, topContributions, detector);
      if (scored.invalid) {
        invalid++;
        if (onInvalid === 'error') node.error(`record does not match model "${modelName}": ${scored.invalid}`, msg);
        return { ...scored, model: modelName };
      }
      // The node's own threshold replaces the model's default one; it learns from scores after the warm-up.
      const { score, warmingUp } = scored;
      // A replay the model has learned: scored as before, but the threshold and evaluation have seen it already.
      const source = positions.source;
      const position = source === undefined ? 0 : positions.at(index);
      const isReplay = source !== undefined && model.positions.covers(source, position);
      const limit = threshold.value;
      const isAnomaly = !warmingUp && score > limit;
      // Built whole, in one literal per shape: adding fields to the engine's result would grow it per message.
      const result: AnomalyOutput =
        scored.label === undefined
          ? {
              score,
              isAnomaly,
              threshold: limit,
              detector: scored.detector,
              contributions: scored.contributions,
              warmingUp,
              model: modelName,
            }
          : {
              score,
              isAnomaly,
              threshold: limit,
              detector: scored.detector,
              contributions: scored.contributions,
              warmingUp,
              label: scored.label,
              model: modelName,
            };
      if (isReplay) {
        result.replayed = true;
        replayed++;
      } else if (!warmingUp) threshold.observe(score);
      lastWarmingUp = warmingUp;
      if (isAnomaly) flagged++;
      const label = labelField ? labelOf(record, labelField, result.label) : undefined;
      if (evaluator && label !== undefined && !isReplay) {
        evaluator.add(result.score, label, result.isAnomaly);
        result.evaluation = liveEvaluation(evaluator);
      }
      if (model !== chartedModel) {
        chartedModel = model;
        chartsScores = detector === undefined || detector === model.detectors[0];
      }
      // The sidebar chart keeps every flagged or labelled-anomalous record and samples the rest.
      const now = Date.now();
      if (chartsScores && (result.isAnomaly || label === 1 || now - lastPointAt >= 20)) {
        lastPointAt = now;
        entry.addScore({ time: now, score: result.score, threshold: result.threshold, label });
      }
      if (config.learn && !isReplay) {
        model.learnOne(record);
        if (source !== undefined) model.positions.advance(source, position);
      }
      rate.count++;
      return result;
    }

    function handle(msg: NodeMessage, send: Send): void {
      const value = readRecords(msg);
      if (isBatch(value)) return handleBatch(msg, value as DataRecord[], send);
      // One record: no arrays or closures per message.
      positions.read(msg, 1);
      const anomaly = scoreRecord(recordOf(value), msg, 0);
      if (onInvalid === 'drop' && anomaly.invalid) return;
      if (writeToPayload && typeof value === 'object' && value !== null && !Array.isArray(value))
        (value as Record<string, unknown>).anomaly = anomaly;
      else (msg as Record<string, unknown>).anomaly = anomaly;
      if (!splitOutputs) return send(msg);
      send(anomaly.isAnomaly ? [null, msg] : [msg, null]);
    }

    function handleBatch(msg: NodeMessage, records: DataRecord[], send: Send): void {
      const results = new Array<AnomalyOutput>(records.length);
      let allInvalid = true;
      let anyAnomaly = false;
      positions.read(msg, records.length);
      for (let i = 0; i < records.length; i++) {
        const result = scoreRecord(records[i], msg, i);
        results[i] = result;
        if (!result.invalid) allInvalid = false;
        if (result.isAnomaly) anyAnomaly = true;
      }
      if (onInvalid === 'drop' && allInvalid) return;
      if (writeToPayload) for (let i = 0; i < records.length; i++) Object.assign(records[i], { anomaly: results[i] });
      else (msg as Record<string, unknown>).anomaly = results;
      if (!splitOutputs) return send(msg);
      send(anyAnomaly ? [null, msg] : [msg, null]);
    }

    // Once closing, what this node sends would reach no node: the message is left to the next flow.
    const closingState = new ClosingState(`the scorer of model "${modelName}"`);
    function input(msg: NodeMessage, send: Send, done: (error?: Error) => void): void {
      if (closingState.refused(msg, done)) return;
      try {
        handle(msg, send);
        lastError = '';
        done();
      } catch (error) {
        lastError = (error as Error).message;
        done(error as Error);
      }
    }

    node.on('input', (msg, send, done) => {
      if (gate.open) input(msg, send as Send, done);
      else gate.run(() => input(msg, send as Send, done));
    });

    node.on('close', (removed: boolean, done: () => void) => {
      closingState.closing = true;
      clearInterval(statusTimer);
      clearInterval(thresholdSaveTimer);
      void gate.settled().finally(() => {
        // A scorer that learns keeps its model in context like a learner does; a deleted scorer leaves no threshold.
        const saved = Promise.all([
          config.learn ? entry.save() : undefined,
          removed ? writeContext(flowContext, thresholdKey, undefined, store) : saveThreshold(),
        ]);
        saved
          .catch((error: Error) => node.warn(`saving model "${modelName}" or the threshold failed: ${error.message}`))
          .finally(() => {
            entry.setEvaluation(node.id, undefined);
            entry.setLabelField(node.id, undefined);
            releaseModel(entry);
            done();
          });
      });
    });
    showStatus();
  }

  RED.nodes.registerType('stream-ml-anomaly-scorer', AnomalyScorerNode);
};

const THRESHOLD_SAVE_MS = 10_000;

/** A scorer's threshold in flow context: live in a memory store, its toJSON() in a persistent one. */
interface SavedThreshold {
  model: string;
  detector?: DetectorName;
  spec: ThresholdSpec;
  threshold: Threshold | ReturnType<Threshold['toJSON']>;
}

/**
 * The threshold saved under key, if made for the same model and detector with the same settings (else the new
 * settings win).
 */
async function restoreThreshold(
  context: FlowContext,
  key: string,
  store: string | undefined,
  model: string,
  detector: DetectorName | undefined,
  spec: ThresholdSpec,
): Promise<Threshold | undefined> {
  const saved = (await readContext(context, key, store)) as SavedThreshold | undefined;
  if (
    !saved ||
    typeof saved !== 'object' ||
    saved.model !== model ||
    saved.detector !== detector ||
    JSON.stringify(saved.spec) !== JSON.stringify(spec)
  )
    return undefined;
  const t = saved.threshold;
  return typeof (t as Threshold).observe === 'function' ? (t as Threshold) : thresholdFromJSON(t);
}

/** What goes on every message: the figures that cost O(1) to read. */
function liveEvaluation(evaluator: StreamingEvaluator): AnomalyOutput['evaluation'] {
  const { precision, recall, f1 } = evaluator.metrics();
  return { rocAuc: evaluator.rocAuc(), precision, recall, f1 };
}

/** For the sidebar, once a second: average precision too, which costs a pass over the score buckets. */
function fullEvaluation(evaluator: StreamingEvaluator): EvaluationSummary {
  const s = evaluator.summary();
  return { rocAuc: s.rocAuc, averagePrecision: s.averagePrecision, precision: s.precision, recall: s.recall, f1: s.f1 };
}

/** The true label: a field of the record (by name, or by position for arrays), else the model's label attribute. */
function labelOf(record: DataRecord, labelField: string, modelLabel: number | undefined): number | undefined {
  const raw = Array.isArray(record) ? record[Number(labelField)] : (record as Record<string, unknown>)[labelField];
  if (raw === undefined) return modelLabel;
  const n = typeof raw === 'boolean' ? Number(raw) : Number(raw);
  return Number.isFinite(n) ? n : undefined;
}
