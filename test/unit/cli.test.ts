// The built `stream-ml` command, run as a user would: a child process on CSV files written here.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { projectRoot, shuttleDir, shuttleMissing } from '../support/env';

const cli = path.join(projectRoot, 'dist', 'src', 'cli', 'stream-ml.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

function run(...args: string[]): Run {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  let json: Record<string, unknown> = {};
  if (r.status === 0 && r.stdout.startsWith('{')) json = JSON.parse(r.stdout) as Record<string, unknown>;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

// Seeded normal draws, so the files are the same on every run.
function normals(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** 3,000 rows: two correlated sensors, a 0/1 flag, a colour; every 40th row is far off and labelled 1. */
function syntheticCsv(): { text: string; rows: number; anomalies: number } {
  const g = normals(42);
  const lines = ['temp,pressure,valve,colour,label'];
  let anomalies = 0;
  const rows = 3000;
  for (let i = 0; i < rows; i++) {
    const outlier = i >= 200 && i % 40 === 0;
    const t = 20 + 2 * g() + (outlier ? 18 : 0);
    const p = 1000 + 5 * (t - 20) + g() - (outlier ? 60 : 0);
    const colour = ['red', 'green', 'blue'][i % 3];
    // A quoted field, as spreadsheets write them.
    lines.push(`${t.toFixed(3)},${p.toFixed(2)},${i % 7 === 0 ? 1 : 0},"${colour}",${outlier ? 1 : 0}`);
    if (outlier) anomalies++;
  }
  return { text: lines.join('\n') + '\n', rows, anomalies };
}

describe('stream-ml evaluate (built CLI, child process)', () => {
  const data = syntheticCsv();
  const plain = path.join(dir, 'sensors.csv');
  const gz = path.join(dir, 'sensors.csv.gz');
  fs.writeFileSync(plain, data.text);
  fs.writeFileSync(gz, zlib.gzipSync(data.text));

  it('starts with a shebang so npm can install it as a command', () => {
    assert.match(fs.readFileSync(cli, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  it('replays a CSV and prints one JSON line with the quality figures', () => {
    const r = run('evaluate', plain, '--types', 'C,C,B,T,X', '--label', 'label', '--seed', '3');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    const j = r.json;
    assert.equal(j.records, data.rows);
    assert.equal(j.labelled, data.rows);
    assert.equal(j.anomalies, data.anomalies);
    assert.equal(j.detector, 'auto');
    assert.equal(j.types, 'C,C,B,T,X');
    assert.equal(j.typesGuessed, false);
    assert.equal(j.exact, true);
    assert.equal(
      (j.tp as number) + (j.fp as number) + (j.tn as number) + (j.fn as number),
      data.rows - (j.invalid as number),
    );
    assert.equal(j.tp as number, Math.round((j.recall as number) * data.anomalies));
    // Outliers 9 standard deviations off, breaking the sensors' correlation: any working detector ranks them first.
    assert.ok((j.rocAuc as number) > 0.95, `rocAuc ${j.rocAuc}`);
    assert.ok((j.averagePrecision as number) > 0.5, `AP ${j.averagePrecision}`);
    assert.ok((j.recordsPerSecond as number) > 0);
  });

  it('reads the gzip-compressed file to the same result', () => {
    const a = run('evaluate', plain, '--types', 'C,C,B,T', '--label', 'label', '--seed', '3');
    const b = run('evaluate', gz, '--types', 'C,C,B,T', '--label', 'label', '--seed', '3');
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    // Types given for the columns other than the label are accepted too.
    assert.equal(b.json.types, 'C,C,B,T,X');
    for (const k of ['records', 'rocAuc', 'averagePrecision', 'tp', 'fp', 'tn', 'fn', 'flagged'])
      assert.deepEqual(b.json[k], a.json[k], k);
  });

  it('guesses the types when none are given and says so', () => {
    const r = run('evaluate', plain, '--label', 'label');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.types, 'C,C,B,T,X');
    assert.equal(r.json.typesGuessed, true);
    assert.match(r.stderr, /guessed types: C,C,B,T,X/);
    assert.equal(r.json.records, data.rows);
  });

  it('honours --detector and --threshold', () => {
    const r = run(
      'evaluate',
      plain,
      '--types',
      'C,C,B,T,X',
      '--label',
      'label',
      '--detector',
      'gaussian',
      '--threshold',
      '0.8',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.detector, 'gaussian');
    assert.deepEqual((r.json.threshold as { spec: string }).spec, '0.8');
    assert.equal((r.json.threshold as { last: number }).last, 0.8);
  });

  it('reports a malformed line by its number and exits non-zero', () => {
    const lines = data.text.split('\n');
    lines[57] = '21.5,1003.1,0'; // line 58 of the file: 3 fields instead of 5
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, lines.join('\n'));
    const r = run('evaluate', bad, '--label', 'label');
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /bad\.csv: line 58: expected 5 fields, found 3/);

    const quote = path.join(dir, 'quote.csv.gz');
    fs.writeFileSync(quote, zlib.gzipSync('a,b\n1,2\n3,"4\n'));
    const q = run('evaluate', quote);
    assert.equal(q.status, 1);
    assert.match(q.stderr, /line 3: a quoted field is not closed/);
  });

  it('refuses bad usage with exit code 2 and explains itself with --help', () => {
    const missing = run('evaluate', path.join(dir, 'nope.csv'));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no such file/);
    const label = run('evaluate', plain, '--label', 'outlier');
    assert.equal(label.status, 2);
    assert.match(label.stderr, /--label outlier: no such column/);
    const types = run('evaluate', plain, '--types', 'C,C');
    assert.equal(types.status, 2);
    assert.match(types.stderr, /2 types for 5 columns/);
    const help = run('--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: stream-ml evaluate FILE\.csv/);
    assert.match(help.stdout, /guessed/);
    const version = run('--version');
    assert.equal(version.status, 0);
    const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout.trim(), pkg.version);
  });

  it('ranks the Shuttle anomalies well with the default detector', { skip: shuttleMissing() }, () => {
    const csv = path.join(shuttleDir(), 'shuttle.csv');
    const r = run('evaluate', csv, '--types', 'C,C,C,C,C,C,C,C,C,X', '--label', 'outlier');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.records, 49097);
    assert.equal(r.json.anomalies, 3511);
    assert.ok((r.json.rocAuc as number) > 0.9, `rocAuc ${r.json.rocAuc}`);
    assert.ok((r.json.rocAuc as number) <= 1);
  });
});
