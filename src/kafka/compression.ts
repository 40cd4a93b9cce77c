// Compression codecs for kafkajs, which ships only gzip. All pure JavaScript, so the package installs on gateways
// without a compiler: Snappy (snappyjs), LZ4 (lz4js blocks in frames written and checked by lz4-frame.ts) and
// zstd (fzstd, which only decompresses). Consumers read all four; producers write gzip, snappy and lz4.
import { decompress as fzstdDecompress } from 'fzstd';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { compress as snappyBlockCompress, uncompress as snappyBlockUncompress } from 'snappyjs';
import { lz4Compress, lz4Decompress } from './lz4-frame';

// ---- Snappy ----
// Java clients write Snappy batches in xerial's stream framing (a magic header, then length-prefixed blocks); others
// write one raw Snappy block. Both are read; raw blocks are written, which Java's reader also accepts.

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]); // "\x82SNAPPY\0"
const XERIAL_HEADER_LENGTH = 16; // magic, version (4 bytes), compatible version (4 bytes)

export function snappyDecompress(buffer: Buffer): Buffer {
  if (buffer.length < XERIAL_HEADER_LENGTH || !buffer.subarray(0, 8).equals(XERIAL_MAGIC))
    return snappyBlockUncompress(buffer);
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER_LENGTH;
  // Bounded by the buffer: every pass consumes a length prefix and its block.
  while (at + 4 <= buffer.length) {
    const length = buffer.readUInt32BE(at);
    at += 4;
    if (at + length > buffer.length) throw new Error('truncated xerial snappy block');
    blocks.push(snappyBlockUncompress(buffer.subarray(at, at + length)));
    at += length;
  }
  return Buffer.concat(blocks);
}

export function snappyCompress(buffer: Buffer): Buffer {
  return snappyBlockCompress(buffer);
}

// ---- zstd ----

export function zstdDecompress(buffer: Buffer): Buffer {
  let out: Uint8Array;
  try {
    out = fzstdDecompress(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length));
  } catch (error) {
    throw new Error(`corrupt zstd data: ${(error as Error).message}`);
  }
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}

export const ZSTD_COMPRESS_UNSUPPORTED =
  'zstd compression is not available (no pure-JavaScript zstd encoder): use gzip, snappy or lz4; zstd batches are still read';

// ---- registration ----

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const OURS: [CompressionTypes, Codec][] = [
  [
    CompressionTypes.Snappy,
    {
      compress: async (encoder) => snappyCompress(encoder.buffer),
      decompress: async (buffer) => snappyDecompress(buffer),
    },
  ],
  [
    CompressionTypes.LZ4,
    { compress: async (encoder) => lz4Compress(encoder.buffer), decompress: async (buffer) => lz4Decompress(buffer) },
  ],
  [
    CompressionTypes.ZSTD,
    {
      compress: async () => {
        throw new Error(ZSTD_COMPRESS_UNSUPPORTED);
      },
      decompress: async (buffer) => zstdDecompress(buffer),
    },
  ],
];

let registered = false;

/**
 * Gives kafkajs Snappy, LZ4 and zstd codecs. A codec something else in this process already registered (another
 * package, or an application's native one) is kept.
 */
export function registerCompressionCodecs(): void {
  if (registered) return;
  registered = true;
  const codecs = CompressionCodecs as unknown as Record<number, () => unknown>;
  for (const [type, codec] of OURS) {
    let existing: unknown;
    try {
      existing = codecs[type]();
    } catch {
      existing = undefined; // kafkajs's placeholder throws "not implemented"
    }
    if (!existing) codecs[type] = () => codec;
  }
}
