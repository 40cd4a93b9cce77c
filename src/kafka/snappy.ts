// Snappy for kafkajs, in pure JavaScript (snappyjs), so it installs on gateways without a compiler. Java clients
// write Snappy batches in xerial's stream framing (a magic header, then length-prefixed blocks); others write one
// raw Snappy block. Both are read; raw blocks are written, which Java's reader also accepts.
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { compress, uncompress } from 'snappyjs';

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]); // "\x82SNAPPY\0"
const XERIAL_HEADER_LENGTH = 16; // magic, version (4 bytes), compatible version (4 bytes)

export function snappyDecompress(buffer: Buffer): Buffer {
  if (buffer.length < XERIAL_HEADER_LENGTH || !buffer.subarray(0, 8).equals(XERIAL_MAGIC)) return uncompress(buffer);
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER_LENGTH;
  // Bounded by the buffer: every pass consumes a length prefix and its block.
  while (at + 4 <= buffer.length) {
    const length = buffer.readUInt32BE(at);
    at += 4;
    if (at + length > buffer.length) throw new Error('truncated xerial snappy block');
    blocks.push(uncompress(buffer.subarray(at, at + length)));
    at += length;
  }
  return Buffer.concat(blocks);
}

export function snappyCompress(buffer: Buffer): Buffer {
  return compress(buffer);
}

let registered = false;

/** Gives kafkajs a Snappy codec, unless something else in this process already gave it one. */
export function registerSnappy(): void {
  if (registered) return;
  registered = true;
  const codecs = CompressionCodecs as unknown as Record<number, () => unknown>;
  let existing: unknown;
  try {
    existing = codecs[CompressionTypes.Snappy]();
  } catch {
    existing = undefined; // kafkajs's placeholder throws "not implemented"
  }
  if (existing) return;
  const codec = {
    compress: async (encoder: { buffer: Buffer }) => snappyCompress(encoder.buffer),
    decompress: async (buffer: Buffer) => snappyDecompress(buffer),
  };
  codecs[CompressionTypes.Snappy] = () => codec;
}
