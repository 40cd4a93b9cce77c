#!/usr/bin/env node
// The package's command line: `stream-ml evaluate FILE.csv ...` (see USAGE in args.ts).
import fs from 'node:fs';
import path from 'node:path';
import { parseCommandLine, USAGE, UsageError } from './args';
import { CsvError } from './csv';
import { EngineApi, evaluate } from './evaluate';

function version(): string {
  // dist/src/cli -> package root
  const pkg = path.resolve(__dirname, '..', '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const warn = (s: string): void => {
    process.stderr.write(`stream-ml: ${s}\n`);
  };
  let file = 'input';
  try {
    const cmd = parseCommandLine(argv);
    if (cmd.command === 'help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (cmd.command === 'version') {
      process.stdout.write(version() + '\n');
      return 0;
    }
    file = cmd.file;
    if (!fs.existsSync(cmd.file)) throw new UsageError(`${cmd.file}: no such file`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const engine = require('../engine') as EngineApi;
    const result = await evaluate(cmd, engine, warn);
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      warn(e.message);
      warn('see stream-ml --help');
      return 2;
    }
    if (e instanceof CsvError) {
      warn(`${file}: ${e.message}`);
      return 1;
    }
    warn((e as Error).message ?? String(e));
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`stream-ml: ${String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
