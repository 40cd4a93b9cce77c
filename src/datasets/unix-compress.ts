// Reads files made by Unix `compress` (.Z, adaptive LZW), as the UCI archive ships Shuttle's training file, without
// spawning gzip, so that a Node-RED gateway on any system can unpack it. No maintained JavaScript package reads this
// format (the npm LZW packages implement other LZW variants), hence this small decoder.

const MAGIC_0 = 0x1f;
const MAGIC_1 = 0x9d;
const BLOCK_MODE = 0x80;
const BITS_MASK = 0x1f;
const INIT_BITS = 9;
const CLEAR = 256;

/** The contents of a `.Z` file. Throws on data that is not in that format or is cut short. */
export function uncompressZ(input: Uint8Array): Buffer {
  if (input.length < 3 || input[0] !== MAGIC_0 || input[1] !== MAGIC_1)
    throw new Error('not a Unix compress (.Z) file');
  const maxBits = input[2] & BITS_MASK;
  const blockMode = (input[2] & BLOCK_MODE) !== 0;
  if (maxBits < INIT_BITS || maxBits > 16) throw new Error(`a .Z file with ${maxBits}-bit codes is not supported`);
  const maxMaxCode = 1 << maxBits;
  const prefix = new Uint16Array(maxMaxCode);
  const suffix = new Uint8Array(maxMaxCode);
  for (let c = 0; c < 256; c++) suffix[c] = c;
  const stack = new Uint8Array(maxMaxCode);

  const data = input.subarray(3);
  const totalBits = data.length * 8;
  let out: Buffer = Buffer.allocUnsafe(Math.max(1024, data.length * 4));
  let outLength = 0;

  let nBits = INIT_BITS;
  let maxCode = (1 << nBits) - 1;
  let freeEnt = blockMode ? 257 : 256;
  let oldCode = -1;
  let finChar = 0;
  // Codes come in groups of eight; a change of code width (or a clear) skips the rest of the current group,
  // counted from where the previous width began.
  let groupStart = 0;
  let pos = 0;
  const skipToGroupEnd = () => {
    const group = nBits * 8;
    pos = groupStart + Math.ceil((pos - groupStart) / group) * group;
    groupStart = pos;
  };

  while (pos + nBits <= totalBits) {
    if (freeEnt > maxCode) {
      skipToGroupEnd();
      nBits++;
      maxCode = nBits === maxBits ? maxMaxCode : (1 << nBits) - 1;
      continue;
    }
    const at = pos >> 3;
    const word = data[at] | ((data[at + 1] ?? 0) << 8) | ((data[at + 2] ?? 0) << 16);
    let code = (word >> (pos & 7)) & ((1 << nBits) - 1);
    pos += nBits;

    if (oldCode === -1) {
      if (code >= 256) throw new Error('corrupt .Z data: the first code is not a byte');
      finChar = oldCode = code;
      out = reserve(out, outLength, 1);
      out[outLength++] = code;
      continue;
    }
    if (code === CLEAR && blockMode) {
      freeEnt = 256;
      skipToGroupEnd();
      nBits = INIT_BITS;
      maxCode = (1 << nBits) - 1;
      continue;
    }
    const inCode = code;
    let top = stack.length;
    if (code >= freeEnt) {
      // The code being defined right now: the previous string plus its own first byte.
      if (code > freeEnt) throw new Error('corrupt .Z data: a code refers past the table');
      stack[--top] = finChar;
      code = oldCode;
    }
    while (code >= 256) {
      stack[--top] = suffix[code];
      code = prefix[code];
    }
    finChar = suffix[code];
    stack[--top] = finChar;
    out = reserve(out, outLength, stack.length - top);
    out.set(stack.subarray(top), outLength);
    outLength += stack.length - top;
    if (freeEnt < maxMaxCode) {
      prefix[freeEnt] = oldCode;
      suffix[freeEnt] = finChar;
      freeEnt++;
    }
    oldCode = inCode;
  }
  return out.subarray(0, outLength);
}

function reserve(buffer: Buffer, used: number, more: number): Buffer {
  if (used + more <= buffer.length) return buffer;
  const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, used + more));
  buffer.copy(grown, 0, 0, used);
  return grown;
}
