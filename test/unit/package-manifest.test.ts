// What the Node-RED Flow Library scorecard checks of package.json, as far as it can be checked offline.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { projectRoot } from '../support/env';

interface Manifest {
  name: string;
  license?: string;
  repository?: { url?: string };
  keywords?: string[];
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  'node-red': { version: string; nodes: Record<string, string>; plugins?: Record<string, string> };
}
const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as Manifest;

test('licence, repository and the node-red keyword are declared', () => {
  assert.ok(pkg.license && fs.existsSync(path.join(projectRoot, 'LICENSE')));
  assert.match(pkg.repository?.url ?? '', /^git\+https:\/\//);
  assert.ok(pkg.keywords?.includes('node-red'));
});

test('node-red.version admits Node-RED 4 and 5, engines.node admits Node 20 and 22', () => {
  for (const v of ['4.1.8', '5.0.7']) assert.ok(semver.satisfies(v, pkg['node-red'].version), `Node-RED ${v}`);
  for (const v of ['20.0.0', '22.9.0']) assert.ok(semver.satisfies(v, pkg.engines?.node ?? ''), `Node ${v}`);
});

test('at most 6 runtime dependencies, all pure JavaScript (no install scripts, native addons or WebAssembly)', () => {
  const deps = Object.keys(pkg.dependencies ?? {});
  assert.ok(deps.length <= 6, deps.join(', '));
  for (const dep of deps) {
    const dir = path.join(projectRoot, 'node_modules', dep);
    const depPkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    assert.equal(depPkg.gypfile, undefined, `${dep} builds a native addon`);
    assert.equal(depPkg.scripts?.install, undefined, `${dep} runs an install script`);
    assert.equal(depPkg.scripts?.postinstall, undefined, `${dep} runs a postinstall script`);
    const binaries = fs
      .readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => /\.(node|wasm)$/.test(f));
    assert.deepEqual(binaries, [], `${dep} ships native or WebAssembly code`);
  }
});

test('node type names share the stream-ml- prefix and each has its editor file beside it', () => {
  for (const [type, file] of Object.entries(pkg['node-red'].nodes)) {
    assert.match(type, /^stream-ml-/);
    assert.ok(fs.existsSync(path.join(projectRoot, file)), file);
    assert.ok(fs.existsSync(path.join(projectRoot, file.replace(/\.js$/, '.html'))), `${file} has no .html`);
  }
});

test('the sidebar is an editor plugin: declared, with its runtime, editor and en-US locale files built beside it', () => {
  const plugins = pkg['node-red'].plugins ?? {};
  assert.deepEqual(Object.keys(plugins), ['stream-ml-sidebar']);
  for (const [id, file] of Object.entries(plugins)) {
    assert.match(file, /^dist\/plugins\//);
    const js = path.join(projectRoot, file);
    assert.ok(fs.existsSync(js), file);
    // Node-RED pairs the editor half by file name and reads locales/<lang>/<name>.json beside it.
    const html = js.replace(/\.js$/, '.html');
    assert.ok(fs.existsSync(html), `${file} has no .html`);
    const base = path.basename(file, '.js');
    const locale = path.join(path.dirname(js), 'locales', 'en-US', `${base}.json`);
    assert.ok(fs.existsSync(locale), `${file} has no en-US locale`);
    assert.ok(JSON.parse(fs.readFileSync(locale, 'utf8'))[id], `the locale holds the ${id} strings`);
    // Both halves register the plugin under the same id.
    assert.ok(fs.readFileSync(html, 'utf8').includes(`RED.plugins.registerPlugin('${id}'`), `${id} in the .html`);
    assert.ok(fs.readFileSync(js, 'utf8').includes(`registerPlugin('${id}'`), `${id} in the .js`);
  }
});

test('every non-config node is used in an example flow', () => {
  const dir = path.join(projectRoot, 'examples');
  const used = new Set<string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    for (const node of JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { type: string }[])
      used.add(node.type);
  }
  for (const type of Object.keys(pkg['node-red'].nodes)) {
    if (type === 'stream-ml-kafka-broker') continue;
    assert.ok(used.has(type), `${type} appears in no example`);
  }
});

test('every example flow parses and its node ids are unique', () => {
  const dir = path.join(projectRoot, 'examples');
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const ids = (JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { id: string }[]).map((n) => n.id);
    assert.equal(new Set(ids).size, ids.length, `${file} repeats a node id`);
  }
});

test('npm pack ships only dist (src, nodes, plugins), examples, README, LICENSE and package.json', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  const files = (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  assert.ok(files.length > 5);
  for (const file of files) {
    assert.match(file, /^(dist\/(src|nodes|plugins)\/|examples\/|README\.md$|LICENSE$|package\.json$)/, file);
  }
  assert.ok(files.some((f) => f.startsWith('dist/nodes/')));
  for (const file of Object.values(pkg['node-red'].plugins ?? {})) {
    const locale = path.posix.join(
      path.posix.dirname(file),
      'locales',
      'en-US',
      path.posix.basename(file, '.js') + '.json',
    );
    for (const shipped of [file, file.replace(/\.js$/, '.html'), locale]) assert.ok(files.includes(shipped), shipped);
  }
  assert.ok(!files.some((f) => f.startsWith('dist/test/')));
});
