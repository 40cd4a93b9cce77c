#!/usr/bin/env node
// Starts and stops a real Confluent-compatible schema registry for tests: Apicurio Registry 2.0.2.Final with
// in-memory storage, serving the Confluent REST API under /apis/ccompat/v6. It is built once from Maven Central
// with `mvn` (scripts/registry/pom.xml) into .cache/registry; nothing else is downloaded.
//
//   node scripts/registry.mjs start    prints SCHEMA_REGISTRY_URL=http://127.0.0.1:<port>/apis/ccompat/v6
//   node scripts/registry.mjs stop
//   node scripts/registry.mjs status
//
// Its storage is memory: every start begins with no subjects.
/* global fetch, AbortSignal */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
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
export const APICURIO_VERSION = '2.0.2.Final';
const cacheDir = process.env.STREAM_ML_CACHE ?? path.join(root, '.cache');
const appDir = path.join(cacheDir, 'registry', `apicurio-${APICURIO_VERSION}`);
const runnerJar = path.join(appDir, 'schema-registry-runtime-1-runner.jar');
const runDir = path.join(cacheDir, 'registry', 'run');
const stateFile = path.join(runDir, 'state.json');
export const registryLogFile = path.join(runDir, 'registry.log');
const API_PATH = '/apis/ccompat/v6';

const ALTERNATIVES =
  'Alternative: set SCHEMA_REGISTRY_URL to the address of an existing Confluent-compatible schema registry.';

export class RegistrySetupError extends Error {}

const setupError = (reason) => new RegistrySetupError(`${reason} ${ALTERNATIVES}`);
// No Java or no Maven here at all (rather than a build or start that failed): `npm test` can do without.
const missingTool = (reason) => Object.assign(setupError(reason), { missingTool: true });
const findJava = () => findLocalJava('the local schema registry', missingTool);
const readState = () => readStateFile(stateFile);

function log(line) {
  process.stderr.write(`[registry] ${line}\n`);
}

/** Builds the registry application from Maven Central into .cache/registry, once. */
function buildRegistry() {
  if (fs.existsSync(runnerJar)) return;
  requireMaven('build the local schema registry', missingTool);
  log(`building Apicurio Registry ${APICURIO_VERSION} from Maven Central into ${path.relative(root, appDir)}`);
  const started = Date.now();
  const tmp = `${appDir}.partial`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      path.join(root, 'scripts', 'registry', 'pom.xml'),
      `-Dapicurio.version=${APICURIO_VERSION}`,
      `-Dregistry.buildDir=${tmp}`,
      'package',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (result.status !== 0 || !fs.existsSync(path.join(tmp, path.basename(runnerJar)))) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    const errors = output
      .split('\n')
      .filter((l) => l.includes('ERROR'))
      .slice(0, 5)
      .join('\n');
    throw new RegistrySetupError(`mvn could not build the schema registry:\n${errors || output.slice(-2000)}`);
  }
  fs.rmSync(appDir, { recursive: true, force: true });
  fs.renameSync(tmp, appDir);
  log(`built in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

// Ready means the Confluent API answers a listing of subjects.
async function registryReady(url) {
  try {
    const response = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2_000) });
    await response.text();
    return response.ok;
  } catch {
    return false;
  }
}

/** Starts the registry unless one started by this script is already running; resolves to its state. */
export async function startRegistry({ timeoutMs = 120_000 } = {}) {
  const existing = readState();
  if (existing && isAlive(existing.pid) && (await registryReady(existing.url))) {
    log(`already running (pid ${existing.pid}) at ${existing.url}`);
    return { ...existing, reused: true };
  }
  if (existing) await stopRegistry();
  const java = findJava();
  buildRegistry();

  fs.mkdirSync(runDir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}${API_PATH}`;
  const started = Date.now();
  const logFd = fs.openSync(registryLogFile, 'w');
  const child = spawn(
    java,
    [
      '-Xms64m',
      '-Xmx384m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Djava.awt.headless=true',
      '-Dquarkus.http.host=127.0.0.1',
      '-jar',
      runnerJar,
    ],
    // HTTP_PORT is the registry's own setting for its port; the working directory takes whatever it writes.
    { cwd: runDir, detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, HTTP_PORT: String(port) } },
  );
  fs.closeSync(logFd);
  child.unref();
  const state = {
    pid: child.pid,
    version: APICURIO_VERSION,
    port,
    url,
    startedAt: new Date(started).toISOString(),
  };
  fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));

  while (!(await registryReady(url))) {
    if (!isAlive(child.pid)) {
      fs.rmSync(stateFile, { force: true });
      throw new RegistrySetupError(
        `the schema registry exited during start-up; see ${registryLogFile}:\n${tail(registryLogFile)}`,
      );
    }
    if (Date.now() - started > timeoutMs) {
      await stopRegistry();
      throw new RegistrySetupError(
        `the schema registry did not answer within ${timeoutMs / 1000}s; see ${registryLogFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  state.startupSeconds = (Date.now() - started) / 1000;
  fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
  log(
    `Apicurio Registry ${APICURIO_VERSION} up at ${url} in ${state.startupSeconds.toFixed(1)}s, pid ${child.pid}, log ${path.relative(root, registryLogFile)}`,
  );
  return state;
}

/** Stops the registry this script started, politely first (SIGTERM), then by force after 20 s. */
export async function stopRegistry() {
  const state = readState();
  if (!state) return false;
  await stopProcess(state.pid, 20_000);
  fs.rmSync(stateFile, { force: true });
  log(`stopped (pid ${state.pid})`);
  return true;
}

export function registryStatus() {
  const state = readState();
  return state && isAlive(state.pid) ? state : undefined;
}

async function main(command) {
  try {
    if (command === 'start') {
      const state = await startRegistry();
      process.stdout.write(`SCHEMA_REGISTRY_URL=${state.url}\n`);
    } else if (command === 'stop') {
      if (!(await stopRegistry())) log('not running');
    } else if (command === 'status') {
      const state = registryStatus();
      process.stdout.write(state ? `running: SCHEMA_REGISTRY_URL=${state.url} (pid ${state.pid})\n` : 'not running\n');
      process.exitCode = state ? 0 : 1;
    } else {
      process.stderr.write('usage: node scripts/registry.mjs start|stop|status\n');
      process.exitCode = 2;
    }
  } catch (error) {
    if (error instanceof RegistrySetupError) {
      process.stderr.write(`[registry] ${error.message}\n`);
      process.exitCode = 1;
    } else throw error;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv[2]);
}
