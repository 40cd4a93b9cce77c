// Node-RED adapter for the anomaly scorer: scores each record with the named model, applies its own threshold,
// and tells which attributes drove the score. Optionally learns the record afterwards ("score, then learn").
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { createModel, createThreshold, type DataRecord, type ScoreResult, type Threshold } from '../../src/engine';
import { StreamingEvaluator } from '../../src/engine/evaluation';
import { registerModelAdmin } from '../../src/node-red/admin';
import { parseAttributeTable, parseOptionalPositive, parseThreshold } from '../../src/node-red/model-config';
import {
  acquireModel,
  releaseModel,
  type EvaluationSummary,
  type FlowContext,
} from '../../src/node-red/model-registry';
import { RateMeter } from '../../src/node-red/rate';
import { isBatch, recordsOf } from '../../src/node-red/records';
import { StartGate } from '../../src/node-red/start-gate';

interface ScorerDef extends NodeDef {
  model: string;
  store: string;
  field: string;
  thresholdKind: string;
  thresholdValue: string | number;
  output: string;
  outputs: number;
  labelField: string;
  learn: boolean;
  attributes: unknown;
  onInvalid: string;
  topContributions: string | number;
}

type Send = (msg: NodeMessage | (NodeMessage | null)[]) => void;

/** What the scorer writes on the message: the engine's result with this node's threshold applied. */
interface AnomalyOutput extends ScoreResult {
  model: string;
  evaluation?: { rocAuc: number; precision: number; recall: number; f1: number };
}

export = function register(RED: NodeAPI): void {
  registerModelAdmin(RED);

  function AnomalyScorerNode(this: Node, config: ScorerDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const modelName = (config.model || '').trim();
    const store = config.store || undefined;
    const field = config.field || 'payload';
    const splitOutputs = Number(config.outputs) === 2;
    const writeToPayload = config.output === 'payload';
    const labelField = (config.labelField || '').trim();
    const onInvalid = config.onInvalid || 'error';
    let threshold: Threshold;
    let topContributions: number;
    try {
      if (!modelName) throw new Error('no model name: set one in the dialog');
      threshold = createThreshold(parseThreshold(config.thresholdKind, config.thresholdValue));
      topContributions = parseOptionalPositive(config.topContributions, 'the number of contributions') ?? 3;
    } catch (error) {
      node.error((error as Error).message);
      node.status({ fill: 'red', shape: 'ring', text: (error as Error).message });
      return;
    }

    const entry = acquireModel(
      (node as unknown as { z: string }).z ?? 'global',
      modelName,
      store,
      node.context().flow as unknown as FlowContext,
    );
    const evaluator = labelField ? new StreamingEvaluator() : undefined;
    const rate = new RateMeter();
    let flagged = 0;
    let invalid = 0;
    let lastError = '';
    const gate = new StartGate(
      entry
        .load()
        .catch((error: Error) => {
          node.error(`could not read model "${modelName}" from context: ${error.message}`);
        })
        .then(() => {
          // A scorer that learns creates the model when no learner has.
          if (config.learn && !entry.model) {
            entry.replace(createModel({ attributes: parseAttributeTable(config.attributes) }));
          }
        }),
    );

    function showStatus(): void {
      if (lastError) return node.status({ fill: 'red', shape: 'dot', text: lastError });
      if (!entry.model) return node.status({ fill: 'grey', shape: 'ring', text: `waiting for model "${modelName}"` });
      const parts = [`${Math.round(rate.perSecond).toLocaleString('en-US')}/s`, `${flagged} flagged`];
      if (evaluator && evaluator.records > 0) {
        const auc = evaluator.rocAuc();
        if (!Number.isNaN(auc)) parts.push(`AUC ${auc.toFixed(3)}`);
      }
      if (invalid > 0) parts.push(`${invalid} invalid`);
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
      if (evaluator) entry.evaluation = fullEvaluation(evaluator);
      showStatus();
    }, 1000);

    function scoreRecord(record: DataRecord, msg: NodeMessage): AnomalyOutput {
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
      const result = model.scoreOne(record) as AnomalyOutput;
      result.model = modelName;
      if (result.invalid) {
        invalid++;
        if (onInvalid === 'error') node.error(`record does not match model "${modelName}": ${result.invalid}`, msg);
        return result;
      }
      // The node's own threshold replaces the model's default one; it learns from scores after the warm-up.
      result.threshold = threshold.value;
      result.isAnomaly = !result.warmingUp && result.score > threshold.value;
      if (!result.warmingUp) threshold.observe(result.score);
      lastWarmingUp = result.warmingUp;
      if (result.contributions.length > topContributions)
        result.contributions = result.contributions.slice(0, topContributions);
      if (result.isAnomaly) flagged++;
      const label = labelField ? labelOf(record, labelField, result.label) : undefined;
      if (evaluator && label !== undefined) {
        evaluator.add(result.score, label, result.isAnomaly);
        result.evaluation = liveEvaluation(evaluator);
      }
      // The sidebar chart keeps every flagged or labelled-anomalous record and samples the rest.
      const now = Date.now();
      if (result.isAnomaly || label === 1 || now - lastPointAt >= 20) {
        lastPointAt = now;
        entry.addScore({ time: now, score: result.score, threshold: result.threshold, label });
      }
      if (config.learn) model.learnOne(record);
      rate.count++;
      return result;
    }

    function handle(msg: NodeMessage, send: Send): void {
      const value = RED.util.getMessageProperty(msg, field);
      const records = recordsOf(value);
      const results = records.map((record) => scoreRecord(record, msg));
      const anomaly = isBatch(value) ? results : results[0];
      if (onInvalid === 'drop' && results.every((r) => r.invalid)) return;
      if (writeToPayload) {
        if (isBatch(value)) records.forEach((record, i) => Object.assign(record, { anomaly: results[i] }));
        else if (typeof value === 'object' && value !== null && !Array.isArray(value))
          Object.assign(value, { anomaly });
        else (msg as Record<string, unknown>).anomaly = anomaly;
      } else {
        (msg as Record<string, unknown>).anomaly = anomaly;
      }
      if (!splitOutputs) return send(msg);
      const anyAnomaly = results.some((r) => r.isAnomaly);
      send(anyAnomaly ? [null, msg] : [msg, null]);
    }

    node.on('input', (msg, send, done) => {
      gate.run(() => {
        try {
          handle(msg, send as Send);
          lastError = '';
          done();
        } catch (error) {
          lastError = (error as Error).message;
          done(error as Error);
        }
      });
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(statusTimer);
      void gate.settled().finally(() => {
        // A scorer that learns keeps its model in context like a learner does.
        const saved = config.learn ? entry.save() : Promise.resolve();
        saved
          .catch((error: Error) => node.warn(`saving model "${modelName}" failed: ${error.message}`))
          .finally(() => {
            releaseModel(entry);
            done();
          });
      });
    });
    showStatus();
  }

  RED.nodes.registerType('stream-ml-anomaly-scorer', AnomalyScorerNode);
};

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
