// The Shuttle data loader (src/datasets/shuttle.ts, which the examples' sample-data node and the demo use): the UCI
// files convert to exactly the known shuttle.csv, from the plain and the Unix-compressed training file, and the
// download (zip, then the legacy folder) works against a local server standing in for the UCI archive.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { zipSync } from 'fflate';
import {
  convertShuttle,
  convertUciFolder,
  downloadShuttle,
  ensureShuttleCsv,
  hasUciFiles,
  readShuttleRecords,
  sha256,
  SHUTTLE_SHA256,
  shuttleUrls,
  UCI_BASE_URL,
} from '../../src/datasets/shuttle';
import { uncompressZ } from '../../src/datasets/unix-compress';
import { projectRoot, shuttleDir, shuttleMissing } from '../support/env';
import { serveRoutes as serve } from '../support/uci-archive';

let dir: string;
let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-shuttle-'));
  if (!shuttleMissing()) dir = shuttleDir();
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('rows keep their order and classes map to the outlier label', () => {
  const csv = convertShuttle('1 2 3 4 5 6 7 8 9 4\n1 2 3 4 5 6 7 8 9 1\n', '9 8 7 6 5 4 3 2 1 5\n\n');
  assert.equal(csv, 'f1,f2,f3,f4,f5,f6,f7,f8,f9,outlier\n1,2,3,4,5,6,7,8,9,0\n9,8,7,6,5,4,3,2,1,1\n');
  assert.throws(() => convertShuttle('1 2 3\n'), /3 fields/);
  assert.throws(() => convertShuttle('1 2 3 4 5 6 7 8 9 8\n'), /unknown Shuttle class "8"/);
});

test('the .Z reader refuses what is not a .Z file, and a code past the table', () => {
  assert.throws(() => uncompressZ(Buffer.from('plain text')), /not a Unix compress/);
  assert.throws(() => uncompressZ(Buffer.from([0x1f, 0x9d, 0x88])), /8-bit codes is not supported/);
  // 9-bit codes, block mode: the byte 'a' (97), then code 300, which nothing has defined yet.
  const bits = 97 | (300 << 9);
  assert.throws(
    () => uncompressZ(Buffer.from([0x1f, 0x9d, 0x90, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff])),
    /refers past the table/,
  );
});

test('the UCI archive address can be replaced for a mirror or a stand-in', () => {
  assert.equal(shuttleUrls().zip.startsWith(process.env.STREAM_ML_UCI_URL || UCI_BASE_URL), true);
  assert.deepEqual(shuttleUrls('http://mirror.example/uci/'), {
    zip: 'http://mirror.example/uci/static/public/148/statlog+shuttle.zip',
    legacy: 'http://mirror.example/uci/ml/machine-learning-databases/statlog/shuttle/',
  });
});

describe('on the real Shuttle files', { skip: shuttleMissing() }, () => {
  const uci = () => ({
    trnZ: fs.readFileSync(path.join(dir, 'shuttle.trn.Z')),
    tst: fs.readFileSync(path.join(dir, 'shuttle.tst')),
    csv: fs.readFileSync(path.join(dir, 'shuttle.csv')),
  });
  const needsUci = () =>
    !fs.existsSync(path.join(shuttleDir(), 'shuttle.trn.Z')) && 'needs shuttle.trn.Z beside shuttle.csv';

  test('records come out as numbers in stream order', () => {
    const records = readShuttleRecords(path.join(dir, 'shuttle.csv'));
    assert.equal(records.length, 49_097);
    assert.deepEqual(records[0], { f1: 50, f2: 21, f3: 77, f4: 0, f5: 28, f6: 0, f7: 27, f8: 48, f9: 22, outlier: 1 });
  });

  test('the UCI files convert byte for byte to shuttle.csv', { skip: needsUci() }, () => {
    const trn = uncompressZ(uci().trnZ);
    assert.equal(sha256(trn), SHUTTLE_SHA256['shuttle.trn']);
    const csv = convertShuttle(trn.toString('utf8'), uci().tst.toString('utf8'));
    assert.equal(csv, uci().csv.toString('utf8'));
    assert.equal(sha256(csv), SHUTTLE_SHA256['shuttle.csv']);
    const rows = csv.trim().split('\n').slice(1);
    assert.equal(rows.length, 49_097);
    assert.equal(rows.filter((r) => r.endsWith(',1')).length, 3_511);
  });

  test(
    'the .Z reader gives what gzip gives',
    { skip: needsUci() || (spawnSync('gzip', ['-V']).status !== 0 && 'no gzip') },
    () => {
      const viaGzip = spawnSync('gzip', ['-dc'], { input: uci().trnZ, maxBuffer: 64 << 20 }).stdout;
      assert.ok(uncompressZ(uci().trnZ).equals(viaGzip));
      // A folder with only the .Z training file converts too.
      const only = path.join(tmp, 'only-z');
      fs.mkdirSync(only);
      fs.writeFileSync(path.join(only, 'shuttle.trn.Z'), uci().trnZ);
      fs.writeFileSync(path.join(only, 'shuttle.tst'), uci().tst);
      assert.equal(hasUciFiles(only), true);
      const out = convertUciFolder(only, path.join(tmp, 'only-z-out'));
      assert.ok(fs.readFileSync(out).equals(uci().csv));
    },
  );

  test('download: the UCI zip is unpacked, checked, converted, and kept', { skip: needsUci() }, async () => {
    const zip = zipSync({ 'shuttle.trn.Z': uci().trnZ, 'shuttle.tst': uci().tst, 'shuttle.doc': Buffer.from('doc\n') });
    const server = await serve({ '/static/public/148/statlog+shuttle.zip': zip });
    try {
      const outDir = path.join(tmp, 'cache-zip');
      const csv = await downloadShuttle({ outDir, urls: shuttleUrls(server.base) });
      assert.equal(csv, path.join(outDir, 'shuttle.csv'));
      assert.ok(fs.readFileSync(csv).equals(uci().csv));
      assert.deepEqual(server.hits, ['/static/public/148/statlog+shuttle.zip']);
      assert.deepEqual(fs.readdirSync(outDir).sort(), ['shuttle.csv', 'shuttle.trn', 'shuttle.trn.Z', 'shuttle.tst']);
    } finally {
      await server.close();
    }
  });

  test('download: without the zip, the legacy folder serves the files', { skip: needsUci() }, async () => {
    const legacy = '/ml/machine-learning-databases/statlog/shuttle/';
    const server = await serve({ [`${legacy}shuttle.trn.Z`]: uci().trnZ, [`${legacy}shuttle.tst`]: uci().tst });
    try {
      const lines: string[] = [];
      const outDir = path.join(tmp, 'cache-legacy');
      const csv = await downloadShuttle({ outDir, urls: shuttleUrls(server.base), log: (l) => lines.push(l) });
      assert.ok(fs.readFileSync(csv).equals(uci().csv));
      assert.match(lines.join('\n'), /HTTP 404; trying/);
    } finally {
      await server.close();
    }
  });

  test('download: a corrupt file is refused, never converted', { skip: needsUci() }, async () => {
    const legacy = '/ml/machine-learning-databases/statlog/shuttle/';
    const server = await serve({
      [`${legacy}shuttle.trn.Z`]: uci().trnZ,
      [`${legacy}shuttle.tst`]: Buffer.from('1 2 3 4 5 6 7 8 9 1\n'),
    });
    try {
      const outDir = path.join(tmp, 'cache-bad');
      await assert.rejects(
        downloadShuttle({ outDir, urls: shuttleUrls(server.base) }),
        /shuttle\.tst has sha256 [0-9a-f]+, expected/,
      );
      assert.equal(fs.existsSync(path.join(outDir, 'shuttle.csv')), false);
    } finally {
      await server.close();
    }
  });

  test(
    'ensureShuttleCsv downloads once, then reads the folder; offline it says what to do',
    { skip: needsUci() },
    async () => {
      const zip = zipSync({ 'shuttle.trn.Z': uci().trnZ, 'shuttle.tst': uci().tst });
      const server = await serve({ '/static/public/148/statlog+shuttle.zip': zip });
      const outDir = path.join(tmp, 'ensure');
      try {
        const urls = shuttleUrls(server.base);
        assert.equal(await ensureShuttleCsv({ outDir, urls }), path.join(outDir, 'shuttle.csv'));
        assert.equal(await ensureShuttleCsv({ outDir, urls }), path.join(outDir, 'shuttle.csv'));
        assert.equal(server.hits.length, 1, server.hits.join(', '));
      } finally {
        await server.close();
      }
      const offline = path.join(tmp, 'offline');
      await assert.rejects(ensureShuttleCsv({ outDir: offline, urls: shuttleUrls(server.base) }), (error: Error) => {
        assert.match(
          error.message,
          /could not download the Shuttle data \(GET http:\/\/127\.0\.0\.1:\d+\/.*ECONNREFUSED/,
        );
        assert.ok(error.message.includes(`Download ${server.base}/static/public/148/statlog+shuttle.zip yourself`));
        assert.ok(error.message.includes(`into ${offline}`));
        return true;
      });
    },
  );

  test(
    'SHUTTLE_DATA_DIR with the UCI files is converted into the cache; an empty one is refused',
    { skip: needsUci() },
    () => {
      const script = path.join(projectRoot, 'scripts', 'shuttle-data.mjs');
      const uciDir = path.join(tmp, 'uci-env');
      fs.mkdirSync(uciDir);
      fs.writeFileSync(path.join(uciDir, 'shuttle.trn.Z'), uci().trnZ);
      fs.writeFileSync(path.join(uciDir, 'shuttle.tst'), uci().tst);
      const cache = path.join(tmp, 'env-cache');
      const env = { ...process.env, SHUTTLE_DATA_DIR: uciDir, STREAM_ML_CACHE: cache };
      const result = spawnSync(process.execPath, [script], { env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.trim(), path.join(cache, 'shuttle', 'shuttle.csv'));
      assert.ok(fs.readFileSync(result.stdout.trim()).equals(uci().csv));

      const empty = path.join(tmp, 'empty-env');
      fs.mkdirSync(empty);
      const refused = spawnSync(process.execPath, [script], {
        env: { ...env, SHUTTLE_DATA_DIR: empty },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /holds neither shuttle\.csv nor shuttle\.trn\(\.Z\) and shuttle\.tst/);
    },
  );
});
