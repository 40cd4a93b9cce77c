import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { CsvError, CsvParser, CsvRow, isGzip, readCsvBatches, readCsvFileSync } from '../../src/cli/csv';
import { convert, guessTypes, isNumeric, labelOf, parseTypes } from '../../src/cli/columns';
import { parseCommandLine, parseThreshold, UsageError } from '../../src/cli/args';

function parse(text: string | string[], delimiter = ','): CsvRow[] {
  const rows: CsvRow[] = [];
  const p = new CsvParser((r) => rows.push(r), delimiter);
  for (const piece of Array.isArray(text) ? text : [text]) p.push(piece);
  p.end();
  return rows;
}

describe('CsvParser', () => {
  it('splits plain rows and gives each its line number', () => {
    assert.deepEqual(parse('a,b,c\n1,2,3\n4,5,6\n'), [
      { fields: ['a', 'b', 'c'], line: 1 },
      { fields: ['1', '2', '3'], line: 2 },
      { fields: ['4', '5', '6'], line: 3 },
    ]);
  });

  it('reads quoted fields with delimiters, doubled quotes and line breaks inside', () => {
    const rows = parse('name,note\n"Smith, J","said ""hi"""\n"multi\nline",x\nlast,"\r\n"\n');
    assert.deepEqual(
      rows.map((r) => r.fields),
      [
        ['name', 'note'],
        ['Smith, J', 'said "hi"'],
        ['multi\nline', 'x'],
        ['last', '\r\n'],
      ],
    );
    // The row with the embedded line break starts on line 3; the next one on line 5.
    assert.deepEqual(
      rows.map((r) => r.line),
      [1, 2, 3, 5],
    );
  });

  it('gives the same rows whatever the chunk boundaries, with CRLF, a BOM and no final newline', () => {
    const text = '\ufeffa,b\r\n"x,""y""",2\r\n\r\n3,\r\n,4';
    const whole = parse(text);
    assert.deepEqual(
      whole.map((r) => r.fields),
      [
        ['a', 'b'],
        ['x,"y"', '2'],
        ['3', ''],
        ['', '4'],
      ],
    );
    assert.deepEqual(
      whole.map((r) => r.line),
      [1, 2, 4, 5],
    );
    for (let cut = 1; cut < text.length; cut++) {
      assert.deepEqual(parse([text.slice(0, cut), text.slice(cut)]), whole, `cut at ${cut}`);
    }
    assert.deepEqual(parse(text.split('')), whole);
  });

  it('uses another delimiter when told', () => {
    assert.deepEqual(
      parse('a;b\n"1;2";3\n', ';').map((r) => r.fields),
      [
        ['a', 'b'],
        ['1;2', '3'],
      ],
    );
    assert.deepEqual(parse('a\tb\n', '\t')[0].fields, ['a', 'b']);
  });

  it('reports malformed input by its line number', () => {
    const at = (text: string): number => {
      try {
        parse(text);
      } catch (e) {
        assert.ok(e instanceof CsvError);
        return e.line;
      }
      assert.fail('no error');
    };
    assert.equal(at('a,b\n1,2\n3,4"x\n'), 3);
    assert.equal(at('a,b\n"1"x,2\n'), 2);
    assert.equal(at('a,b\n1,2\n"open,3\n4,5\n'), 3);
    assert.throws(() => parse('a,b\n1,"2'), /line 2: a quoted field is not closed/);
    assert.throws(() => new CsvParser(() => undefined, '"'), /delimiter/);
  });
});

describe('reading CSV files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-ml-csv-'));
  const text = 'x,y\n1,"a"\n2,"b\nc"\n';
  const plain = path.join(dir, 'plain.csv');
  // Named .csv although compressed: the content decides, not the name.
  const gz = path.join(dir, 'packed.csv');
  fs.writeFileSync(plain, text);
  fs.writeFileSync(gz, zlib.gzipSync(text));

  it('recognises gzip by its first two bytes', () => {
    assert.equal(isGzip(fs.readFileSync(gz)), true);
    assert.equal(isGzip(fs.readFileSync(plain)), false);
    assert.equal(isGzip(new Uint8Array([0x1f])), false);
  });

  it('reads plain and gzip files alike, whole or in batches', async () => {
    const expected = [
      { fields: ['x', 'y'], line: 1 },
      { fields: ['1', 'a'], line: 2 },
      { fields: ['2', 'b\nc'], line: 3 },
    ];
    assert.deepEqual(readCsvFileSync(plain), expected);
    assert.deepEqual(readCsvFileSync(gz), expected);
    for (const f of [plain, gz]) {
      const rows: CsvRow[] = [];
      for await (const batch of readCsvBatches(f)) rows.push(...batch);
      assert.deepEqual(rows, expected);
    }
  });

  it('reads a file larger than one chunk in order', async () => {
    const big = path.join(dir, 'big.csv.gz');
    const lines = ['i,s'];
    for (let i = 0; i < 60000; i++) lines.push(`${i},"v ""${i}"""`);
    fs.writeFileSync(big, zlib.gzipSync(lines.join('\n') + '\n'));
    let n = 0;
    let batches = 0;
    for await (const batch of readCsvBatches(big)) {
      batches++;
      for (const r of batch) {
        if (n > 0) assert.deepEqual(r.fields, [String(n - 1), `v "${n - 1}"`]);
        assert.equal(r.line, n + 1);
        n++;
      }
    }
    assert.equal(n, 60001);
    assert.ok(batches > 1);
  });

  it('says a damaged gzip file is damaged', async () => {
    const bad = path.join(dir, 'bad.csv.gz');
    fs.writeFileSync(bad, zlib.gzipSync(text).subarray(0, 12));
    await assert.rejects(async () => {
      for await (const _ of readCsvBatches(bad)) void _;
    }, /damaged gzip|unexpected end/);
  });
});

describe('column types', () => {
  it('parses --types and refuses unknown codes', () => {
    assert.deepEqual(parseTypes('C,b, T ,S,x'), ['C', 'B', 'T', 'S', 'X']);
    assert.throws(() => parseTypes('C,Q'), /column 2 has type "Q"/);
  });

  it('guesses C, B, T, S and X from sample rows, and X for the label', () => {
    const rows: string[][] = [];
    for (let i = 0; i < 100; i++)
      rows.push([
        String(i * 1.5),
        i % 2 ? '1' : '0',
        ['red', 'green'][i % 2],
        `id-${i}`,
        '',
        i % 3 ? 'true' : 'FALSE',
        '0',
      ]);
    assert.deepEqual(guessTypes(7, rows), ['C', 'B', 'T', 'S', 'X', 'B', 'B']);
    assert.deepEqual(guessTypes(7, rows, 1), ['C', 'X', 'T', 'S', 'X', 'B', 'B']);
    // Missing values are ignored; numbers mixed with words make a category.
    assert.deepEqual(
      guessTypes(2, [
        ['1e3', '3'],
        ['', 'x'],
        ['-.5', '4'],
      ]),
      ['C', 'T'],
    );
  });

  it('converts fields to the values the engine expects', () => {
    assert.equal(convert('C', ' -1.5e2 '), -150);
    assert.equal(convert('C', ''), undefined);
    assert.equal(convert('C', 'abc'), 'abc');
    assert.equal(convert('B', 'True'), 1);
    assert.equal(convert('B', '0'), 0);
    assert.equal(convert('T', 'Red'), 'Red');
    assert.equal(convert('X', '5'), undefined);
    assert.equal(isNumeric('0x10'), false);
    assert.equal(isNumeric('Infinity'), false);
    assert.equal(labelOf('1'), 1);
    assert.equal(labelOf('0.0'), 0);
    assert.equal(labelOf('true'), 1);
    assert.ok(Number.isNaN(labelOf('')));
  });
});

describe('command line', () => {
  it('parses an evaluate command with every option', () => {
    assert.deepEqual(
      parseCommandLine([
        'evaluate',
        'f.csv',
        '--types',
        'C,C,X',
        '--label',
        'y',
        '--detector',
        'HST',
        '--threshold',
        'q99.5',
        '--seed',
        '7',
        '--warmup',
        '100',
        '--delimiter',
        'tab',
        '--no-header',
      ]),
      {
        command: 'evaluate',
        file: 'f.csv',
        types: ['C', 'C', 'X'],
        label: 'y',
        detector: 'hst',
        threshold: { kind: 'quantile', q: 0.995 },
        seed: 7,
        warmup: 100,
        delimiter: '\t',
        header: false,
      },
    );
    assert.deepEqual(parseCommandLine(['--help']), { command: 'help' });
    assert.deepEqual(parseCommandLine([]), { command: 'help' });
    assert.deepEqual(parseCommandLine(['-v']), { command: 'version' });
  });

  it('reads the three kinds of threshold', () => {
    assert.deepEqual(parseThreshold('q99'), { kind: 'quantile', q: 0.99 });
    assert.deepEqual(parseThreshold('q0.95'), { kind: 'quantile', q: 0.95 });
    assert.deepEqual(parseThreshold('spot:1e-4'), { kind: 'spot', risk: 1e-4 });
    assert.deepEqual(parseThreshold('0.8'), { kind: 'fixed', value: 0.8 });
    assert.throws(() => parseThreshold('q100'), UsageError);
    assert.throws(() => parseThreshold('spot:2'), UsageError);
    assert.throws(() => parseThreshold('high'), UsageError);
  });

  it('refuses mistakes with a usage error', () => {
    assert.throws(() => parseCommandLine(['train', 'f.csv']), /unknown command "train"/);
    assert.throws(() => parseCommandLine(['evaluate']), /one file/);
    assert.throws(() => parseCommandLine(['evaluate', 'f', '--detector', 'forest']), /use one of auto/);
    assert.throws(() => parseCommandLine(['evaluate', 'f', '--seed', '1.5']), /integer/);
    assert.throws(() => parseCommandLine(['evaluate', 'f', '--types', 'C,Z']), UsageError);
    assert.throws(() => parseCommandLine(['evaluate', 'f', '--bogus']), UsageError);
  });
});
