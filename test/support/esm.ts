// Loads one of the project's ES module scripts (scripts/*.mjs) from these CommonJS tests. TypeScript compiles
// `import()` to `require()` under "module": "commonjs", so the import is built at run time to stay a real one.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectRoot } from './env';

const dynamicImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** `scripts/<name>` of this project, as an ES module namespace typed by the caller. */
export async function importScript<T>(name: string): Promise<T> {
  return (await dynamicImport(pathToFileURL(path.join(projectRoot, 'scripts', name)).href)) as T;
}
