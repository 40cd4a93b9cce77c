// Model snapshots as commands carry them.

/** A snapshot (object or JSON text) without its learned positions; anything else is left for modelFromJSON. */
export function withoutPositions(snapshot: unknown): unknown {
  let value = snapshot;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return snapshot;
    }
  }
  if (typeof value !== 'object' || value === null || !('positions' in value)) return value;
  const { positions: _positions, ...rest } = value as Record<string, unknown>;
  return rest;
}
