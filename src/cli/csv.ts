// A small streaming CSV reader (RFC 4180: quoted fields, "" inside quotes, CRLF or LF line ends) that
// reads plain or gzip-compressed files (told apart by their first two bytes, not their name) and
// reports malformed input by the line it is on.
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import zlib from 'node:zlib';

export class CsvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

export interface CsvRow {
  fields: string[];
  /** 1-based line of the file on which the row starts (the header is line 1). */
  line: number;
}

const QUOTE = 34;
const LF = 10;
const CR = 13;

const enum State {
  FieldStart,
  Unquoted,
  Quoted,
  // A quote was seen inside a quoted field: either the closing quote or the first of "".
  QuoteInQuoted,
}

/** Push text in any pieces; complete rows come out through onRow in order. Blank lines are skipped. */
export class CsvParser {
  private state = State.FieldStart;
  private fields: string[] = [];
  private field = '';
  private line = 1;
  private rowLine = 1;
  private afterCR = false;
  private started = false;
  private readonly delim: number;

  constructor(
    private readonly onRow: (row: CsvRow) => void,
    delimiter = ',',
  ) {
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r')
      throw new RangeError(`the delimiter must be one character other than a quote or a line end`);
    this.delim = delimiter.charCodeAt(0);
  }

  push(text: string): void {
    let i = 0;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) i = 1; // byte order mark
    }
    const n = text.length;
    const delim = this.delim;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (this.afterCR) {
        this.afterCR = false;
        if (c === LF) {
          i++;
          continue;
        }
      }
      switch (this.state) {
        case State.FieldStart:
        case State.Unquoted: {
          if (this.state === State.FieldStart && c === QUOTE) {
            this.state = State.Quoted;
            i++;
            break;
          }
          // Take the run of plain characters in one slice.
          let j = i;
          let d = c;
          while (j < n && d !== delim && d !== LF && d !== CR && d !== QUOTE) d = text.charCodeAt(++j);
          if (j > i) {
            this.field += text.slice(i, j);
            this.state = State.Unquoted;
          }
          i = j;
          if (j === n) break;
          if (d === QUOTE)
            throw new CsvError(
              this.line,
              'a quote inside an unquoted field (quote the whole field and double the quote)',
            );
          this.endField();
          if (d !== delim) this.endLine(d);
          i++;
          break;
        }
        case State.Quoted: {
          let j = i;
          let d = c;
          while (j < n && d !== QUOTE) {
            if (d === LF) this.line++;
            d = text.charCodeAt(++j);
          }
          this.field += text.slice(i, j);
          i = j;
          if (j < n) {
            this.state = State.QuoteInQuoted;
            i++;
          }
          break;
        }
        case State.QuoteInQuoted:
          if (c === QUOTE) {
            this.field += '"';
            this.state = State.Quoted;
          } else if (c === delim) {
            this.endField();
          } else if (c === LF || c === CR) {
            this.endField();
            this.endLine(c);
          } else {
            throw new CsvError(this.line, `unexpected ${JSON.stringify(text[i])} after a closing quote`);
          }
          i++;
          break;
      }
    }
  }

  /** Call once at the end of the input: emits the last row, or throws if a quoted field is open. */
  end(): void {
    if (this.state === State.Quoted) throw new CsvError(this.rowLine, 'a quoted field is not closed');
    if (this.state !== State.FieldStart || this.fields.length > 0) {
      this.endField();
      this.emit();
    }
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.state = State.FieldStart;
  }

  private endLine(c: number): void {
    this.emit();
    this.afterCR = c === CR;
    this.line++;
    this.rowLine = this.line;
  }

  private emit(): void {
    const fields = this.fields;
    this.fields = [];
    // A blank line gives a single empty field: not a row.
    if (!(fields.length === 1 && fields[0] === '')) this.onRow({ fields, line: this.rowLine });
    this.rowLine = this.line;
  }
}

/** True when the bytes start with gzip's magic number. */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

function fileIsGzip(path: string): boolean {
  const fd = fs.openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const n = fs.readSync(fd, head, 0, 2, 0);
    return isGzip(head.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a CSV file (plain or gzip) as batches of rows, one batch per chunk read, in order. */
export async function* readCsvBatches(path: string, delimiter = ','): AsyncGenerator<CsvRow[]> {
  const gz = fileIsGzip(path);
  const file = fs.createReadStream(path, { highWaterMark: 256 * 1024 });
  const source: AsyncIterable<Buffer> = gz ? file.pipe(zlib.createGunzip()) : file;
  const decoder = new StringDecoder('utf8');
  let batch: CsvRow[] = [];
  const parser = new CsvParser((row) => batch.push(row), delimiter);
  try {
    for await (const chunk of source) {
      parser.push(decoder.write(chunk));
      if (batch.length > 0) {
        yield batch;
        batch = [];
      }
    }
  } catch (e) {
    if (e instanceof CsvError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (gz && err.code?.startsWith('Z_')) throw new Error(`${path}: damaged gzip data (${err.message})`);
    throw e;
  } finally {
    file.destroy();
  }
  parser.push(decoder.end());
  parser.end();
  if (batch.length > 0) yield batch;
}

/** Reads a whole CSV file (plain or gzip) at once. */
export function readCsvFileSync(path: string, delimiter = ','): CsvRow[] {
  let bytes: Buffer = fs.readFileSync(path);
  if (isGzip(bytes)) bytes = zlib.gunzipSync(bytes);
  const rows: CsvRow[] = [];
  const parser = new CsvParser((row) => rows.push(row), delimiter);
  parser.push(bytes.toString('utf8'));
  parser.end();
  return rows;
}
