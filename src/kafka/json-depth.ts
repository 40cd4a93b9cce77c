// How deeply a JSON text nests, found from its bytes before it is parsed. JSON.parse copes with any depth, but a
// value nested thousands of levels deep overflows the stack of whatever walks it recursively afterwards (Node-RED's
// message cloning, JSON.stringify), so the JSON decoder refuses such a record as malformed instead.

/** Deepest nesting the JSON decoder accepts: far above real records, far below what recursive copying survives. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** True when the JSON text opens more than `limit` arrays or objects inside one another. No recursion. */
export function jsonNestingExceeds(data: Uint8Array, limit: number): boolean {
  // Each level costs an opening and a closing byte, so a shorter valid text cannot be too deep (an invalid one
  // fails JSON.parse, which does not recurse).
  if (data.length <= 2 * limit) return false;
  // Cheap first look, native: fewer opening brackets than the limit, wherever they are, cannot nest deeper.
  const braces = countUpTo(data, OPEN_BRACE, limit + 1);
  if (braces + countUpTo(data, OPEN_BRACKET, limit + 1 - braces) <= limit) return false;
  let depth = 0;
  const n = data.length;
  for (let i = 0; i < n; i++) {
    const c = data[i];
    if (c === QUOTE) {
      // Brackets inside strings do not count; UTF-8 continuation bytes are never ASCII, so bytes are enough.
      for (i++; i < n; i++) {
        const s = data[i];
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

function countUpTo(data: Uint8Array, byte: number, most: number): number {
  let count = 0;
  for (let i = data.indexOf(byte); i !== -1 && count < most; i = data.indexOf(byte, i + 1)) count++;
  return count;
}
