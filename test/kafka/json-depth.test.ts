// The JSON decoder's nesting limit: counted over the bytes without recursion, strings and escapes ignored, and a
// record nested 10,000 levels deep refused as malformed before it is parsed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDecoder, MalformedRecordError } from '../../src/kafka/codecs';
import { jsonNestingExceeds, MAX_JSON_DEPTH } from '../../src/kafka/json-depth';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');
const arrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
const objects = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

test('nesting up to the limit passes, one level more does not, for arrays, objects and both mixed', () => {
  for (const limit of [1, 3, 64]) {
    assert.equal(jsonNestingExceeds(bytes(arrays(limit)), limit), false, `arrays ${limit} deep`);
    assert.equal(jsonNestingExceeds(bytes(arrays(limit + 1)), limit), true, `arrays ${limit + 1} deep`);
    assert.equal(jsonNestingExceeds(bytes(objects(limit)), limit), false, `objects ${limit} deep`);
    assert.equal(jsonNestingExceeds(bytes(objects(limit + 1)), limit), true, `objects ${limit + 1} deep`);
  }
  assert.equal(jsonNestingExceeds(bytes('{"a":[{"b":[1]}]}'), 4), false);
  assert.equal(jsonNestingExceeds(bytes('{"a":[{"b":[[1]]}]}'), 4), true);
});

test('many brackets side by side are wide, not deep', () => {
  const wide = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ n: i, list: [i, [i]] })));
  // [ { list: [ [ ] ] } ] is four levels deep, however many of them there are.
  assert.equal(jsonNestingExceeds(bytes(wide), 4), false);
  assert.equal(jsonNestingExceeds(bytes(wide), 3), true);
});

test('brackets inside strings, escaped quotes included, do not count', () => {
  const text = JSON.stringify({ s: '[[[[{{{{', t: 'say \\"[[[[\\" and "{{{{"', u: ['ok'] });
  assert.equal(jsonNestingExceeds(bytes(text), 2), false);
  // A backslash ending a string must not swallow the closing quote.
  assert.equal(jsonNestingExceeds(bytes(JSON.stringify({ a: '\\', b: [[['x']]] })), 3), true);
  // Multi-byte UTF-8 inside strings changes nothing.
  assert.equal(jsonNestingExceeds(bytes(JSON.stringify({ é: '€[[[', b: [['ü']] })), 3), false);
  assert.equal(jsonNestingExceeds(bytes(JSON.stringify({ é: '€[[[', b: [['ü']] })), 2), true);
});

test('the JSON decoder refuses a value 10,000 levels deep as a malformed record, without overflowing', () => {
  const decoder = createDecoder({ encoding: 'json', part: 'value' });
  for (const text of [arrays(10_000), objects(10_000), arrays(MAX_JSON_DEPTH + 1)]) {
    assert.throws(
      () => decoder.decode(bytes(text)),
      (e: unknown) =>
        e instanceof MalformedRecordError &&
        e.part === 'value' &&
        e.message === `value is JSON nested more than ${MAX_JSON_DEPTH} levels deep`,
    );
  }
  assert.deepEqual(decoder.decode(bytes(arrays(MAX_JSON_DEPTH))), JSON.parse(arrays(MAX_JSON_DEPTH)));
  const key = createDecoder({ encoding: 'json', part: 'key' });
  assert.throws(() => key.decode(bytes(objects(10_000))), /^MalformedRecordError: key is JSON nested more than/);
});
