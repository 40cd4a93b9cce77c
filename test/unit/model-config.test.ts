// The learner and scorer dialogs' settings as engine options: the detector lists, and which settings a kept model
// does not have (the learner warns about those after a redeploy).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createModel, type AttributeSpec } from '../../src/engine';
import { parseExtraDetectors, settingsNotInModel } from '../../src/node-red/model-config';

const attributes: AttributeSpec[] = [
  { name: 'a', type: 'C' },
  { name: 'b', type: 'C' },
];

test('Also learn: known names, each once, without the default detector; a list or comma-separated text', () => {
  assert.deepEqual(parseExtraDetectors(['hst', 'auto', 'hst', 'ecod'], 'auto'), ['hst', 'ecod']);
  assert.deepEqual(parseExtraDetectors('gaussian, hst', 'hst'), ['gaussian']);
  assert.deepEqual(parseExtraDetectors(undefined, 'auto'), []);
  assert.deepEqual(parseExtraDetectors('', 'auto'), []);
  assert.throws(() => parseExtraDetectors(['magic'], 'auto'), /detector "magic" is unknown/);
  assert.throws(() => parseExtraDetectors({ hst: true }, 'auto'), /must be a list of names/);
});

test('the settings a kept model lacks are named by their dialog labels; equal settings name none', () => {
  const options = { attributes, detector: 'auto' as const, extraDetectors: ['hst' as const, 'gaussian' as const] };
  const model = createModel(options);
  assert.deepEqual(settingsNotInModel(model, options), []);
  // Same extras in another order, and defaults left empty, are the same settings.
  assert.deepEqual(settingsNotInModel(model, { ...options, extraDetectors: ['gaussian', 'hst'] }), []);
  assert.deepEqual(settingsNotInModel(createModel({ attributes }), { attributes }), []);
  assert.deepEqual(
    settingsNotInModel(model, {
      attributes,
      detector: 'ecod',
      extraDetectors: ['hst'],
      halfLife: 1000,
      warmupRecords: 10,
      invalidValues: 'impute',
    }),
    ['Detector', 'Also learn', 'Half-life', 'Warm-up', 'Invalid values'],
  );
});
