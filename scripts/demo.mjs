#!/usr/bin/env node
// The Shuttle demo (`npm run demo`, `npm start`): builds if needed, finds or starts a Kafka broker, creates the
// topics, starts Node-RED with this package, the Dashboard and the Kafka example flow, replays the Shuttle records
// into topic shuttle-sensor and reads the predictions back from shuttle-sensor-preds. Ctrl-C stops all it started.
//
//   npm run demo                      runs until Ctrl-C
//   npm run demo -- --once            exits once the replay is done and its predictions are read (tests use it)
//   npm run demo -- --no-replay       no replay from here: for an example flow that replays the data itself
//   npm run demo -- --no-broker       the example without a broker, even where Kafka could run
//
// Environment: KAFKA_BROKERS (else a local broker, scripts/kafka.mjs), PORT (1880; 0 picks a free one),
// DEMO_RATE (records/s, 500), DEMO_LIMIT (records to replay, all 49,097), DEMO_EXIT_AFTER_REPLAY=1 (as --once),
// DEMO_PREDICTIONS_TIMEOUT (seconds to wait for predictions after the replay, 60), DEMO_CONSUMER_WAIT (seconds to
// wait for the flow's consumer to join before the replay, 30), DEMO_USER_DIR (the Node-RED user folder,
// .node-red-demo), SHUTTLE_DATA_DIR (see scripts/shuttle-data.mjs).
/* global fetch */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readShuttleRecords, shuttleCsvPath } from './shuttle-data.mjs';

const startedAt = Date.now();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
for (const arg of args) {
  if (!['--once', '--no-replay', '--no-broker'].includes(arg)) {
    console.error(`unknown option ${arg}; usage: node scripts/demo.mjs [--once] [--no-replay] [--no-broker]`);
    process.exit(2);
  }
}
const env = process.env;
const once = args.has('--once') || env.DEMO_EXIT_AFTER_REPLAY === '1';
const replayHere = !args.has('--no-replay');
const withoutBroker = args.has('--no-broker') || env.DEMO_NO_BROKER === '1';
const port = Number(env.PORT ?? 1880);
const rate = Number(env.DEMO_RATE ?? 500);
const limit = env.DEMO_LIMIT ? Number(env.DEMO_LIMIT) : Infinity;
const predictionsTimeoutMs = Number(env.DEMO_PREDICTIONS_TIMEOUT ?? 60) * 1000;
const consumerWaitMs = Number(env.DEMO_CONSUMER_WAIT ?? 30) * 1000;
const userDir = path.resolve(env.DEMO_USER_DIR ?? path.join(root, '.node-red-demo'));
const SENSOR_TOPIC = 'shuttle-sensor';
const PREDS_TOPIC = 'shuttle-sensor-preds';
const KAFKA_EXAMPLE = 'Shuttle anomaly detection with Kafka';
const LOCAL_EXAMPLE = 'Shuttle anomaly detection without a broker';

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const count = (n) => n.toLocaleString('en-US');
const say = (line) => console.log(`[demo] ${line}`);
const shown = (p) => (path.relative(process.cwd(), p).startsWith('..') ? p : path.relative(process.cwd(), p) || p);

// ---- build when dist/ is missing or older than the sources ----
function newestMtime(p) {
  if (!fs.existsSync(p)) return 0;
  const stat = fs.statSync(p);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...fs.readdirSync(p).map((f) => newestMtime(path.join(p, f))));
}

function ensureBuilt() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const outputs = [
    ...Object.values(pkg['node-red'].nodes).map((f) => path.join(root, f)),
    path.join(root, 'dist', 'test', 'support', 'node-red-embedded.js'),
  ];
  const sources = ['src', 'nodes', 'test/support', 'package.json', 'tsconfig.json'].map((p) => path.join(root, p));
  const newestSource = Math.max(...sources.map(newestMtime));
  const built = outputs.every((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs >= newestSource);
  if (built) return;
  say('building (dist/ is missing or older than the sources)');
  const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('the build failed');
}

// ---- everything started here, stopped in reverse on Ctrl-C or at the end ----
const cleanups = [];
let stopping;
function stopAll(code) {
  if (!stopping) {
    stopping = (async () => {
      // Bounded: a broker that will not stop must not keep the terminal.
      const force = setTimeout(() => {
        console.error('[demo] stopping took too long; exiting');
        process.exit(code || 1);
      }, 45_000);
      force.unref();
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          console.error(`[demo] while stopping: ${error.message}`);
        }
      }
      clearTimeout(force);
      process.exit(code);
    })();
  }
  return stopping;
}
let interrupted = 0;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted += 1;
    if (interrupted > 1) process.exit(130);
    say(`${signal}: stopping (again to force)`);
    stopAll(signal === 'SIGINT' ? 130 : 143);
  });
}

function loadExample(name) {
  const file = path.join(root, 'examples', `${name}.json`);
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// The header and the first `n` records of the CSV, in the user folder, for a flow that reads the file itself.
function writeFirstRecords(csv, n) {
  const lines = fs.readFileSync(csv, 'utf8').split('\n');
  const file = path.join(userDir, `shuttle-first-${n}.csv`);
  fs.writeFileSync(file, lines.slice(0, n + 1).join('\n') + '\n');
  return file;
}

// ROC-AUC by ranks (ties share their mean rank); undefined unless both classes are present.
function rocAuc(pairs) {
  const sorted = [...pairs].sort((a, b) => a.score - b.score);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j < sorted.length && sorted[j].score === sorted[i].score) j++;
    const meanRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (sorted[k].label === 1) {
        positives++;
        rankSum += meanRank;
      }
    }
    i = j;
  }
  const negatives = sorted.length - positives;
  if (positives === 0 || negatives === 0) return undefined;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

// A prediction's score and true label, wherever the flow put them; undefined when the shape is unknown.
function scoreAndLabel(value) {
  const score = value?.anomaly?.score ?? value?.score;
  const label = value?.outlier ?? value?.payload?.outlier ?? value?.label;
  return typeof score === 'number' && (label === 0 || label === 1) ? { score, label } : undefined;
}

// The consumer group (other than ours) with a member subscribed to `topic`, once one is there; undefined after
// `timeoutMs`. Replaying before the flow's consumer has joined would lose the first records to a "latest" start.
async function waitForConsumer(kafkajs, admin, topic, ownGroup, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !stopping) {
    const { groups } = await admin.listGroups();
    const ids = groups.filter((g) => g.groupId !== ownGroup && g.protocolType === 'consumer').map((g) => g.groupId);
    if (ids.length > 0) {
      const described = await admin.describeGroups(ids);
      for (const group of described.groups) {
        if (group.state !== 'Stable') continue;
        for (const member of group.members) {
          const { topics } = kafkajs.AssignerProtocol.MemberMetadata.decode(member.memberMetadata) ?? {};
          if (topics?.includes(topic)) return group.groupId;
        }
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return undefined;
}

async function main() {
  ensureBuilt();
  const { startNodeRed, errorsOf } = await import('../dist/test/support/node-red-embedded.js');

  const csv = await shuttleCsvPath({ log: say });
  const records = readShuttleRecords(csv).slice(0, limit);
  say(`Shuttle data: ${shown(csv)} (${count(records.length)} records to replay)`);

  // ---- the broker ----
  let brokers = withoutBroker ? undefined : env.KAFKA_BROKERS;
  let noBroker;
  if (withoutBroker) noBroker = '--no-broker asked for the example without a broker';
  else if (brokers) say(`Kafka: KAFKA_BROKERS=${brokers}`);
  else {
    say('Kafka: KAFKA_BROKERS is not set, starting the local broker (scripts/kafka.mjs; Java 17+ and Maven)');
    try {
      const { startKafka, stopKafka, kafkaStatus } = await import('./kafka.mjs');
      // Registered before the start, so that Ctrl-C during the start stops the half-started broker too; a
      // broker that was already running (`npm run kafka:start`) is left running.
      if (!kafkaStatus()) cleanups.push(() => stopKafka());
      const state = await startKafka();
      brokers = state.brokers;
    } catch (error) {
      noBroker = error.message;
    }
  }

  // ---- the flow ----
  let flows;
  let exampleName;
  if (brokers) {
    exampleName = KAFKA_EXAMPLE;
    flows = loadExample(exampleName);
    if (!flows) throw new Error(`examples/${exampleName}.json is missing`);
    for (const node of flows) if (node.type === 'stream-ml-kafka-broker') node.brokers = brokers;
  } else {
    say(withoutBroker ? noBroker : `no Kafka broker and no way to start one: ${noBroker}`);
    exampleName = LOCAL_EXAMPLE;
    flows = loadExample(exampleName);
    if (!flows) {
      say(
        `the example "${LOCAL_EXAMPLE}" (examples/${LOCAL_EXAMPLE}.json), which runs without a broker, is not in ` +
          'this version yet. Set KAFKA_BROKERS=host:port, or install Java 17+ and Maven, and run the demo again.',
      );
      return stopAll(1);
    }
    say(`running the example "${LOCAL_EXAMPLE}" instead: the same models, with no Kafka in between`);
  }
  // Flows can read these with ${…} in node properties (the example without a broker reads SHUTTLE_CSV). With
  // DEMO_LIMIT, the flow gets a CSV of that many records too.
  fs.mkdirSync(userDir, { recursive: true });
  env.SHUTTLE_CSV = Number.isFinite(limit) ? writeFirstRecords(csv, records.length) : csv;
  if (brokers) env.KAFKA_BROKERS = brokers;
  // The flow's own pacing (a delay node in rate mode) follows DEMO_RATE.
  if (env.DEMO_RATE) {
    for (const node of flows) {
      if (node.type !== 'delay' || node.pauseType !== 'rate') continue;
      Object.assign(node, { rate: String(rate), nbRateUnits: '1', rateUnits: 'second' });
      if (/records\/s/.test(node.name ?? '')) node.name = `${count(rate)} records/s`;
    }
  }

  // ---- topics, and a reader of the predictions that is in the group before anything is written ----
  let kafka;
  let kafkajs;
  let admin;
  let watchGroup;
  const predictions = { count: 0, first: undefined, last: 0, pairs: [] };
  if (brokers) {
    kafkajs = (await import('kafkajs')).default;
    kafka = new kafkajs.Kafka({
      clientId: 'stream-ml-demo',
      brokers: brokers.split(','),
      // Retriable errors while the group coordinator starts are noise here; real failures throw.
      logLevel: kafkajs.logLevel.NOTHING,
    });
    admin = kafka.admin();
    try {
      await admin.connect();
    } catch (error) {
      throw new Error(`cannot reach Kafka at ${brokers}: ${error.message}`);
    }
    cleanups.push(() => admin.disconnect());
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [SENSOR_TOPIC, PREDS_TOPIC].map((topic) => ({ topic, numPartitions: 1 })),
    });
    say(`topics ${SENSOR_TOPIC} and ${PREDS_TOPIC}: ${created ? 'created' : 'already there'}`);

    watchGroup = `stream-ml-demo-watch-${process.pid}-${startedAt}`;
    const watcher = kafka.consumer({ groupId: watchGroup });
    await watcher.connect();
    cleanups.push(() => watcher.disconnect());
    await watcher.subscribe({ topic: PREDS_TOPIC, fromBeginning: false });
    const joined = new Promise((resolve) => watcher.on(watcher.events.GROUP_JOIN, resolve));
    await watcher.run({
      eachMessage: async ({ message }) => {
        predictions.count++;
        predictions.last = Date.now();
        if (predictions.first === undefined) {
          predictions.first = predictions.last;
          say(
            `first prediction read from ${PREDS_TOPIC} ${seconds(predictions.first - startedAt)} after the start ` +
              '(time to the first chart point)',
          );
        }
        try {
          const pair = scoreAndLabel(JSON.parse(message.value.toString('utf8')));
          if (pair) predictions.pairs.push(pair);
        } catch {
          // Not JSON: counted, not scored.
        }
      },
    });
    await Promise.race([joined, new Promise((r) => setTimeout(r, 30_000))]);
  }

  // ---- Node-RED ----
  let nodeRed;
  try {
    nodeRed = await startNodeRed({ userDir, port, flows, logLevel: env.DEMO_LOG_LEVEL ?? 'warn' });
  } catch (error) {
    if (error.code !== 'EADDRINUSE') throw error;
    say(`port ${port} is in use: set PORT to another one (PORT=0 picks a free one)`);
    return stopAll(1);
  }
  cleanups.push(() => nodeRed.stop());
  const hasDashboard = flows.some((node) => node.type === 'ui-base');
  say(`Node-RED is up ${seconds(Date.now() - startedAt)} after the start`);
  say(
    `Node-RED ${nodeRed.version} is running the example "${exampleName}"` +
      `${brokers ? ` on Kafka ${brokers}` : ''} (user folder ${shown(userDir)})`,
  );
  say(`  editor:    ${nodeRed.url}`);
  say(`  dashboard: ${nodeRed.url}dashboard${hasDashboard ? '' : '   (this example has no dashboard nodes yet)'}`);
  say(`  flows:     ${shown(path.join(userDir, 'flows.json'))} (rewritten from the example at every start)`);

  // ---- the replay: the flow's own replay button when it has one, else from here ----
  let sent = 0;
  const button = flows.find((node) => node.type === 'inject' && /replay/i.test(node.name ?? ''));
  let followFlow;
  if (brokers && replayHere && button) {
    await pressButton(nodeRed, button);
    say(
      `replaying ${count(records.length)} records through the flow into ${SENSOR_TOPIC}: pressed its "${button.name}" button`,
    );
    sent = records.length;
    followFlow = followPredictions(predictions, sent);
  } else if (brokers && replayHere) {
    const waitStart = Date.now();
    const group = await waitForConsumer(kafkajs, admin, SENSOR_TOPIC, watchGroup, consumerWaitMs);
    if (stopping) return stopping;
    say(
      group
        ? `the flow's consumer is reading ${SENSOR_TOPIC} (group ${group}, joined after ${seconds(Date.now() - waitStart)})`
        : `no consumer of ${SENSOR_TOPIC} joined within ${seconds(consumerWaitMs)}; replaying anyway`,
    );
    const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
    await producer.connect();
    // On Ctrl-C the replay loop stops after its current send; disconnecting under that send would fail it.
    let sending = Promise.resolve();
    cleanups.push(async () => {
      await sending.catch(() => undefined);
      await producer.disconnect();
    });
    say(`replaying ${count(records.length)} records into ${SENSOR_TOPIC} at ${count(rate)} records/s`);
    const replayStart = Date.now();
    let lastReport = replayStart;
    const progress = () => {
      const elapsed = (Date.now() - replayStart) / 1000;
      const share = Math.round((100 * sent) / records.length);
      console.log(
        `[replay] ${count(sent)} / ${count(records.length)} records (${share} %), ` +
          `${count(Math.round(sent / Math.max(elapsed, 0.001)))} records/s, ` +
          `${count(predictions.count)} predictions read`,
      );
    };
    while (sent < records.length && !stopping) {
      const due = Math.min(records.length, Math.floor(((Date.now() - replayStart) / 1000) * rate) + 1);
      if (due > sent) {
        const batch = records.slice(sent, Math.min(due, sent + 5000));
        sending = producer.send({
          topic: SENSOR_TOPIC,
          messages: batch.map((record) => ({ value: JSON.stringify(record) })),
        });
        await sending;
        sent += batch.length;
      }
      if (Date.now() - lastReport >= 5000) {
        lastReport = Date.now();
        progress();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (stopping) return stopping;
    progress();
    say(`replay done: ${count(sent)} records in ${seconds(Date.now() - replayStart)}`);
  } else if (brokers) {
    say('--no-replay: the flow replays the data itself');
  } else {
    return runWithoutBroker(nodeRed, flows, records.length, errorsOf);
  }

  if (!once) {
    say('Node-RED keeps running; Ctrl-C stops it and everything the demo started');
    await followFlow;
    return undefined;
  }

  // ---- --once: wait for the predictions, then report and stop ----
  const waitStart = Date.now();
  for (;;) {
    if (stopping) return stopping;
    const now = Date.now();
    if (replayHere && predictions.count >= sent) break;
    if (predictions.count > 0 && now - Math.max(predictions.last, waitStart) > 10_000) break;
    if (predictions.count === 0 && now - waitStart > predictionsTimeoutMs) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const auc = rocAuc(predictions.pairs);
  say(
    `predictions read from ${PREDS_TOPIC}: ${count(predictions.count)}` +
      (replayHere ? ` for ${count(sent)} records replayed` : '') +
      (auc === undefined ? '' : `; ROC-AUC ${auc.toFixed(4)} over ${count(predictions.pairs.length)} scored`),
  );
  const errors = errorsOf(nodeRed.problems);
  for (const error of errors) say(`Node-RED error: ${error}`);
  if (predictions.count === 0) {
    say(
      `no prediction arrived in ${PREDS_TOPIC} within ${seconds(predictionsTimeoutMs)} of the replay's end: ` +
        'the flow did not produce any (see the Node-RED log above)',
    );
  }
  say(`done in ${seconds(Date.now() - startedAt)}`);
  return stopAll(predictions.count > 0 ? 0 : 1);
}

async function pressButton(nodeRed, button) {
  const response = await fetch(`${nodeRed.url}inject/${button.id}`, { method: 'POST' });
  if (!response.ok) throw new Error(`pressing "${button.name}" failed: HTTP ${response.status}`);
}

// Progress of a replay the flow runs itself, counted in predictions read back, every 5 s until all are in.
async function followPredictions(predictions, total) {
  const start = Date.now();
  let lastReport = start;
  let done = false;
  while (!stopping && !done) {
    done = predictions.count >= total;
    if (done || Date.now() - lastReport >= 5000) {
      lastReport = Date.now();
      const rate = predictions.count / Math.max((Date.now() - start) / 1000, 0.001);
      console.log(
        `[replay] ${count(predictions.count)} / ${count(total)} predictions read ` +
          `(${Math.round((100 * predictions.count) / total)} %), ${count(Math.round(rate))} records/s`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// Without a broker the flow reads the CSV itself: press its replay button (an inject node named "replay…"),
// then follow the model through the learner's admin route until every record is learned.
async function runWithoutBroker(nodeRed, flows, total, errorsOf) {
  const button = flows.find((node) => node.type === 'inject' && /replay/i.test(node.name ?? ''));
  if (replayHere && button) {
    await pressButton(nodeRed, button);
    say(`replaying ${count(total)} records through the flow: pressed its "${button.name}" button`);
  } else {
    say('the flow replays the data itself');
  }
  const replayStart = Date.now();
  let firstAt;
  let learned = 0;
  let lastChange = Date.now();
  let lastReport = Date.now();
  let summary;
  const report = () => {
    const elapsed = (Date.now() - replayStart) / 1000;
    const auc = summary?.evaluation?.rocAuc;
    console.log(
      `[replay] ${count(learned)} / ${count(total)} records scored and learned ` +
        `(${Math.round((100 * learned) / total)} %), ${count(Math.round(learned / Math.max(elapsed, 0.001)))} records/s` +
        (Number.isFinite(auc) ? `, ROC-AUC ${auc.toFixed(4)}` : ''),
    );
  };
  while (!stopping) {
    let models;
    try {
      const response = await fetch(`${nodeRed.url}stream-ml/models`, { headers: { Accept: 'application/json' } });
      models = response.ok ? await response.json() : undefined;
    } catch {
      models = undefined;
    }
    summary = models?.find((m) => m.name === 'shuttle') ?? models?.[0];
    if (summary && summary.recordsLearned !== learned) {
      learned = summary.recordsLearned;
      lastChange = Date.now();
    }
    if (firstAt === undefined && (learned > 0 || summary?.recentScores?.length > 0)) {
      firstAt = Date.now();
      say(`first record scored ${seconds(firstAt - startedAt)} after the start (time to the first chart point)`);
    }
    if (Date.now() - lastReport >= 5000) {
      lastReport = Date.now();
      report();
    }
    if (learned >= total) break;
    if (once && Date.now() - lastChange > predictionsTimeoutMs) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (stopping) return stopping;
  report();
  if (learned >= total) say(`replay done: ${count(learned)} records in ${seconds(Date.now() - replayStart)}`);
  if (!once) {
    say('Node-RED keeps running; Ctrl-C stops it');
    return undefined;
  }
  const errors = errorsOf(nodeRed.problems);
  for (const error of errors) say(`Node-RED error: ${error}`);
  const evaluation = summary?.evaluation;
  say(
    `model ${summary?.name ?? '(none)'} learned ${count(learned)} of ${count(total)} records` +
      (evaluation
        ? `; ROC-AUC ${evaluation.rocAuc.toFixed(4)}, average precision ${evaluation.averagePrecision.toFixed(4)}`
        : ''),
  );
  say(`done in ${seconds(Date.now() - startedAt)}`);
  return stopAll(learned >= total && errors.length === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(`[demo] ${env.DEBUG ? error.stack : error.message}`);
  stopAll(1);
});
