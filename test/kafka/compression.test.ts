// The compression codecs without a broker: round trips, frames made by the reference tools, corrupt input, and how
// they are registered with kafkajs. The broker tests (test/nodes/kafka-compression.test.ts) check them against Java.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import {
  registerCompressionCodecs,
  snappyCompress,
  snappyDecompress,
  zstdDecompress,
} from '../../src/kafka/compression';
import { lz4Compress, lz4Decompress } from '../../src/kafka/lz4-frame';
import { projectRoot } from '../support/env';
import { javaSkipReason, runJava } from './java';

const fixtures = path.join(projectRoot, 'test', 'kafka', 'fixtures');

/** JSON lines like a batch of sensor records; `seed` varies the content. */
function jsonLines(length: number, seed = 1): Buffer {
  let text = '';
  for (let i = 0; text.length < length; i++)
    text += JSON.stringify({ i: i * seed, t: (i * 7919 * seed) % 1000, text: `reading ${(i * seed) % 13}` }) + '\n';
  return Buffer.from(text.slice(0, length));
}

/** The text the fixtures were made from (see the fixtures' names for the tools' options). */
function fixtureText(): Buffer {
  return Buffer.from(Array.from({ length: 9000 }, (_, i) => `record ${i % 97} of the fixture\n`).join(''));
}

interface Block {
  stored: boolean;
  bytes: Buffer;
}

/** The blocks of one frame as written by lz4Compress (no optional header fields, no checksums). */
function blocksOf(frame: Buffer): Block[] {
  const blocks: Block[] = [];
  for (let at = 7; ;) {
    const word = frame.readUInt32LE(at);
    if (word === 0) return blocks;
    const size = word & 0x7fffffff;
    blocks.push({ stored: (word & 0x80000000) !== 0, bytes: frame.subarray(at + 4, at + 4 + size) });
    at += 4 + size;
  }
}

/** Decoded length and where the last match of an LZ4 block starts, read independently of the module. */
function lastMatchOf(block: Buffer): { length: number; lastMatch: number } {
  let at = 0;
  let out = 0;
  let lastMatch = -1;
  const more = (n: number): number => {
    if (n !== 15) return n;
    for (let byte = 255; byte === 255; n += byte) byte = block[at++];
    return n;
  };
  while (at < block.length) {
    const token = block[at++];
    const literals = more(token >> 4);
    at += literals;
    out += literals;
    if (at >= block.length) break;
    at += 2;
    lastMatch = out;
    out += more(token & 15) + 4;
  }
  return { length: out, lastMatch };
}

describe('snappy', () => {
  test('raw blocks round-trip and xerial-framed input (what Java writes) is read', () => {
    const data = jsonLines(100_000);
    assert.deepEqual(snappyDecompress(snappyCompress(data)), data);
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const parts = [data.subarray(0, 40_000), data.subarray(40_000)].map((p) => snappyCompress(p));
    const framed = Buffer.concat([
      header,
      ...parts.flatMap((part) => {
        const length = Buffer.alloc(4);
        length.writeUInt32BE(part.length);
        return [length, part];
      }),
    ]);
    assert.deepEqual(snappyDecompress(framed), data);
  });
});

describe('lz4', () => {
  test('round-trips text, random bytes and empty input across block boundaries', () => {
    for (const length of [0, 1, 13, 15, 16, 100, 65_535, 65_536, 65_537, 300_000]) {
      for (const data of [jsonLines(length), randomBytes(length), Buffer.alloc(length, 7)]) {
        assert.deepEqual(lz4Decompress(lz4Compress(data)), data, `length ${length}`);
      }
    }
    assert.ok(lz4Compress(jsonLines(300_000)).length < 150_000, 'text is compressed');
  });

  test("writes Java's frame layout: independent 64 KiB blocks, header checksum, end mark", () => {
    const frame = lz4Compress(jsonLines(150_000));
    assert.equal(frame.readUInt32LE(0), 0x184d2204);
    assert.equal(frame[4], 0x60, 'version 01, independent blocks, no optional fields');
    assert.equal(frame[5], 0x40, '64 KiB blocks');
    assert.equal(frame[6], 0x82, 'xxh32 of the descriptor, second byte');
    assert.equal(blocksOf(frame).length, 3);
    assert.equal(frame.readUInt32LE(frame.length - 4), 0);
  });

  test('compressed blocks keep the end-of-block rules the Java and reference decoders enforce', () => {
    // Without care, about one full block in ten from lz4js starts a match 10 or 11 bytes before its end.
    let full = 0;
    for (let seed = 1; seed <= 60; seed++) {
      for (const block of blocksOf(lz4Compress(jsonLines(65_536 * 2, seed)))) {
        assert.equal(block.stored, false, `seed ${seed}: a text block was stored`);
        const { length, lastMatch } = lastMatchOf(block.bytes);
        assert.ok(lastMatch <= length - 12, `seed ${seed}: last match at ${lastMatch} of ${length}`);
        if (length === 65_536) full++;
      }
    }
    assert.equal(full, 120);
  });

  test("Kafka's Java reader decodes what lz4Compress writes", { skip: javaSkipReason }, async () => {
    // The reader brokers and Java consumers use; a block breaking the end-of-block rules fails here.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-lz4-'));
    try {
      const inputs = [0, 1, 100, 65_536, 300_000].map((n) => jsonLines(n));
      for (let seed = 1; seed <= 40; seed++) inputs.push(jsonLines(65_536 * 3, seed));
      const files = inputs.map((data, i) => {
        const file = path.join(dir, `${i}.lz4`);
        fs.writeFileSync(file, lz4Compress(data));
        return file;
      });
      const lines = (await runJava('Lz4FrameCheck', files)).trim().split('\n');
      assert.deepEqual(
        lines,
        inputs.map((data, i) => `${files[i]} ${data.length} ${createHash('sha256').update(data).digest('hex')}`),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('reads a frame from the reference lz4 tool with linked blocks, block and content checksums, content size', () => {
    // lz4 -B4 -BD -BX --content-size: four 64 KiB blocks that refer back into earlier ones.
    const frame = fs.readFileSync(path.join(fixtures, 'reference-lz4-linked-checksums.lz4'));
    assert.equal(frame[4] & 0x3c, 0x1c, 'fixture has block checksums, content size and content checksum');
    assert.equal(frame[4] & 0x20, 0, 'fixture has linked blocks');
    assert.deepEqual(lz4Decompress(frame), fixtureText());
  });

  test('corrupt frames give a clear error, never wrong data', () => {
    const good = lz4Compress(jsonLines(100_000));
    const reference = fs.readFileSync(path.join(fixtures, 'reference-lz4-linked-checksums.lz4'));
    const flip = (b: Buffer, at: number) => {
      const copy = Buffer.from(b);
      copy[at] ^= 0x5a;
      return copy;
    };
    assert.throws(() => lz4Decompress(Buffer.from('not lz4 at all')), /^Error: corrupt LZ4 frame: bad magic number$/);
    assert.throws(() => lz4Decompress(flip(good, 5)), /corrupt LZ4 frame: (header checksum mismatch|unknown block)/);
    assert.throws(() => lz4Decompress(flip(good, 6)), /corrupt LZ4 frame: header checksum mismatch/);
    assert.throws(() => lz4Decompress(good.subarray(0, 5)), /corrupt LZ4 frame: truncated \(header\)/);
    assert.throws(() => lz4Decompress(good.subarray(0, good.length - 100)), /corrupt LZ4 frame: truncated/);
    assert.throws(() => lz4Decompress(flip(reference, 500)), /corrupt LZ4 frame: block checksum mismatch/);
    // One block: a literal, then a match 5 bytes back although only 1 byte was decoded.
    const header = good.subarray(0, 7);
    const block = Buffer.from([0x10, 0x61, 5, 0, 0x50, 1, 2, 3, 4, 5]);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(block.length);
    assert.throws(
      () => lz4Decompress(Buffer.concat([header, size, block, Buffer.alloc(4)])),
      /corrupt LZ4 frame: match offset points before the start of the data/,
    );
    size.writeUInt32LE(0x10001);
    assert.throws(() => lz4Decompress(Buffer.concat([header, size])), /exceeds the frame's maximum 65536/);
  });
});

describe('zstd', () => {
  test('reads a streamed frame (no content size, with checksum) from the reference zstd tool', () => {
    // zstd -19 --check, from a pipe: the frame header carries no content size, as Java's zstd-jni stream writes.
    const frame = fs.readFileSync(path.join(fixtures, 'reference-zstd-stream.zst'));
    assert.equal(frame[4] & 0xc0, 0, 'fixture has no content size');
    assert.deepEqual(zstdDecompress(frame), fixtureText());
  });

  test('corrupt zstd data gives a clear error', () => {
    const frame = fs.readFileSync(path.join(fixtures, 'reference-zstd-stream.zst'));
    assert.throws(() => zstdDecompress(Buffer.from('not zstd')), /^Error: corrupt zstd data: /);
    assert.throws(() => zstdDecompress(frame.subarray(0, 60)), /^Error: corrupt zstd data: /);
  });
});

describe('registration with kafkajs', () => {
  test("adds snappy, lz4 and zstd, keeps a codec registered before, and zstd's compress says why it cannot", async () => {
    const codecs = CompressionCodecs as unknown as Record<number, () => unknown>;
    const theirs = { compress: async () => Buffer.alloc(0), decompress: async () => Buffer.alloc(0) };
    const placeholder = codecs[CompressionTypes.LZ4];
    assert.throws(() => placeholder(), /not implemented/);
    codecs[CompressionTypes.Snappy] = () => theirs;
    registerCompressionCodecs();
    registerCompressionCodecs(); // a second call changes nothing
    assert.equal(codecs[CompressionTypes.Snappy](), theirs);

    type Codec = { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> };
    const lz4 = codecs[CompressionTypes.LZ4]() as Codec;
    const data = jsonLines(70_000);
    assert.deepEqual(await lz4.decompress(await lz4.compress({ buffer: data })), data);

    const zstd = codecs[CompressionTypes.ZSTD]() as Codec;
    const frame = fs.readFileSync(path.join(fixtures, 'reference-zstd-stream.zst'));
    assert.deepEqual(await zstd.decompress(frame), fixtureText());
    await assert.rejects(
      zstd.compress({ buffer: data }),
      /zstd compression is not available .*use gzip, snappy or lz4/,
    );
  });
});
