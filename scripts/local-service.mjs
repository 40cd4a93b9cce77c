// What scripts/kafka.mjs and scripts/registry.mjs share to run a local Java service for tests: finding Java and
// Maven, a free port, the state file of the running process, and stopping it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

/** The java binary (JAVA_HOME's, else the one on PATH), checked to be 17 or newer; else throws makeError(reason). */
export function findJava(what, makeError) {
  const javaBin = process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : 'java';
  const probe = spawnSync(javaBin, ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw makeError(`Java 17 or newer is needed to run ${what}, and none was found.`);
  const match = /version "(\d+)/.exec(probe.stderr + probe.stdout);
  const major = match ? Number(match[1]) : 0;
  if (major < 17) throw makeError(`Java ${major} was found, but ${what} needs Java 17 or newer.`);
  return javaBin;
}

/** Throws makeError(reason) unless `mvn` runs. */
export function requireMaven(why, makeError) {
  const mvn = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (mvn.error || mvn.status !== 0) throw makeError(`Maven (mvn) is needed to ${why}, and none was found.`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readState(stateFile) {
  try {
    return JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The last lines of a log, for an error message. */
export function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Stops a process politely first (SIGTERM), then by force (SIGKILL) after graceMs. */
export async function stopProcess(pid, graceMs) {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  // Bounded by the deadline.
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}
