// A user's first `npm test`: the project copied into a folder with nothing beside it (no ../shared), the Shuttle
// data downloaded once from a stand-in for the UCI archive, and the tests that need the data run there and pass.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { SHUTTLE_SHA256, sha256 } from '../../src/datasets/shuttle';
import { projectRoot, shuttleMissing } from '../support/env';
import { serveUciArchive } from '../support/uci-archive';

// The test files that read the Shuttle data (and the other unit tests, which are quick).
const DATA_TESTS = ['unit/', 'nodes/learner-scorer', 'nodes/runtime', 'nodes/examples'];

let scratch: string | undefined;
after(() => scratch && fs.rmSync(scratch, { recursive: true, force: true }));

/** The working tree as git sees it (tracked files, and new ones it does not ignore), copied into `to`. */
function copyWorkingTree(to: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  assert.equal(listed.status, 0, listed.stderr);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(projectRoot, file);
    if (!fs.existsSync(from)) continue; // deleted in the working tree
    fs.mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    fs.copyFileSync(from, path.join(to, file));
  }
}

test('a fresh copy downloads the Shuttle data once and its data tests pass', { skip: shuttleMissing() }, async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-fresh-'));
  const clone = path.join(scratch, 'node-red-contrib-stream-ml');
  copyWorkingTree(clone);
  assert.equal(fs.existsSync(path.join(clone, '..', 'shared')), false);
  // What `npm install` would bring, without fetching it again.
  fs.symlinkSync(path.join(projectRoot, 'node_modules'), path.join(clone, 'node_modules'), 'dir');

  const archive = await serveUciArchive();
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      STREAM_ML_UCI_URL: archive.base,
      // This run's own Node-RED 5 pass covers the second line; the broker is the one already running.
      STREAM_ML_SKIP_NR5: '1',
    };
    // NODE_TEST_CONTEXT would make the inner test runner think it runs inside this one, and run nothing.
    for (const name of [
      'SHUTTLE_DATA_DIR',
      'SHUTTLE_CSV',
      'STREAM_ML_CACHE',
      'STREAM_ML_SHUTTLE_MISSING',
      'NODE_TEST_CONTEXT',
    ]) {
      delete env[name];
    }
    const child = spawn(process.execPath, [path.join(clone, 'scripts', 'test.mjs'), ...DATA_TESTS], {
      cwd: clone,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const summary = /^tests: (\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(output);
    assert.ok(summary, `no summary line:\n${output.slice(-5000)}`);
    assert.equal(code, 0, output.slice(-5000));
    const [passed, failed, skipped] = summary.slice(1).map(Number);
    assert.deepEqual({ failed, skipped }, { failed: 0, skipped: 0 });
    assert.ok(passed >= 100, `${passed} passed`);
    assert.doesNotMatch(output, /# SKIP/);
    assert.match(output, /downloading it once from the UCI archive into \.cache\/shuttle/);
    // One download for every test file that read the data.
    assert.deepEqual(archive.hits, ['/static/public/148/statlog+shuttle.zip']);
    const csv = fs.readFileSync(path.join(clone, '.cache', 'shuttle', 'shuttle.csv'));
    assert.equal(sha256(csv), SHUTTLE_SHA256['shuttle.csv']);
    console.log(`fresh copy: ${passed} passed, ${failed} failed, ${skipped} skipped, after one download`);
  } finally {
    await archive.close();
  }
});
