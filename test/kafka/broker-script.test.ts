// The local broker script: running `start` again is harmless, the broker log shows a real Apache Kafka 4.x, its
// TLS listeners present the test CA's certificate, and a machine without Java gets one clear line naming the
// alternatives.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { kafkaBrokers, projectRoot } from '../support/env';

const script = path.join(projectRoot, 'scripts', 'kafka.mjs');
const usingLocalBroker = fs.existsSync(path.join(projectRoot, '.cache', 'kafka', 'run', 'state.json'));

test('start again reuses the running broker', { skip: !usingLocalBroker && 'KAFKA_BROKERS points elsewhere' }, () => {
  const again = spawnSync(process.execPath, [script, 'start'], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout.trim(), `KAFKA_BROKERS=${kafkaBrokers().join(',')}`);
  assert.match(again.stderr, /already running/);
  const status = spawnSync(process.execPath, [script, 'status'], { encoding: 'utf8' });
  assert.equal(status.status, 0);
  assert.match(status.stdout, /^running: KAFKA_BROKERS=/);
});

test('the broker log shows Apache Kafka 4.x', { skip: !usingLocalBroker && 'KAFKA_BROKERS points elsewhere' }, () => {
  const log = fs.readFileSync(path.join(projectRoot, '.cache', 'kafka', 'run', 'broker.log'), 'utf8');
  assert.match(log, /Kafka version: 4\.\d+\.\d+/);
  assert.match(log, /Kafka Server started/);
});

/** Completes a TLS handshake with the broker and says whether its certificate was trusted. */
function handshake(address: string, options: tls.ConnectionOptions): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port: Number(port), ...options }, () => {
      resolve(socket.authorized);
      socket.end();
    });
    socket.once('error', reject);
  });
}

test('the state names TLS and mutual-TLS listeners signed by the test CA', async (t) => {
  if (!usingLocalBroker) return t.skip('KAFKA_BROKERS points elsewhere');
  const state = JSON.parse(fs.readFileSync(path.join(projectRoot, '.cache', 'kafka', 'run', 'state.json'), 'utf8'));
  if (!state.tlsBrokers)
    return t.skip('the local broker has no TLS listeners (openssl missing, or started by an older script)');
  const ca = fs.readFileSync(state.tls.ca, 'utf8');
  assert.equal(await handshake(state.tlsBrokers, { ca }), true);
  const client = { ca, cert: fs.readFileSync(state.tls.cert), key: fs.readFileSync(state.tls.key) };
  assert.equal(await handshake(state.mtlsBrokers, client), true);
  // The certificate is for 127.0.0.1 and localhost alike.
  assert.equal(await handshake(state.tlsBrokers, { ca, servername: 'localhost' }), true);
});

test('without Java, start says so in one line and names the alternatives', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-nojava-'));
  const result = spawnSync(process.execPath, [script, 'start'], {
    encoding: 'utf8',
    env: { ...process.env, JAVA_HOME: path.join(cache, 'no-java-here'), STREAM_ML_CACHE: cache },
  });
  fs.rmSync(cache, { recursive: true, force: true });
  assert.equal(result.status, 1);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0], /Java 17 or newer/);
  assert.match(lines[0], /KAFKA_BROKERS/);
  assert.match(lines[0], /docker-compose\.yml/);
});
