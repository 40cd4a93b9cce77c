// Statistics reports compared as one model that learned the same records would give them: moments, extremes and
// pairs within a relative 1e-9 (merged or restored models add in another order). Quantile sketches are left out:
// they depend on the order records arrive in.
import assert from 'node:assert/strict';
import type { StatisticsReport } from '../../src/engine';

export function near(actual: number, expected: number, what: string): void {
  const tolerance = 1e-9 * Math.max(Math.abs(actual), Math.abs(expected)) + 1e-12;
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected}`);
}

export function assertSameStatistics(actual: StatisticsReport, expected: StatisticsReport, who = ''): void {
  const prefix = who ? `${who}: ` : '';
  assert.equal(actual.records, expected.records, `${prefix}records`);
  assert.equal(actual.features.length, expected.features.length);
  expected.features.forEach((e, i) => {
    const a = actual.features[i];
    assert.equal(a.name, e.name);
    for (const key of ['count', 'mean', 'variance', 'skewness', 'kurtosis', 'min', 'max'] as const)
      near(a[key], e[key], `${prefix}${e.name} ${key}`);
  });
  assert.equal(actual.pairs.length, expected.pairs.length);
  expected.pairs.forEach((e, i) => {
    near(actual.pairs[i].covariance, e.covariance, `${prefix}${e.a}×${e.b} covariance`);
    near(actual.pairs[i].correlation, e.correlation, `${prefix}${e.a}×${e.b} correlation`);
  });
}
