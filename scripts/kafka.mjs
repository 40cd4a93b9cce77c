#!/usr/bin/env node
// Starts and stops a real one-node Apache Kafka 4.x broker (KRaft, broker+controller) for tests and the demo.
// The broker jars come from Maven Central through `mvn` into .cache/kafka; nothing else is downloaded.
//
//   node scripts/kafka.mjs start    prints KAFKA_BROKERS=127.0.0.1:<port>
//   node scripts/kafka.mjs stop
//   node scripts/kafka.mjs status
//   node scripts/kafka.mjs suspend|resume   kill the broker, then start it again on the same ports and data
//
// Besides the PLAINTEXT listener it opens a SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)
// with the test users below, so the SASL options of the broker config node can be tested for real, and two SSL
// listeners: TLS (server certificate only) and MTLS (a client certificate is required). Their throwaway test CA,
// server and client certificates are made once with `openssl` and kept in .cache/kafka/run/tls; without openssl
// the broker starts without the SSL listeners.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  findJava as findLocalJava,
  freePort,
  isAlive,
  readState as readStateFile,
  requireMaven,
  stopProcess,
  tail,
} from './local-service.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const KAFKA_VERSION = '4.1.1';
const cacheDir = process.env.STREAM_ML_CACHE ?? path.join(root, '.cache');
const libDir = path.join(cacheDir, 'kafka', `libs-${KAFKA_VERSION}`);
const runDir = path.join(cacheDir, 'kafka', 'run');
const stateFile = path.join(runDir, 'state.json');
export const brokerLogFile = path.join(runDir, 'broker.log');

export const SASL_USERS = {
  plain: { username: 'plain-user', password: 'plain-secret' },
  scram: { username: 'scram-user', password: 'scram-secret' },
};

const ALTERNATIVES =
  'Alternatives: set KAFKA_BROKERS=host:port to use an existing cluster, or run `docker compose up -d` with the docker-compose.yml in this project where Docker is available.';

class KafkaSetupError extends Error {}

const setupError = (reason) => new KafkaSetupError(`${reason} ${ALTERNATIVES}`);
const findJava = () => findLocalJava('the local Kafka broker', setupError);
const readState = () => readStateFile(stateFile);

function resolveJars() {
  if (fs.existsSync(path.join(libDir, `kafka_2.13-${KAFKA_VERSION}.jar`))) return;
  requireMaven(`fetch the Kafka ${KAFKA_VERSION} broker jars`, setupError);
  log(`resolving Apache Kafka ${KAFKA_VERSION} broker jars from Maven Central into ${path.relative(root, libDir)}`);
  const tmp = `${libDir}.partial`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      path.join(root, 'scripts', 'kafka', 'pom.xml'),
      `-Dkafka.version=${KAFKA_VERSION}`,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${tmp}`,
      '-DincludeScope=runtime',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (result.status !== 0) throw new KafkaSetupError(`mvn could not resolve the Kafka broker jars. ${ALTERNATIVES}`);
  fs.rmSync(libDir, { recursive: true, force: true });
  fs.renameSync(tmp, libDir);
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function log(line) {
  process.stderr.write(`[kafka] ${line}\n`);
}

function openssl(args) {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error || result.status !== 0)
    throw new KafkaSetupError(`openssl ${args[0]} failed: ${result.error?.message ?? result.stderr}`);
}

/**
 * The test CA, the broker's certificate (for 127.0.0.1 and localhost) and a client certificate, all signed by that
 * CA; made once and reused while the server certificate is good for another day. Undefined without openssl.
 */
function ensureTlsFiles() {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    log('openssl not found: starting without the TLS listeners');
    return undefined;
  }
  const dir = path.join(runDir, 'tls');
  const file = (name) => path.join(dir, name);
  const files = {
    ca: file('ca.pem'),
    cert: file('client.pem'),
    key: file('client.key'),
    serverKeystore: file('server-keystore.pem'),
  };
  const fresh =
    Object.values(files).every((f) => fs.existsSync(f)) &&
    spawnSync('openssl', ['x509', '-checkend', '86400', '-noout', '-in', file('server.pem')]).status === 0;
  if (fresh) return files;

  log(`making a test CA and certificates in ${path.relative(root, dir)}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  // One key and certificate: self-signed for the CA, signed by the CA for the others (`req -x509 -CA`, OpenSSL 3).
  const make = (name, subject, extensions, signedByCa = true) =>
    openssl([
      ...'req -x509 -newkey rsa:2048 -nodes -days 825'.split(' '),
      ...['-keyout', file(`${name}.key`), '-out', file(`${name}.pem`), '-subj', subject],
      ...(signedByCa ? ['-CA', files.ca, '-CAkey', file('ca.key')] : []),
      ...extensions.flatMap((e) => ['-addext', e]),
    ]);
  const leaf = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  try {
    make(
      'ca',
      '/CN=stream-ml test CA',
      ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
      false,
    );
    make('server', '/CN=localhost', [
      ...leaf,
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    make('client', '/CN=stream-ml-test-client', [...leaf, 'extendedKeyUsage=clientAuth']);
  } catch (error) {
    // The TLS listeners are an extra: a broker without them still serves every other test.
    if (!(error instanceof KafkaSetupError)) throw error;
    log(`${error.message.trim()}; starting without the TLS listeners`);
    return undefined;
  }
  // Kafka's PEM keystore file: the private key, then the certificate chain.
  fs.writeFileSync(
    files.serverKeystore,
    [file('server.key'), file('server.pem'), files.ca].map((f) => fs.readFileSync(f, 'utf8')).join(''),
  );
  return files;
}

function writeConfig(ports, dataDir, tlsFiles) {
  const { plain, scram } = SASL_USERS;
  const listeners = [
    `PLAINTEXT://127.0.0.1:${ports.plaintext}`,
    `SASL_PLAINTEXT://127.0.0.1:${ports.sasl}`,
    ...(tlsFiles ? [`TLS://127.0.0.1:${ports.tls}`, `MTLS://127.0.0.1:${ports.mtls}`] : []),
  ];
  const tlsProps = tlsFiles
    ? [
        'ssl.keystore.type=PEM',
        `ssl.keystore.location=${tlsFiles.serverKeystore}`,
        'ssl.truststore.type=PEM',
        `ssl.truststore.location=${tlsFiles.ca}`,
        'listener.name.tls.ssl.client.auth=none',
        'listener.name.mtls.ssl.client.auth=required',
      ]
    : [];
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${ports.controller}`,
    `listeners=${[...listeners, `CONTROLLER://127.0.0.1:${ports.controller}`].join(',')}`,
    `advertised.listeners=${listeners.join(',')}`,
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT${tlsFiles ? ',TLS:SSL,MTLS:SSL' : ''}`,
    'inter.broker.listener.name=PLAINTEXT',
    ...tlsProps,
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${plain.username}="${plain.password}";`,
    'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'log.retention.hours=24',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(runDir, 'server.properties'), props);
  const log4j = `<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="INFO"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="stdout"/></Root>
  </Loggers>
</Configuration>
`;
  fs.writeFileSync(path.join(runDir, 'log4j2.xml'), log4j);
  return [
    `SCRAM-SHA-256=[name=${scram.username},password=${scram.password}]`,
    `SCRAM-SHA-512=[name=${scram.username},password=${scram.password}]`,
  ];
}

function javaArgs(mainClass, args) {
  return [
    '-Xms256m',
    '-Xmx768m',
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(runDir, 'log4j2.xml')}`,
    '-cp',
    `${libDir}/*`,
    mainClass,
    ...args,
  ];
}

/** Starts the broker unless one started by this script is already running; resolves to its addresses. */
export async function startKafka({ timeoutMs = 120_000 } = {}) {
  const existing = readState();
  if (existing && isAlive(existing.pid) && (await canConnect(existing.ports.plaintext))) {
    log(`already running (pid ${existing.pid}) at ${existing.brokers}`);
    return { ...existing, reused: true };
  }
  if (existing) await stopKafka();
  const java = findJava();
  resolveJars();

  fs.mkdirSync(runDir, { recursive: true });
  const dataDir = path.join(runDir, 'data');
  fs.rmSync(dataDir, { recursive: true, force: true });
  const tlsFiles = ensureTlsFiles();
  const ports = { plaintext: await freePort(), sasl: await freePort(), controller: await freePort() };
  if (tlsFiles) Object.assign(ports, { tls: await freePort(), mtls: await freePort() });
  const scramCredentials = writeConfig(ports, dataDir, tlsFiles);
  const clusterId = randomBytes(16).toString('base64url');
  const format = spawnSync(
    java,
    javaArgs('kafka.tools.StorageTool', [
      'format',
      '--standalone',
      '-t',
      clusterId,
      '-c',
      path.join(runDir, 'server.properties'),
      ...scramCredentials.flatMap((c) => ['--add-scram', c]),
    ]),
    { encoding: 'utf8' },
  );
  if (format.status !== 0) {
    throw new KafkaSetupError(`formatting KRaft storage failed:\n${format.stdout}${format.stderr}`);
  }

  const started = Date.now();
  const logFd = fs.openSync(brokerLogFile, 'w');
  const child = spawn(java, javaArgs('kafka.Kafka', [path.join(runDir, 'server.properties')]), {
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  child.unref();
  const state = {
    pid: child.pid,
    version: KAFKA_VERSION,
    ports,
    brokers: `127.0.0.1:${ports.plaintext}`,
    saslBrokers: `127.0.0.1:${ports.sasl}`,
    ...(tlsFiles && {
      tlsBrokers: `127.0.0.1:${ports.tls}`,
      mtlsBrokers: `127.0.0.1:${ports.mtls}`,
      tls: { ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key },
    }),
    startedAt: new Date(started).toISOString(),
  };
  fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));

  while (!(await brokerReady(ports.plaintext))) {
    if (!isAlive(child.pid)) {
      throw new KafkaSetupError(
        `the Kafka broker exited during start-up; see ${brokerLogFile}:\n${tail(brokerLogFile)}`,
      );
    }
    if (Date.now() - started > timeoutMs) {
      await stopKafka();
      throw new KafkaSetupError(`the Kafka broker did not answer within ${timeoutMs / 1000}s; see ${brokerLogFile}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  state.startupSeconds = (Date.now() - started) / 1000;
  fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
  log(
    `Apache Kafka ${KAFKA_VERSION} up at ${state.brokers} (SASL at ${state.saslBrokers}${state.tlsBrokers ? `, TLS at ${state.tlsBrokers}, mutual TLS at ${state.mtlsBrokers}` : ''}) in ${state.startupSeconds.toFixed(1)}s, pid ${child.pid}, log ${path.relative(root, brokerLogFile)}`,
  );
  return state;
}

// Ready means the broker log says it started and the port accepts connections.
async function brokerReady(port) {
  if (!(await canConnect(port))) return false;
  try {
    return /\[KafkaRaftServer nodeId=1\] Kafka Server started/.test(fs.readFileSync(brokerLogFile, 'utf8'));
  } catch {
    return false;
  }
}

/** Stops the broker this script started, politely first (SIGTERM), then by force after 30 s. */
export async function stopKafka() {
  const state = readState();
  if (!state) return false;
  await stopProcess(state.pid, 30_000);
  fs.rmSync(stateFile, { force: true });
  log(`stopped (pid ${state.pid})`);
  return true;
}

/**
 * Stops the running broker but keeps its ports, data and state, so resumeKafka() can bring the same broker back
 * (the broker-restart tests use this pair). SIGKILL, like a crash or a power cut on a gateway.
 */
export async function suspendKafka() {
  const state = readState();
  if (!state || !isAlive(state.pid)) throw new KafkaSetupError('no broker started by this script is running');
  process.kill(state.pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (isAlive(state.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  log(`suspended (pid ${state.pid})`);
}

/** Starts the broker that suspendKafka() stopped, on the same ports and data. */
export async function resumeKafka({ timeoutMs = 120_000 } = {}) {
  const state = readState();
  if (!state) throw new KafkaSetupError('no suspended broker to resume');
  if (isAlive(state.pid)) return state;
  const started = Date.now();
  const logFd = fs.openSync(brokerLogFile, 'a');
  const offset = fs.statSync(brokerLogFile).size;
  const child = spawn(findJava(), javaArgs('kafka.Kafka', [path.join(runDir, 'server.properties')]), {
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  child.unref();
  state.pid = child.pid;
  fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
  const startedLine = /\[KafkaRaftServer nodeId=1\] Kafka Server started/;
  while (!(await canConnect(state.ports.plaintext)) || !startedLine.test(readFrom(brokerLogFile, offset))) {
    if (!isAlive(child.pid)) throw new KafkaSetupError(`the resumed broker exited; see ${brokerLogFile}`);
    if (Date.now() - started > timeoutMs) throw new KafkaSetupError('the resumed broker did not come up in time');
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`resumed (pid ${child.pid}) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return state;
}

function readFrom(file, offset) {
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buffer, 0, buffer.length, offset);
    fs.closeSync(fd);
    return buffer.toString('utf8');
  } catch {
    return '';
  }
}

export function kafkaStatus() {
  const state = readState();
  return state && isAlive(state.pid) ? state : undefined;
}

async function main(command) {
  try {
    if (command === 'start') {
      const state = await startKafka();
      process.stdout.write(`KAFKA_BROKERS=${state.brokers}\n`);
    } else if (command === 'stop') {
      if (!(await stopKafka())) log('not running');
    } else if (command === 'suspend') {
      await suspendKafka();
    } else if (command === 'resume') {
      await resumeKafka();
    } else if (command === 'status') {
      const state = kafkaStatus();
      process.stdout.write(state ? `running: KAFKA_BROKERS=${state.brokers} (pid ${state.pid})\n` : 'not running\n');
      process.exitCode = state ? 0 : 1;
    } else {
      process.stderr.write('usage: node scripts/kafka.mjs start|stop|status|suspend|resume\n');
      process.exitCode = 2;
    }
  } catch (error) {
    if (error instanceof KafkaSetupError) {
      process.stderr.write(`[kafka] ${error.message}\n`);
      process.exitCode = 1;
    } else throw error;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv[2]);
}
