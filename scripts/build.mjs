#!/usr/bin/env node
// Compiles the TypeScript to dist/ and puts the editor files (.html, locales, icons) of each node and each editor
// plugin beside its .js, where Node-RED looks for them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);

for (const kind of ['nodes', 'plugins']) {
  const dir = path.join(root, kind);
  for (const name of fs.readdirSync(dir)) {
    const from = path.join(dir, name);
    if (!fs.statSync(from).isDirectory()) continue;
    fs.cpSync(from, path.join(root, 'dist', kind, name), {
      recursive: true,
      filter: (source) => fs.statSync(source).isDirectory() || !source.endsWith('.ts'),
    });
  }
}
