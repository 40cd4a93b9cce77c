// The editor's view of the running models: an admin route the sidebar reads when it opens, and a comms topic the
// runtime pushes to once a second while something changed.
import type { NodeAPI } from 'node-red';
import { listModels } from './model-registry';

export const MODELS_ROUTE = '/stream-ml/models';
export const MODELS_TOPIC = 'stream-ml/models';
export const READ_PERMISSION = 'stream-ml.read';

const registered = new WeakSet<object>();
// The last record each learner saw, for the dialog's "fill from sample" button.
const samples = new Map<string, unknown>();

export function rememberSample(nodeId: string, record: unknown): void {
  samples.set(nodeId, record);
}

export function forgetSample(nodeId: string): void {
  samples.delete(nodeId);
}

export function registerModelAdmin(RED: NodeAPI): void {
  if (registered.has(RED)) return;
  registered.add(RED);
  RED.httpAdmin.get(MODELS_ROUTE, RED.auth.needsPermission(READ_PERMISSION), (_req, res) => {
    res.json(listModels().map((entry) => entry.summary()));
  });
  RED.httpAdmin.get('/stream-ml/sample/:id', RED.auth.needsPermission(READ_PERMISSION), (req, res) => {
    const sample = samples.get(String(req.params.id));
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
