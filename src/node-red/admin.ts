// The editor's view of the running models: an admin route the sidebar reads when it opens, and a comms topic the
// runtime pushes to once a second while something changed.
import type { NodeAPI } from 'node-red';
import { findKeyedModels } from './keyed-models';
import { listModels } from './model-registry';

export const MODELS_ROUTE = '/stream-ml/models';
export const MODELS_TOPIC = 'stream-ml/models';
export const READ_PERMISSION = 'stream-ml.read';
// The last raw record fills a dialog: an editing action, so it needs what an editor has, not a viewer.
export const SAMPLE_PERMISSION = 'stream-ml.write';

const registered = new WeakSet<object>();
// The last record each learner saw, for the dialog's "fill from sample" button.
const samples = new Map<string, SampleSlot>();

/** Where a learner keeps its last record: one object per node, so a message costs a field write, not a Map set. */
export interface SampleSlot {
  record: unknown;
}

export function sampleSlot(nodeId: string): SampleSlot {
  let slot = samples.get(nodeId);
  if (!slot) {
    slot = { record: undefined };
    samples.set(nodeId, slot);
  }
  return slot;
}

export function rememberSample(nodeId: string, record: unknown): void {
  sampleSlot(nodeId).record = record;
}

/** Drops a node's sample; with slot, only while it is still that node's slot (a redeployed node has its own). */
export function forgetSample(nodeId: string, slot?: SampleSlot): void {
  if (slot === undefined || samples.get(nodeId) === slot) samples.delete(nodeId);
}

export function registerModelAdmin(RED: NodeAPI): void {
  if (registered.has(RED)) return;
  registered.add(RED);
  RED.httpAdmin.get(MODELS_ROUTE, RED.auth.needsPermission(READ_PERMISSION), (_req, res) => {
    res.json(listModels().map((entry) => entry.summary()));
  });
  // One key of a keyed model, for the sidebar's detail of that key: its records, schema and statistics.
  RED.httpAdmin.get(`${MODELS_ROUTE}/keys`, RED.auth.needsPermission(READ_PERMISSION), (req, res) => {
    const models = findKeyedModels(String(req.query.model ?? ''));
    const key = String(req.query.key ?? '');
    const model = models?.has(key) ? models.modelOf(key) : undefined;
    if (!model) res.status(404).json({ error: 'no such model or key' });
    else
      res.json({
        key,
        recordsLearned: model.recordsLearned,
        detectors: model.detectors,
        schema: model.schema,
        statistics: model.statistics(),
        ...(models!.backing ? { fleet: models!.backing.describe(key) } : {}),
      });
  });
  RED.httpAdmin.get('/stream-ml/sample/:id', RED.auth.needsPermission(SAMPLE_PERMISSION), (req, res) => {
    const sample = samples.get(String(req.params.id))?.record;
    if (sample === undefined) res.status(404).json({ error: 'no record has reached this node yet' });
    else res.json(sample);
  });
  const timer = setInterval(() => {
    const entries = listModels();
    // Every entry's flag is taken, so one change does not cause two pushes.
    const changed = entries.map((entry) => entry.takeChanged()).some(Boolean);
    if (changed)
      RED.comms.publish(
        MODELS_TOPIC,
        entries.map((entry) => entry.summary()),
        false,
      );
  }, 1000);
  timer.unref();
}
