// Installed as a user installs it: `npm pack` the built package, `npm install <tarball>` into a fresh Node-RED
// user folder with the palette manager's flags, start the real `node-red` command on that folder, and find every
// node type registered from this module, its examples in the library the editor's Import > Examples reads, and
// both in the editor itself; then the example without a broker runs as imported, its Shuttle data node downloading
// the data from a stand-in for the UCI archive (first down, then up). Screenshots: test-results/screenshots/install-*.png.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { browserUnavailable, launchBrowser, screenshot } from '../support/browser';
import { projectRoot, shuttleMissing } from '../support/env';
import { serveUciArchive } from '../support/uci-archive';

const pkg = require(path.join(projectRoot, 'package.json')) as {
  name: string;
  version: string;
  'node-red': { nodes: Record<string, string>; plugins: Record<string, string> };
};
const types = Object.keys(pkg['node-red'].nodes);
const exampleNames = fs
  .readdirSync(path.join(projectRoot, 'examples'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

interface NodeSet {
  id: string;
  module: string;
  version: string;
  types: string[];
  enabled: boolean;
  err?: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], cwd: string, timeoutMs: number): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

describe('installed from the npm pack tarball into a fresh Node-RED user folder', () => {
  let tmp: string;
  let userDir: string;
  let tarball: string;
  let packed: string[];
  let nodeRed: ChildProcess | undefined;
  let log = '';
  let base: string;
  // The stand-in UCI archive's address, known to the node-red process from its start; nothing listens there
  // until the test starts the stand-in, so the first replay meets an archive that is down.
  let archivePort: number;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-install-'));
    // `npm test` has just built dist/; packing without the prepack build keeps this test from rebuilding it.
    assert.ok(fs.existsSync(path.join(projectRoot, pkg['node-red'].nodes[types[0]])), 'dist/ is built');
    const [info] = JSON.parse(
      run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], projectRoot, 120_000),
    ) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(tmp, info.filename);
    packed = info.files.map((f) => f.path);

    // What Node-RED's palette manager does in the user folder (@node-red/registry installer.js).
    userDir = path.join(tmp, 'node-red-user');
    fs.mkdirSync(userDir);
    fs.writeFileSync(
      path.join(userDir, 'package.json'),
      JSON.stringify({ name: 'node-red-project', description: 'A Node-RED Project', version: '0.0.1', private: true }),
    );
    run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-update-notifier',
        '--no-fund',
        '--save',
        '--save-prefix=~',
        '--omit=dev',
        '--engine-strict',
        tarball,
      ],
      userDir,
      300_000,
    );

    const port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    archivePort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // Otherwise the editor opens with the update-notification prompt over everything.
      NODE_RED_DISABLE_TELEMETRY: '1',
      STREAM_ML_UCI_URL: `http://127.0.0.1:${archivePort}`,
    };
    // A palette user has no SHUTTLE_CSV.
    delete env.SHUTTLE_CSV;
    const redJs = path.join(path.dirname(require.resolve('node-red/package.json')), 'red.js');
    nodeRed = spawn(process.execPath, [redJs, '-u', userDir, '-p', String(port)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    nodeRed.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    nodeRed.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    const deadline = Date.now() + 60_000;
    while (!/Started flows/.test(log)) {
      if (nodeRed.exitCode !== null) throw new Error(`node-red exited:\n${log}`);
      if (Date.now() > deadline) throw new Error(`node-red did not start within 60 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  after(async () => {
    if (nodeRed && nodeRed.exitCode === null && nodeRed.signalCode === null) {
      const exited = new Promise((r) => nodeRed!.once('exit', r));
      nodeRed.kill('SIGINT');
      const timer = setTimeout(() => nodeRed!.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const get = async (url: string) => {
    const response = await fetch(new URL(url, base), { headers: { Accept: 'application/json' } });
    assert.equal(response.status, 200, `GET ${url}`);
    return response.json() as Promise<unknown>;
  };

  test('the tarball holds the built nodes, their editor files and the examples, and no tests', () => {
    for (const file of Object.values(pkg['node-red'].nodes)) {
      assert.ok(packed.includes(file), `${file} packed`);
      assert.ok(packed.includes(file.replace(/\.js$/, '.html')), `${file.replace(/\.js$/, '.html')} packed`);
    }
    for (const file of Object.values(pkg['node-red'].plugins)) {
      for (const part of [file, file.replace(/\.js$/, '.html')]) assert.ok(packed.includes(part), `${part} packed`);
    }
    for (const name of exampleNames) assert.ok(packed.includes(`examples/${name}.json`), `example ${name} packed`);
    assert.deepEqual(
      packed.filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.endsWith('.ts.map')),
      [],
    );
  });

  test('node-red registers every node type from module node-red-contrib-stream-ml', async () => {
    const sets = (await get('nodes')) as NodeSet[];
    const ours = sets.filter((s) => s.module === pkg.name);
    assert.deepEqual(ours.flatMap((s) => s.types).sort(), [...types].sort());
    for (const set of ours) {
      assert.equal(set.enabled, true, `${set.id} enabled`);
      assert.equal(set.err, undefined, `${set.id} loaded without error`);
      assert.equal(set.version, pkg.version);
    }
    // Loaded from the user folder, where the install put it, as a module the user installed.
    const info = (await get(`nodes/${pkg.name}`)) as { path?: string; user?: boolean; local?: boolean };
    assert.equal(info.local, true);
    assert.equal(info.user, true);
    assert.equal(fs.realpathSync(info.path!), fs.realpathSync(path.join(userDir, 'node_modules', pkg.name)));
    assert.doesNotMatch(log, /\[error\]/);
  });

  test('node-red loads the sidebar plugin, with its editor part and its messages', async () => {
    const sets = (await get('plugins')) as (NodeSet & { plugins: { id: string; type: string }[]; editor?: boolean })[];
    const ours = sets.filter((s) => s.module === pkg.name);
    assert.deepEqual(
      ours.flatMap((s) => s.plugins.map((p) => p.id)),
      Object.keys(pkg['node-red'].plugins),
    );
    for (const set of ours) {
      assert.equal(set.enabled, true, `${set.id} enabled`);
      assert.equal(set.err, undefined, `${set.id} loaded without error`);
    }
    const editor = await fetch(new URL('plugins', base), { headers: { Accept: 'text/html' } });
    assert.match(await editor.text(), /RED\.plugins\.registerPlugin\('stream-ml-sidebar'/);
    const messages = (await get('plugins/messages?lng=en-US')) as Record<
      string,
      { 'stream-ml-sidebar'?: { name?: string } }
    >;
    assert.ok(messages[`${pkg.name}/stream-ml-sidebar`]?.['stream-ml-sidebar']?.name, JSON.stringify(messages));
  });

  test('its examples are in the library that Import > Examples lists', async () => {
    const modules = (await get('library/examples/flows/')) as string[];
    assert.ok(modules.includes(pkg.name), `examples of ${pkg.name} listed`);
    const listed = (await get(`library/examples/flows/${pkg.name}`)) as { fn?: string }[];
    assert.deepEqual(listed.map((e) => e.fn).sort(), exampleNames);
    for (const name of exampleNames) {
      const flow = await get(`library/examples/flows/${pkg.name}/${encodeURIComponent(name)}`);
      const file = JSON.parse(fs.readFileSync(path.join(projectRoot, 'examples', `${name}.json`), 'utf8'));
      assert.deepEqual(flow, file, `example ${name} served as in the package`);
    }
  });

  test('the editor shows the nodes in the palette and the examples under Import > Examples', async (t) => {
    const unavailable = browserUnavailable();
    if (unavailable) return t.skip(unavailable);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(base);
      for (const type of types.filter((x) => x !== 'stream-ml-kafka-broker')) {
        await page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`).waitFor({ state: 'attached' });
      }
      // A fresh user folder opens with the welcome tour; a user closes it with Escape.
      const tour = page.locator('.red-ui-tourGuide-shade');
      if (
        await tour.waitFor({ timeout: 10_000 }).then(
          () => true,
          () => false,
        )
      ) {
        await page.keyboard.press('Escape');
        await tour.waitFor({ state: 'detached' });
        await page.locator('.red-ui-tourGuide-popover').waitFor({ state: 'hidden' });
      }
      await page.locator('.red-ui-palette-header', { hasText: 'stream ML' }).scrollIntoViewIfNeeded();
      await screenshot(page, 'install-palette');
      await page.locator('#red-ui-header-button-sidemenu').click();
      await page.locator('#menu-item-import').click();
      const dialog = page.locator('.ui-dialog', { has: page.locator('#red-ui-clipboard-dialog') });
      await dialog.locator('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a').click();
      const tree = dialog.locator('#red-ui-clipboard-dialog-import-tab-examples');
      await tree.locator('.red-ui-treeList-label', { hasText: pkg.name }).click();
      for (const name of exampleNames) {
        await tree.locator('.red-ui-treeList-label', { hasText: name }).waitFor();
      }
      await screenshot(page, 'install-examples');
    } finally {
      await browser.close();
    }
  });
  test(
    'the example without a broker runs as imported: its Shuttle data node downloads the data once, or says why not',
    { skip: shuttleMissing() },
    async () => {
      const name = 'Shuttle anomaly detection without a broker';
      const example = JSON.parse(fs.readFileSync(path.join(projectRoot, 'examples', `${name}.json`), 'utf8')) as {
        id: string;
        type: string;
        wires?: string[][];
        [key: string]: unknown;
      }[];
      // Dashboard 2.0 is not installed in this user folder: its widgets are left out, as a user without it would.
      const ui = new Set(example.filter((n) => n.type.startsWith('ui-')).map((n) => n.id));
      const flow = example
        .filter((n) => !ui.has(n.id))
        .map((n) => ({ ...n, wires: n.wires?.map((port) => port.filter((id) => !ui.has(id))) }));
      const deployed = await fetch(new URL('flows', base), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
        body: JSON.stringify(flow),
      });
      assert.equal(deployed.status, 204, await deployed.text());
      const replay = flow.find((n) => n.type === 'inject')!.id;
      const dataNode = flow.find((n) => n.type === 'stream-ml-sample-data')!;
      const until = async <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) => {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const value = await probe();
          if (value !== undefined) return value;
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${log}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      // The inject button answers 404 until the deployed flow has started.
      const press = () =>
        until('the replay button', async () => {
          const status = (await fetch(new URL(`inject/${replay}`, base), { method: 'POST' })).status;
          return status === 200 ? true : undefined;
        });
      const dataDir = path.join(userDir, 'stream-ml-data', 'shuttle');
      const archive = `http://127.0.0.1:${archivePort}`;

      // The archive is down: the node's error (log, debug sidebar, Catch) says what failed and what to do.
      await press();
      const failure = await until(
        'the download error',
        () => /\[error\] \[stream-ml-sample-data:[^\]]*\] (could not download the Shuttle data.*)/.exec(log)?.[1],
      );
      assert.match(failure, new RegExp(`GET ${archive}/.*ECONNREFUSED`));
      assert.ok(failure.includes(`Download ${archive}/static/public/148/statlog+shuttle.zip yourself`), failure);
      assert.ok(failure.includes(`into ${dataDir}`), failure);
      assert.match(failure, /SHUTTLE_CSV/);
      const unavailable = browserUnavailable();
      if (!unavailable) {
        const browser = await launchBrowser();
        try {
          const page = await browser.newPage();
          await page.goto(base);
          const status = page.locator(`[id="${dataNode.id}"] .red-ui-flow-node-status-label`);
          await status.waitFor();
          // The editor shows the status the node set before it opened.
          assert.equal(await status.textContent(), 'no Shuttle data: see the debug sidebar');
          await screenshot(page, 'install-example-offline');
        } finally {
          await browser.close();
        }
      }

      // The archive is up: one download, kept in the user folder, and the model learns and is evaluated.
      const standIn = await serveUciArchive(archivePort);
      try {
        await press();
        type Models = { name: string; recordsLearned: number; evaluation?: { rocAuc: number } }[];
        const shuttle = await until('the model learning with a live ROC-AUC', async () => {
          const m = ((await get('stream-ml/models')) as Models).find((x) => x.name === 'shuttle');
          return m && m.recordsLearned >= 2000 && Number.isFinite(m.evaluation?.rocAuc) ? m : undefined;
        });
        assert.ok(shuttle.evaluation!.rocAuc > 0.9, `ROC-AUC ${shuttle.evaluation!.rocAuc}`);
        assert.deepEqual(standIn.hits, ['/static/public/148/statlog+shuttle.zip']);
        assert.ok(fs.existsSync(path.join(dataDir, 'shuttle.csv')));
        // Another replay reads the kept copy.
        const sent = new RegExp(`sending 49097 records from ${path.join(dataDir, 'shuttle.csv')}`, 'g');
        await press();
        await until('the second replay', () => ((log.match(sent)?.length ?? 0) >= 2 ? true : undefined));
        assert.equal(standIn.hits.length, 1, standIn.hits.join(', '));
      } finally {
        await standIn.close();
      }
    },
  );
});
