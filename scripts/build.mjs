#!/usr/bin/env node
// Compiles the TypeScript to dist/ and puts each node's editor files (.html, locales, icons) beside its .js,
// where Node-RED looks for them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);

const nodesDir = path.join(root, 'nodes');
for (const type of fs.readdirSync(nodesDir)) {
  const from = path.join(nodesDir, type);
  if (!fs.statSync(from).isDirectory()) continue;
  fs.cpSync(from, path.join(root, 'dist', 'nodes', type), {
    recursive: true,
    filter: (source) => fs.statSync(source).isDirectory() || !source.endsWith('.ts'),
  });
}
