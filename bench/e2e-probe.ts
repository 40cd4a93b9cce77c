// Counters for `npm run bench:e2e -- --probe`, preloaded into the Node-RED process (node -r) so that nothing in the
// package changes: it wraps the kafkajs client the package loads and times what the pipeline waits on:
//   - the producer's sendBatch calls (records each, time to the acknowledgement, sends under way at once);
//   - the consumer's eachBatch calls (records each, time inside: handing out records and waiting for the in-flight
//     window, whose every wait ends in a heartbeat, counted), and the fetch time between them;
//   - commitOffsets calls; garbage collection (perf_hooks); the event loop's utilisation;
//   - through Node-RED's onReceive hook, the age of each message as it reaches each node type: now minus the input
//     record's Kafka timestamp (msg.kafka.timestamp, or the first of a batch's), meaningful under the fixed load.
// Written as JSON every second to the file STREAM_ML_E2E_PROBE names (the benchmark ends the process with SIGKILL);
// SIGWINCH starts the figures afresh: the benchmark sends it when its measurement starts (Node-RED takes SIGUSR2
// as a request to stop; SIGWINCH is ignored by a process without this probe).
import fs from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { Kafka, type Consumer, type ConsumerRunConfig, type EachBatchPayload, type Producer } from 'kafkajs';

const file = process.env.STREAM_ML_E2E_PROBE;

class Durations {
  readonly values: number[] = [];
  total = 0;
  add(ms: number): void {
    this.values.push(ms);
    this.total += ms;
  }
  summary(): Record<string, number> {
    const s = [...this.values].sort((a, b) => a - b);
    const at = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
    const round = (x: number): number => Math.round(x * 100) / 100;
    return {
      count: s.length,
      totalMs: Math.round(this.total),
      meanMs: round(s.length ? this.total / s.length : 0),
      p50Ms: round(at(0.5)),
      p90Ms: round(at(0.9)),
      p99Ms: round(at(0.99)),
      maxMs: round(s[s.length - 1] ?? 0),
    };
  }
}

const fresh = () => ({
  sendBatch: new Durations(),
  recordsPerSend: new Durations(),
  /** From one acknowledgement to the next send: linger, and waiting for records. */
  betweenSends: new Durations(),
  mostSendsUnderWay: 0,
  eachBatch: new Durations(),
  recordsPerBatch: new Durations(),
  /** From the end of one eachBatch to the start of the next: kafkajs fetching. */
  betweenBatches: new Durations(),
  windowWaits: 0,
  commit: new Durations(),
  gc: new Durations(),
  gcByKind: {} as Record<string, number>,
  /** Per node type: how old the input record is when its message reaches that node. */
  ageAtNode: {} as Record<string, Durations>,
  firstSendAt: 0,
  lastSendAt: 0,
  /** The event loop's figures at the first send: utilisation is reported from then on. */
  loopAtFirstSend: undefined as ReturnType<typeof performance.eventLoopUtilization> | undefined,
});
let probe = fresh();
let sendsUnderWay = 0;

function wrapProducer(producer: Producer): Producer {
  const sendBatch = producer.sendBatch.bind(producer);
  let lastAck = 0;
  producer.sendBatch = async (batch) => {
    const start = performance.now();
    if (probe.firstSendAt === 0) {
      probe.firstSendAt = start;
      probe.loopAtFirstSend = performance.eventLoopUtilization();
    }
    if (lastAck > 0) probe.betweenSends.add(start - lastAck);
    probe.recordsPerSend.add(batch.topicMessages?.reduce((n, t) => n + t.messages.length, 0) ?? 0);
    probe.mostSendsUnderWay = Math.max(probe.mostSendsUnderWay, ++sendsUnderWay);
    try {
      return await sendBatch(batch);
    } finally {
      sendsUnderWay--;
      lastAck = performance.now();
      probe.lastSendAt = lastAck;
      probe.sendBatch.add(lastAck - start);
    }
  };
  return producer;
}

function wrapConsumer(consumer: Consumer): Consumer {
  const run = consumer.run.bind(consumer);
  const commitOffsets = consumer.commitOffsets.bind(consumer);
  let lastEnd = 0;
  consumer.run = (config?: ConsumerRunConfig) => {
    const eachBatch = config?.eachBatch;
    if (!config || !eachBatch) return run(config);
    return run({
      ...config,
      eachBatch: async (payload: EachBatchPayload) => {
        const start = performance.now();
        if (lastEnd > 0) probe.betweenBatches.add(start - lastEnd);
        probe.recordsPerBatch.add(payload.batch.messages.length);
        const heartbeat = payload.heartbeat;
        const counted = {
          ...payload,
          heartbeat: () => {
            probe.windowWaits++;
            return heartbeat();
          },
        };
        try {
          return await eachBatch(counted);
        } finally {
          lastEnd = performance.now();
          probe.eachBatch.add(lastEnd - start);
        }
      },
    });
  };
  consumer.commitOffsets = async (offsets) => {
    const start = performance.now();
    try {
      return await commitOffsets(offsets);
    } finally {
      probe.commit.add(performance.now() - start);
    }
  };
  return consumer;
}

if (file) {
  const proto = Kafka.prototype as unknown as {
    producer: (...a: unknown[]) => Producer;
    consumer: (...a: unknown[]) => Consumer;
  };
  const producer = proto.producer;
  const consumer = proto.consumer;
  proto.producer = function (this: Kafka, ...a: unknown[]) {
    return wrapProducer(producer.apply(this, a));
  };
  proto.consumer = function (this: Kafka, ...a: unknown[]) {
    return wrapConsumer(consumer.apply(this, a));
  };
  // The hooks Node-RED's runtime uses: one module, loaded here first.
  const { hooks } = require('@node-red/util') as { hooks: { add(name: string, fn: (event: unknown) => void): void } };
  hooks.add('onReceive.streamMlE2eProbe', (event) => {
    const e = event as {
      msg?: { kafka?: { timestamp?: number; timestamps?: number[] } };
      destination?: { node?: { type?: string } };
    };
    const ts = e.msg?.kafka?.timestamp ?? e.msg?.kafka?.timestamps?.[0];
    const type = e.destination?.node?.type;
    if (typeof ts === 'number' && type) (probe.ageAtNode[type] ??= new Durations()).add(Date.now() - ts);
  });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      probe.gc.add(entry.duration);
      const kind = String((entry as { detail?: { kind?: number } }).detail?.kind ?? 'unknown');
      probe.gcByKind[kind] = (probe.gcByKind[kind] ?? 0) + entry.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const write = (): void => {
    if (!probe.loopAtFirstSend) return;
    const loop = performance.eventLoopUtilization(probe.loopAtFirstSend);
    const out = {
      sendingSeconds: (probe.lastSendAt - probe.firstSendAt) / 1000,
      eventLoopUtilization: Math.round(loop.utilization * 1000) / 1000,
      sendBatch: probe.sendBatch.summary(),
      recordsPerSend: probe.recordsPerSend.summary(),
      betweenSends: probe.betweenSends.summary(),
      mostSendsUnderWay: probe.mostSendsUnderWay,
      eachBatch: probe.eachBatch.summary(),
      recordsPerBatch: probe.recordsPerBatch.summary(),
      betweenBatches: probe.betweenBatches.summary(),
      windowWaits: probe.windowWaits,
      commit: probe.commit.summary(),
      gc: probe.gc.summary(),
      ageAtNode: Object.fromEntries(Object.entries(probe.ageAtNode).map(([type, d]) => [type, d.summary()])),
      gcMsByKind: Object.fromEntries(Object.entries(probe.gcByKind).map(([k, v]) => [k, Math.round(v)])),
    };
    fs.writeFileSync(file, JSON.stringify(out, null, 2));
  };
  setInterval(write, 1000).unref();
  process.on('SIGWINCH', () => {
    probe = fresh();
    probe.loopAtFirstSend = performance.eventLoopUtilization();
    probe.firstSendAt = performance.now();
  });
}
