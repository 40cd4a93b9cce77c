// Every option a node's dialog shows is explained in its Help tab: each en-US dialog label (what the user reads
// beside a field) appears in the node's help text, and every node has help with properties documented.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../support/env';

const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
  'node-red': { nodes: Record<string, string> };
};
const types = Object.keys(pkg['node-red'].nodes);

/** Lower-case text with tags, entities and line breaks flattened, as a reader sees it. */
function plain(html: string): string {
  return html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .toLowerCase();
}

for (const type of types) {
  test(`${type}: the help explains every dialog label`, () => {
    const dir = path.join(projectRoot, 'nodes', type);
    const html = fs.readFileSync(path.join(dir, `${type}.html`), 'utf8');
    const help = new RegExp(`<script type="text/html" data-help-name="${type}">([\\s\\S]*?)</script>`).exec(html)?.[1];
    assert.ok(help, `${type}.html has a help section`);
    assert.match(help, /<h3>Properties<\/h3>/);
    const locale = JSON.parse(fs.readFileSync(path.join(dir, 'locales', 'en-US', `${type}.json`), 'utf8')) as Record<
      string,
      { label?: Record<string, string> }
    >;
    const labels = Object.entries(locale[type]?.label ?? {}).filter(([key]) => key !== 'name');
    assert.ok(labels.length >= 5, `${type} has its dialog labels in the locale`);
    // Labels used in the dialog template are the ones that matter.
    const used = labels.filter(([key]) => html.includes(`${type}.label.${key}"`));
    assert.ok(used.length >= 5, `${type}'s dialog uses its locale labels`);
    const text = plain(help);
    const missing = used.filter(([, label]) => !text.includes(plain(label).trim())).map(([, label]) => label);
    assert.deepEqual(missing, [], `dialog labels of ${type} not found in its help`);
  });
}
