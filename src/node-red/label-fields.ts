// A field a scorer reads as its label must never be learned as a feature: learned, it would teach the model the
// answer. The scorers of a model register their label fields with its registry entry; the learner applies them to
// its attribute table, to the schema guess, and checks a kept model against them.
import type { AttributeSpec } from '../engine';

/**
 * The attribute table with each feature row named in labelFields taken as the label (its type kept, so the table
 * still reads as the user wrote it); madeLabels names those rows. Rows not learned anyway (S, X) stay as they are.
 */
export function withLabelFields(
  attributes: AttributeSpec[],
  labelFields: readonly string[],
): { attributes: AttributeSpec[]; madeLabels: string[] } {
  const madeLabels: string[] = [];
  const result = attributes.map((a) => {
    if (a.role === 'label' || !labelFields.includes(a.name) || !learnsAsFeature(a)) return a;
    madeLabels.push(a.name);
    return { ...a, role: 'label' as const };
  });
  return { attributes: result, madeLabels };
}

/** The attributes of a schema that are label fields and yet learned as features. */
export function labelFieldsLearned(schema: AttributeSpec[], labelFields: readonly string[]): string[] {
  return schema
    .filter((a) => a.role !== 'label' && labelFields.includes(a.name) && learnsAsFeature(a))
    .map((a) => a.name);
}

/** "f1 C, f2 C, outlier B (label)": a schema as a warning lists it. */
export function describeSchema(schema: AttributeSpec[]): string {
  return schema.map((a) => `${a.name} ${a.type}${a.role === 'label' ? ' (label)' : ''}`).join(', ');
}

function learnsAsFeature(a: AttributeSpec): boolean {
  return a.type === 'C' || a.type === 'B' || a.type === 'T' || (a.type === 'S' && a.asCategory === true);
}
