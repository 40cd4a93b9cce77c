// A scorer's label field is never learned: the learner applies the scorers' label fields to its attribute table,
// checks a kept model against them, and lists a guessed schema in its warning.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttributeSpec } from '../../src/engine';
import { describeSchema, labelFieldsLearned, withLabelFields } from '../../src/node-red/label-fields';

const table: AttributeSpec[] = [
  { name: 'f1', type: 'C' },
  { name: 'fault', type: 'B' },
  { name: 'mode', type: 'T' },
  { name: 'note', type: 'S' },
  { name: 'outlier', type: 'X', role: 'label' },
];

test('withLabelFields: feature rows named as label fields become the label, type kept; others stay as they are', () => {
  assert.deepEqual(withLabelFields(table, ['fault', 'mode', 'note', 'outlier', 'absent']), {
    attributes: [
      { name: 'f1', type: 'C' },
      { name: 'fault', type: 'B', role: 'label' },
      { name: 'mode', type: 'T', role: 'label' },
      { name: 'note', type: 'S' },
      { name: 'outlier', type: 'X', role: 'label' },
    ],
    madeLabels: ['fault', 'mode'],
  });
  const untouched = withLabelFields(table, []);
  assert.deepEqual(untouched, { attributes: table, madeLabels: [] });
  assert.equal(table[1].role, undefined, 'the table given is not changed');
});

test('labelFieldsLearned: the label fields a schema learns as features (an S kept as a category counts)', () => {
  const schema: AttributeSpec[] = [...table, { name: 'site', type: 'S', asCategory: true }];
  assert.deepEqual(labelFieldsLearned(schema, ['f1', 'note', 'outlier', 'site']), ['f1', 'site']);
  assert.deepEqual(labelFieldsLearned(schema, []), []);
});

test('describeSchema: name and type, the label marked', () => {
  assert.equal(describeSchema(table), 'f1 C, fault B, mode T, note S, outlier X (label)');
  assert.equal(describeSchema([]), '');
});
