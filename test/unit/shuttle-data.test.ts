// The Shuttle data loader: the UCI files convert to exactly ../shared/data/shuttle/shuttle.csv, from the plain
// and the Unix-compressed training file, and the download path (zip, then the legacy folder) works against a
// local server standing in for the UCI archive, which this network cannot reach.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { projectRoot, shuttleDir } from '../support/env';
import { importScript } from '../support/esm';

interface ShuttleData {
  convertShuttle(...texts: string[]): string;
  uncompressZ(buffer: Buffer): Buffer;
  convertDir(dir: string, outDir?: string): string;
  unzip(buffer: Buffer): Record<string, Buffer>;
  sha256(data: string | Buffer): string;
  SHA256: Record<string, string>;
  downloadShuttle(options: {
    outDir: string;
    zipUrl: string;
    legacyUrl: string;
    log?: (line: string) => void;
  }): Promise<string>;
  readShuttleRecords(csvPath: string): Record<string, number>[];
}

let data: ShuttleData;
let dir: string;
let tmp: string;
before(async () => {
  data = await importScript<ShuttleData>('shuttle-data.mjs');
  dir = shuttleDir();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-shuttle-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('the UCI files convert byte for byte to shuttle.csv', () => {
  const expected = fs.readFileSync(path.join(dir, 'shuttle.csv'), 'utf8');
  const csv = data.convertShuttle(
    fs.readFileSync(path.join(dir, 'shuttle.trn'), 'utf8'),
    fs.readFileSync(path.join(dir, 'shuttle.tst'), 'utf8'),
  );
  assert.equal(csv, expected);
  assert.equal(data.sha256(csv), data.SHA256['shuttle.csv']);
  const rows = csv.trim().split('\n').slice(1);
  assert.equal(rows.length, 49_097);
  assert.equal(rows.filter((r) => r.endsWith(',1')).length, 3_511);
});

test('the Unix-compressed training file reads the same as the plain one', () => {
  const z = data.uncompressZ(fs.readFileSync(path.join(dir, 'shuttle.trn.Z')));
  assert.equal(data.sha256(z), data.SHA256['shuttle.trn']);
  // A folder with only the .Z training file converts too.
  const only = path.join(tmp, 'only-z');
  fs.mkdirSync(only);
  fs.copyFileSync(path.join(dir, 'shuttle.trn.Z'), path.join(only, 'shuttle.trn.Z'));
  fs.copyFileSync(path.join(dir, 'shuttle.tst'), path.join(only, 'shuttle.tst'));
  const out = data.convertDir(only, path.join(tmp, 'only-z-out'));
  assert.ok(fs.readFileSync(out).equals(fs.readFileSync(path.join(dir, 'shuttle.csv'))));
});

test('rows keep their order and classes map to the outlier label', () => {
  const csv = data.convertShuttle('1 2 3 4 5 6 7 8 9 4\n1 2 3 4 5 6 7 8 9 1\n', '9 8 7 6 5 4 3 2 1 5\n\n');
  assert.equal(csv, 'f1,f2,f3,f4,f5,f6,f7,f8,f9,outlier\n1,2,3,4,5,6,7,8,9,0\n9,8,7,6,5,4,3,2,1,1\n');
  assert.throws(() => data.convertShuttle('1 2 3\n'), /3 fields/);
  assert.throws(() => data.convertShuttle('1 2 3 4 5 6 7 8 9 8\n'), /unknown Shuttle class "8"/);
});

test('records come out as numbers in stream order', () => {
  const records = data.readShuttleRecords(path.join(dir, 'shuttle.csv'));
  assert.equal(records.length, 49_097);
  assert.deepEqual(records[0], { f1: 50, f2: 21, f3: 77, f4: 0, f5: 28, f6: 0, f7: 27, f8: 48, f9: 22, outlier: 1 });
});

// A stand-in for the UCI archive: `routes` maps a URL path to the bytes served there.
async function serve(routes: Record<string, Buffer>): Promise<{ base: string; hits: string[]; close(): void }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    hits.push(url);
    const body = routes[url];
    res.writeHead(body ? 200 : 404).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, hits, close: () => server.close() };
}

const hasZip = spawnSync('zip', ['-v']).status === 0;

test('download: the UCI zip is unpacked, checked and converted', { skip: !hasZip && 'no zip command' }, async () => {
  const zipDir = path.join(tmp, 'zip-src');
  fs.mkdirSync(zipDir);
  for (const f of ['shuttle.trn.Z', 'shuttle.tst']) fs.copyFileSync(path.join(dir, f), path.join(zipDir, f));
  fs.writeFileSync(path.join(zipDir, 'shuttle.doc'), 'documentation\n');
  const zipFile = path.join(tmp, 'statlog+shuttle.zip');
  const zipped = spawnSync('zip', ['-q', '-j', zipFile, ...fs.readdirSync(zipDir).map((f) => path.join(zipDir, f))]);
  assert.equal(zipped.status, 0, String(zipped.stderr));
  const server = await serve({ '/static/public/148/statlog+shuttle.zip': fs.readFileSync(zipFile) });
  try {
    const outDir = path.join(tmp, 'cache-zip');
    const csv = await data.downloadShuttle({
      outDir,
      zipUrl: `${server.base}/static/public/148/statlog+shuttle.zip`,
      legacyUrl: `${server.base}/legacy/`,
    });
    assert.equal(csv, path.join(outDir, 'shuttle.csv'));
    assert.ok(fs.readFileSync(csv).equals(fs.readFileSync(path.join(dir, 'shuttle.csv'))));
    assert.deepEqual(server.hits, ['/static/public/148/statlog+shuttle.zip']);
  } finally {
    server.close();
  }
});

test('download: without the zip, the legacy folder serves the files', async () => {
  const server = await serve({
    '/legacy/shuttle.trn.Z': fs.readFileSync(path.join(dir, 'shuttle.trn.Z')),
    '/legacy/shuttle.tst': fs.readFileSync(path.join(dir, 'shuttle.tst')),
  });
  try {
    const outDir = path.join(tmp, 'cache-legacy');
    const lines: string[] = [];
    const csv = await data.downloadShuttle({
      outDir,
      zipUrl: `${server.base}/missing.zip`,
      legacyUrl: `${server.base}/legacy/`,
      log: (line) => lines.push(line),
    });
    assert.ok(fs.readFileSync(csv).equals(fs.readFileSync(path.join(dir, 'shuttle.csv'))));
    assert.match(lines.join('\n'), /HTTP 404; trying/);
  } finally {
    server.close();
  }
});

test('download: a corrupt file is refused, never converted', async () => {
  const server = await serve({
    '/legacy/shuttle.trn.Z': fs.readFileSync(path.join(dir, 'shuttle.trn.Z')),
    '/legacy/shuttle.tst': Buffer.from('1 2 3 4 5 6 7 8 9 1\n'),
  });
  try {
    const outDir = path.join(tmp, 'cache-bad');
    await assert.rejects(
      data.downloadShuttle({ outDir, zipUrl: `${server.base}/missing.zip`, legacyUrl: `${server.base}/legacy/` }),
      /shuttle\.tst has sha256 [0-9a-f]+, expected/,
    );
    assert.equal(fs.existsSync(path.join(outDir, 'shuttle.csv')), false);
  } finally {
    server.close();
  }
});

test('download: an unreachable archive fails with the reason', async () => {
  const server = await serve({});
  server.close();
  await assert.rejects(
    data.downloadShuttle({
      outDir: path.join(tmp, 'cache-unreachable'),
      zipUrl: `${server.base}/statlog+shuttle.zip`,
      legacyUrl: `${server.base}/legacy/`,
    }),
    /GET http:\/\/127\.0\.0\.1:\d+\/legacy\/shuttle\.trn\.Z: .*ECONNREFUSED/,
  );
});

test('SHUTTLE_DATA_DIR with the UCI files is converted into the cache; an empty one is refused', () => {
  const script = path.join(projectRoot, 'scripts', 'shuttle-data.mjs');
  const uci = path.join(tmp, 'uci-env');
  fs.mkdirSync(uci);
  for (const f of ['shuttle.trn.Z', 'shuttle.tst']) fs.copyFileSync(path.join(dir, f), path.join(uci, f));
  const cache = path.join(tmp, 'env-cache');
  const env = { ...process.env, SHUTTLE_DATA_DIR: uci, STREAM_ML_CACHE: cache };
  const result = spawnSync(process.execPath, [script], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), path.join(cache, 'shuttle', 'shuttle.csv'));
  assert.ok(fs.readFileSync(result.stdout.trim()).equals(fs.readFileSync(path.join(dir, 'shuttle.csv'))));

  const empty = path.join(tmp, 'empty-env');
  fs.mkdirSync(empty);
  const refused = spawnSync(process.execPath, [script], {
    env: { ...env, SHUTTLE_DATA_DIR: empty },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /holds neither shuttle\.csv nor shuttle\.trn\(\.Z\) and shuttle\.tst/);
});
