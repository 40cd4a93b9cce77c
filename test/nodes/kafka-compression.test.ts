// Compressed batches on a real broker: snappy and lz4 written by the producer node (the broker validates compressed
// batches, so it checks our frames too); batches the broker itself recompressed (topic compression.type); and,
// the case users hit, batches the Java client writes with gzip, snappy, lz4 and zstd, all read by the consumer
// node without a malformed record or a restart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import helper from 'node-red-node-test-helper';
import { registerCompressionCodecs } from '../../src/kafka/compression';
import { javaSkipReason, runJava } from '../kafka/java';
import {
  brokerNode,
  brokers,
  collect,
  flowNode,
  loadFlow,
  logged,
  produceRaw,
  uniqueName,
  useTestRuntime,
  waitFor,
  withAdmin,
} from '../kafka/support';

useTestRuntime();

async function topicWithCompression(type: string): Promise<string> {
  const topic = uniqueName(`compressed-${type}`);
  await withAdmin((admin) =>
    admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'compression.type', value: type }] }],
      waitForLeaders: true,
    }),
  );
  return topic;
}

// The records test/kafka/java/CompressedProducer.java writes, too.
function records(count: number): { i: number; text: string }[] {
  return Array.from({ length: count }, (_, i) => ({ i, text: `reading ${i % 10} `.repeat(10) }));
}

function consumerFlow(topic: string) {
  return [
    brokerNode(),
    {
      id: 'consumer',
      type: 'stream-ml-kafka-consumer',
      broker: 'broker',
      topics: topic,
      fromBeginning: 'earliest',
      valueEncoding: 'json',
      wires: [['out']],
    },
    { id: 'out', type: 'helper' },
  ];
}

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** Counts kafkajs's calls of one codec, so a test knows batches really were (de)compressed with it. */
function countCodecCalls(type: CompressionTypes): { compress: number; decompress: number; restore(): void } {
  registerCompressionCodecs();
  const codecs = CompressionCodecs as unknown as Record<number, () => Codec>;
  const factory = codecs[type];
  const inner = factory();
  const counts = {
    compress: 0,
    decompress: 0,
    restore: () => {
      codecs[type] = factory;
    },
  };
  const counting: Codec = {
    compress: (encoder) => {
      counts.compress++;
      return inner.compress(encoder);
    },
    decompress: (buffer) => {
      counts.decompress++;
      return inner.decompress(buffer);
    },
  };
  codecs[type] = () => counting;
  return counts;
}

/** Reads the topic with the consumer node; fails on any warning or error it logs (a malformed record, a restart). */
async function consumeAll(topic: string, count: number): Promise<{ payload: unknown; key: unknown }[]> {
  await loadFlow(consumerFlow(topic));
  const out = collect<{ payload: unknown; key: unknown }>('out');
  try {
    await waitFor(`${count} records`, () => out.length >= count, 60_000);
    await new Promise((r) => setTimeout(r, 300)); // room for a duplicate or a late warning to show
    assert.deepEqual(logged('consumer', 'warn'), []);
    assert.deepEqual(logged('consumer', 'error'), []);
  } finally {
    await helper.unload();
  }
  return out;
}

for (const [compression, type] of [
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
] as const) {
  test(`${compression} batches from the producer node round-trip through the broker`, async () => {
    const topic = await topicWithCompression('producer'); // the broker keeps the producer's compression
    const expected = records(3000); // ~190 bytes each, 500 to a batch: LZ4 frames with a full 64 KiB block
    const calls = countCodecCalls(type);
    try {
      await loadFlow([
        ...consumerFlow(topic),
        { id: 'producer', type: 'stream-ml-kafka-producer', broker: 'broker', topic, compression, lingerMs: 20 },
      ]);
      const out = collect<{ payload: unknown }>('out');
      for (const payload of expected) flowNode('producer').receive({ payload });
      await waitFor('every record', () => out.length >= expected.length, 60_000);
      await helper.unload();
      assert.deepEqual(
        out.map((m) => m.payload),
        expected,
      );
      assert.ok(calls.compress > 0, `the producer wrote ${compression} batches`);
      assert.ok(calls.decompress > 0, `the consumer read ${compression} batches`);
    } finally {
      calls.restore();
    }
  });
}

for (const type of ['gzip', 'snappy', 'lz4', 'zstd']) {
  test(`batches the broker recompressed with Java's ${type} are read`, async () => {
    const topic = await topicWithCompression(type);
    const expected = records(300);
    await produceRaw(
      topic,
      expected.map((r) => ({ value: JSON.stringify(r) })),
    );
    const out = await consumeAll(topic, expected.length);
    assert.deepEqual(
      out.map((m) => m.payload),
      expected,
    );
  });
}

// ---- batches written by the Java client ----

const JAVA_CODEC_TYPES: Record<string, CompressionTypes> = {
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

for (const [compression, type] of Object.entries(JAVA_CODEC_TYPES)) {
  test(
    `batches the Java client wrote with compression.type=${compression} are read`,
    { skip: javaSkipReason },
    async () => {
      const topic = await topicWithCompression('producer');
      const count = 2000; // ~400 KB in 256 KiB batches: LZ4 frames of several blocks
      await runJava('CompressedProducer', [brokers(), topic, compression, String(count)]);
      const calls = countCodecCalls(type);
      try {
        const out = await consumeAll(topic, count);
        assert.deepEqual(
          out.map((m) => m.payload),
          records(count),
        );
        assert.deepEqual(
          out.map((m) => m.key),
          records(count).map((r) => `k${r.i}`),
        );
        assert.ok(calls.decompress > 0, `the batches were ${compression}-compressed`);
      } finally {
        calls.restore();
      }
    },
  );
}
