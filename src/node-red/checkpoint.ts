// Where a model's durable checkpoint lives. Node-RED's persistent context stores write on an interval (the
// localfilesystem store caches and flushes every 30 s) and a node cannot make them flush, so with such a store the
// model is also written, durably, to a file of its own under the user folder before each save.
import path from 'node:path';

/** The parts of Node-RED's settings this needs. */
export interface CheckpointSettings {
  userDir?: unknown;
  contextStorage?: unknown;
}

/**
 * The checkpoint file of a model (one per flow, store and name), or undefined when its store is not persistent
 * (memory, or no context storage configured) or there is no user folder.
 */
export function checkpointFileFor(
  settings: CheckpointSettings | undefined,
  flowId: string,
  store: string | undefined,
  name: string,
): string | undefined {
  const userDir = settings?.userDir;
  if (typeof userDir !== 'string' || userDir === '') return undefined;
  if (!isPersistentStore(settings?.contextStorage, store)) return undefined;
  const file = [flowId, store ?? 'default', name].map(safeName).join('-');
  return path.join(userDir, 'stream-ml', 'checkpoints', `${file}.json`);
}

/**
 * The folder of a keyed model's per-key files (one per flow, store and name), or undefined when its store is not
 * persistent or there is no user folder.
 */
export function keyedFolderFor(
  settings: CheckpointSettings | undefined,
  flowId: string,
  store: string | undefined,
  name: string,
): string | undefined {
  const userDir = settings?.userDir;
  if (typeof userDir !== 'string' || userDir === '') return undefined;
  if (!isPersistentStore(settings?.contextStorage, store)) return undefined;
  const folder = [flowId, store ?? 'default', name].map(safeName).join('-');
  return path.join(userDir, 'stream-ml', 'keyed', folder);
}

/** True when the store (undefined: the default one) is a module other than memory, as Node-RED would resolve it. */
export function isPersistentStore(contextStorage: unknown, store: string | undefined): boolean {
  if (typeof contextStorage !== 'object' || contextStorage === null) return false;
  const stores = contextStorage as Record<string, unknown>;
  const names = Object.keys(stores);
  if (names.length === 0) return false;
  // An unknown store falls back to the default one; without a "default" entry the first store listed is it.
  let config: unknown = store !== undefined && store in stores ? stores[store] : (stores.default ?? stores[names[0]]);
  // "default" may name another store.
  for (let i = 0; typeof config === 'string' && i < names.length; i++) config = stores[config];
  if (typeof config !== 'object' || config === null) return false;
  const module = (config as { module?: unknown }).module;
  return module !== undefined && module !== 'memory';
}

/** A name as one file-name part: characters a file system could refuse are escaped, reversibly. */
export function safeName(part: string): string {
  return encodeURIComponent(part).replace(/[!'()*~.]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
