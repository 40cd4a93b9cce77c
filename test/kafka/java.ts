// Running the Java programs in test/kafka/java with the Kafka client jars that scripts/kafka.mjs fetched for the
// local broker (kafka-clients, lz4-java, zstd-jni, snappy-java), through Java's single-file source launcher.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../support/env';

function kafkaLibs(): string | undefined {
  const dir = path.join(process.env.STREAM_ML_CACHE ?? path.join(projectRoot, '.cache'), 'kafka');
  if (!fs.existsSync(dir)) return undefined;
  return fs
    .readdirSync(dir)
    .filter((d) => d.startsWith('libs-'))
    .map((d) => path.join(dir, d))
    .find((d) => fs.readdirSync(d).some((f) => /^kafka-clients-.*\.jar$/.test(f)));
}

function findJava(): string | undefined {
  const bin = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const probe = spawnSync(bin, ['-version'], { encoding: 'utf8' });
  return probe.error || probe.status !== 0 ? undefined : bin;
}

const libs = kafkaLibs();
const java = findJava();

/** Why the Java tests cannot run here, or undefined when they can. */
export const javaSkipReason: string | undefined = !libs
  ? 'the Kafka client jars are not in .cache/kafka (KAFKA_BROKERS names an external cluster): run `npm run kafka:start` once to fetch them'
  : !java
    ? 'no Java found (JAVA_HOME or java on PATH)'
    : undefined;

/** Runs test/kafka/java/<program>.java with the Kafka jars; resolves to its standard output. */
export async function runJava(program: string, args: string[]): Promise<string> {
  if (!libs || !java) throw new Error(javaSkipReason);
  const source = path.join(projectRoot, 'test', 'kafka', 'java', `${program}.java`);
  const { stdout } = await promisify(execFile)(java, ['-cp', path.join(libs, '*'), source, ...args], {
    timeout: 120_000,
    maxBuffer: 16 << 20,
  });
  return stdout;
}
