// The LZ4 frame format (lz4.org's frame spec) as Kafka's message format v2 uses it, in pure JavaScript: lz4js
// compresses and decompresses the blocks, this module writes and checks the frames around them.
import { compressBlock, compressBound, decompressBlock } from 'lz4js';
import { hash as xxh32 } from 'lz4js/xxh32.js';

// Kafka (message format v2) uses the standard LZ4 frame format. lz4js's frame functions are not used: its writer
// marks blocks as dependent, which Kafka's Java reader (and so the broker) refuses, and its reader puts block
// checksums before the block and checks no lengths. So the frame is written and read here, lz4js does the blocks,
// and every block is walked first so that lz4js never sees lengths or offsets that leave the buffers.

const LZ4_MAGIC = 0x184d2204;
const FLG_VERSION_MASK = 0xc0;
const FLG_VERSION_01 = 0x40;
const FLG_INDEPENDENT_BLOCKS = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_DICTIONARY_ID = 0x01;
const BLOCK_MAX_SIZES: Record<number, number> = { 4: 0x10000, 5: 0x40000, 6: 0x100000, 7: 0x400000 };
const UNCOMPRESSED_BLOCK = 0x80000000;
const WRITE_BLOCK_SIZE = 0x10000; // 64 KiB, as Java's KafkaLZ4BlockOutputStream writes
const WRITE_BD = 4 << 4;
// End-of-block rules of the LZ4 format that lz4js's compressor does not keep: the last match starts at least 12
// bytes before the end (the reference and Java decoders reject a full block that breaks it), and the last 5 bytes
// are literals.
const MATCH_START_LIMIT = 12;
const LZ4JS_MATCH_START_LIMIT = 10; // how close to the end lz4js may start a match
const LAST_LITERALS = 5;

function lz4Error(detail: string): Error {
  return new Error(`corrupt LZ4 frame: ${detail}`);
}

/** xxHash32 as an unsigned number, the way the frame stores it. */
function checksum(src: Uint8Array, start: number, length: number): number {
  return xxh32(0, src, start, length) >>> 0;
}

interface BlockShape {
  /** Decoded length. */
  length: number;
  /** Where, in the decoded block, the last match starts (-1: none). */
  lastMatch: number;
  /** Literal bytes after the last match. */
  tailLiterals: number;
  /** Where, in the block, the last sequence's token is. */
  lastToken: number;
}

/**
 * Walks one LZ4 block's sequences without copying anything: every length must stay inside the block, the output
 * inside `room`, and every match offset inside what was decoded before it (`history`: earlier output a match may
 * reach back into, 0 for independent blocks).
 */
function walkBlock(src: Uint8Array, start: number, end: number, room: number, history: number): BlockShape {
  let at = start;
  let out = 0;
  let lastMatch = -1;
  let tailLiterals = 0;
  let lastToken = start;
  const extendedLength = (base: number): number => {
    let length = base;
    if (base !== 15) return length;
    for (;;) {
      if (at >= end) throw lz4Error('block ends inside a length');
      const byte = src[at++];
      length += byte;
      if (byte !== 255) return length;
    }
  };
  while (at < end) {
    lastToken = at;
    const token = src[at++];
    const literals = extendedLength(token >> 4);
    if (literals > end - at) throw lz4Error('literals run past the end of the block');
    at += literals;
    out += literals;
    tailLiterals += literals;
    if (out > room) throw lz4Error('block decodes to more than its maximum size');
    if (at === end) break; // the last sequence has literals only
    if (end - at < 2) throw lz4Error('block ends inside a match offset');
    const offset = src[at] | (src[at + 1] << 8);
    at += 2;
    if (offset === 0 || offset > out + history) throw lz4Error('match offset points before the start of the data');
    const matchLength = extendedLength(token & 15) + 4;
    lastMatch = out;
    tailLiterals = 0;
    out += matchLength;
    if (out > room) throw lz4Error('block decodes to more than its maximum size');
  }
  return { length: out, lastMatch, tailLiterals, lastToken: lastToken - start };
}

/** A growable output for decoded frames: linked blocks need earlier output in the same array. */
class ByteSink {
  bytes: Uint8Array;
  length = 0;
  constructor(capacity: number) {
    this.bytes = new Uint8Array(Math.max(capacity, 64));
  }
  reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.length + extra, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

/** Reads the LZ4 frame(s) in `input` (frames may be concatenated); throws a "corrupt LZ4 frame" error otherwise. */
export function lz4Decompress(input: Buffer): Buffer {
  const sink = new ByteSink(input.length * 3);
  let at = 0;
  do {
    at = readFrame(input, at, sink);
  } while (at < input.length);
  return Buffer.from(sink.bytes.buffer, sink.bytes.byteOffset, sink.length);
}

function readFrame(input: Buffer, start: number, sink: ByteSink): number {
  let at = start;
  const need = (n: number, what: string): void => {
    if (input.length - at < n) throw lz4Error(`truncated (${what})`);
  };
  need(7, 'header');
  if (input.readUInt32LE(at) !== LZ4_MAGIC) throw lz4Error('bad magic number');
  at += 4;
  const flg = input[at];
  const bd = input[at + 1];
  if ((flg & FLG_VERSION_MASK) !== FLG_VERSION_01) throw lz4Error(`unknown frame version ${flg >> 6}`);
  if (flg & FLG_DICTIONARY_ID) throw lz4Error('frames with a dictionary are not supported');
  const maxBlock = BLOCK_MAX_SIZES[(bd >> 4) & 7];
  if (maxBlock === undefined) throw lz4Error(`unknown block size code ${(bd >> 4) & 7}`);
  const descriptorLength = 2 + (flg & FLG_CONTENT_SIZE ? 8 : 0);
  need(descriptorLength + 1, 'header');
  let contentSize = -1;
  if (flg & FLG_CONTENT_SIZE) {
    const high = input.readUInt32LE(at + 6);
    if (high !== 0) throw lz4Error('content size too large');
    contentSize = input.readUInt32LE(at + 2);
  }
  if (input[at + descriptorLength] !== ((checksum(input, at, descriptorLength) >>> 8) & 0xff))
    throw lz4Error('header checksum mismatch');
  at += descriptorLength + 1;

  const independent = (flg & FLG_INDEPENDENT_BLOCKS) !== 0;
  const blockChecksums = (flg & FLG_BLOCK_CHECKSUM) !== 0;
  const frameStart = sink.length;
  for (;;) {
    need(4, 'block size');
    const word = input.readUInt32LE(at);
    at += 4;
    if (word === 0) break; // end mark
    const size = word & 0x7fffffff;
    if (size > maxBlock) throw lz4Error(`block of ${size} bytes exceeds the frame's maximum ${maxBlock}`);
    need(size + (blockChecksums ? 4 : 0), 'block');
    if (blockChecksums && input.readUInt32LE(at + size) !== checksum(input, at, size))
      throw lz4Error('block checksum mismatch');
    if (word & UNCOMPRESSED_BLOCK) {
      sink.reserve(size);
      sink.bytes.set(input.subarray(at, at + size), sink.length);
      sink.length += size;
    } else {
      const history = independent ? 0 : sink.length - frameStart;
      const shape = walkBlock(input, at, at + size, maxBlock, history);
      sink.reserve(shape.length);
      const end = decompressBlock(input, sink.bytes, at, size, sink.length);
      if (end !== sink.length + shape.length) throw lz4Error('block decoded to an unexpected length');
      sink.length = end;
    }
    at += size + (blockChecksums ? 4 : 0);
  }
  const decoded = sink.length - frameStart;
  if (contentSize >= 0 && decoded !== contentSize)
    throw lz4Error(`decoded ${decoded} bytes, the header says ${contentSize}`);
  if (flg & FLG_CONTENT_CHECKSUM) {
    need(4, 'content checksum');
    if (input.readUInt32LE(at) !== checksum(sink.bytes, frameStart, decoded))
      throw lz4Error('content checksum mismatch');
    at += 4;
  }
  return at;
}

// One hash table and block buffer for every call: compression is synchronous, so calls never interleave.
let hashTable: Uint32Array | undefined;
let blockBuffer: Uint8Array | undefined;

/** One LZ4 frame of independent 64 KiB blocks, no checksums but the header's: what Kafka's Java client writes. */
export function lz4Compress(input: Buffer): Buffer {
  const blockCount = Math.ceil(input.length / WRITE_BLOCK_SIZE);
  // Worst case: every block stored, with its size word; then the header and the end mark.
  const out = Buffer.allocUnsafe(7 + input.length + 4 * blockCount + 4);
  out.writeUInt32LE(LZ4_MAGIC, 0);
  out[4] = FLG_VERSION_01 | FLG_INDEPENDENT_BLOCKS;
  out[5] = WRITE_BD;
  out[6] = (checksum(out, 4, 2) >>> 8) & 0xff;
  let at = 7;
  for (let start = 0; start < input.length; start += WRITE_BLOCK_SIZE) {
    const length = Math.min(WRITE_BLOCK_SIZE, input.length - start);
    const size = compressOneBlock(input, start, length);
    if (blockBuffer && size > 0) {
      out.writeUInt32LE(size, at);
      out.set(blockBuffer.subarray(0, size), at + 4);
      at += 4 + size;
    } else {
      // Incompressible: stored as it is, which every reader accepts.
      out.writeUInt32LE((UNCOMPRESSED_BLOCK | length) >>> 0, at);
      input.copy(out, at + 4, start, start + length);
      at += 4 + length;
    }
  }
  out.writeUInt32LE(0, at);
  return out.subarray(0, at + 4);
}

/**
 * Compresses input[start, start + length) into blockBuffer as an independent block; returns its size, or 0 when the
 * block is better stored. lz4js may start a match 10 bytes before the end it is given, the format wants 12: so it
 * searches all but the last 2 bytes, and those join the block's final literals.
 */
function compressOneBlock(input: Buffer, start: number, length: number): number {
  const leftOut = MATCH_START_LIMIT - LZ4JS_MATCH_START_LIMIT;
  if (length <= MATCH_START_LIMIT + leftOut) return 0; // too short for any match
  hashTable ??= new Uint32Array(1 << 16);
  blockBuffer ??= new Uint8Array(compressBound(WRITE_BLOCK_SIZE) + 16);
  hashTable.fill(0); // independent blocks: no match may reach into an earlier block
  const searched = length - leftOut;
  const size = compressBlock(input, blockBuffer, start, searched, hashTable);
  if (size === 0) return 0;
  let shape: BlockShape;
  try {
    shape = walkBlock(blockBuffer, 0, size, searched, 0);
  } catch {
    return 0; // not expected from lz4js; storing the block is always correct
  }
  if (shape.length !== searched) return 0;
  // Rewrite the final (literals-only) sequence to carry the bytes left out of the search too.
  const tail = shape.tailLiterals + leftOut;
  let at = shape.lastToken;
  if (at + 1 + Math.ceil(tail / 255) + tail >= length) return 0; // would not be smaller
  blockBuffer[at++] = Math.min(tail, 15) << 4;
  if (tail >= 15) {
    let rest = tail - 15;
    for (; rest >= 255; rest -= 255) blockBuffer[at++] = 255;
    blockBuffer[at++] = rest;
  }
  blockBuffer.set(input.subarray(start + length - tail, start + length), at);
  at += tail;
  return followsEndRules(blockBuffer, at, length) ? at : 0;
}

function followsEndRules(block: Uint8Array, size: number, length: number): boolean {
  let shape: BlockShape;
  try {
    shape = walkBlock(block, 0, size, length, 0);
  } catch {
    return false;
  }
  return (
    shape.length === length &&
    shape.tailLiterals >= LAST_LITERALS &&
    (shape.lastMatch < 0 || shape.lastMatch <= length - MATCH_START_LIMIT)
  );
}
