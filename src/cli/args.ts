// Command-line arguments of `stream-ml`: parsed and checked here, so that a mistake is reported before
// any data is read.
import { parseArgs } from 'node:util';
import { ColumnType, GUESS_ROWS, parseTypes } from './columns';

export const DETECTORS = ['auto', 'gaussian', 'histogram', 'hst', 'ecod'] as const;
export type Detector = (typeof DETECTORS)[number];

export type Threshold =
  { kind: 'fixed'; value: number } | { kind: 'quantile'; q: number } | { kind: 'spot'; risk: number };

export interface EvaluateArgs {
  command: 'evaluate';
  file: string;
  types?: ColumnType[];
  label?: string;
  detector: Detector;
  threshold?: Threshold;
  seed?: number;
  warmup?: number;
  delimiter: string;
  header: boolean;
}

export type Command = EvaluateArgs | { command: 'help'; topic?: string } | { command: 'version' };

export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `Usage: stream-ml evaluate FILE.csv [options]

Replays a CSV file in its order through a stream-ml model: each record is scored by the model as it
stands, then learnt ("score, then learn"), as on a live stream. Prints one JSON object on one line.

Options:
  --types C,C,...,X   one type per column (label column included, or left out): C continuous,
                      B binary 0/1, T category, S string (ignored), X ignore. Without it the types are
                      guessed from the first ${GUESS_ROWS} rows; the guess is in the output ("types",
                      "typesGuessed": true) and on stderr.
  --label NAME        column holding the truth (0/1 or true/false) for evaluation; never learnt.
                      Without it no quality figures are given.
  --detector NAME     auto (default), gaussian, histogram, hst or ecod
  --threshold SPEC    when a record is flagged: q99 (running 99% quantile of the scores; any qNN),
                      spot:1e-4 (extreme-value SPOT with that risk), or a number such as 0.8 (fixed).
                      Default: the engine's.
  --seed N            seed of the randomised detectors (integer)
  --warmup N          records learnt before scores count as more than a warm-up (engine default)
  --delimiter C       field separator (default ","; "tab" for a tab)
  --no-header         the first line is data; columns are named c1, c2, ...
  -h, --help          this help
  -v, --version       the package version

The file may be gzip-compressed (recognised by its content, whatever its name).

Output fields: records (rows replayed), detector, types, typesGuessed, label, rocAuc and
averagePrecision (exact, over every record, warm-up included; null without both classes),
precision, recall, f1 and tp/fp/tn/fn (from each record's own flag, at the threshold in force when
it was scored), threshold (spec and last value), flagged, warmup (records scored while warming up),
invalid (records the engine refused), recordsPerSecond (score + learn only, CSV reading excluded),
seconds (whole run).

Exit codes: 0 done, 1 bad data (e.g. a malformed line, reported by its number), 2 bad usage.`;

export function parseThreshold(spec: string): Threshold {
  const s = spec.trim().toLowerCase();
  let m = /^q(\d+(?:\.\d+)?)$/.exec(s);
  if (m) {
    const v = Number(m[1]);
    // q99 and q99.9 are percentages; q0.99 is a fraction.
    const q = v >= 1 ? v / 100 : v;
    if (!(q > 0 && q < 1)) throw new UsageError(`--threshold ${spec}: a quantile must be between 0 and 100 %`);
    return { kind: 'quantile', q };
  }
  m = /^spot:(.+)$/.exec(s);
  if (m) {
    const risk = Number(m[1]);
    if (!(risk > 0 && risk < 1)) throw new UsageError(`--threshold ${spec}: the SPOT risk must be between 0 and 1`);
    return { kind: 'spot', risk };
  }
  const value = Number(s);
  if (s === '' || !Number.isFinite(value))
    throw new UsageError(`--threshold ${spec}: use qNN (e.g. q99), spot:RISK (e.g. spot:1e-4) or a number`);
  return { kind: 'fixed', value };
}

function integer(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} ${v}: expected an integer >= ${min}`);
  return n;
}

export function parseCommandLine(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        types: { type: 'string' },
        label: { type: 'string' },
        detector: { type: 'string' },
        threshold: { type: 'string' },
        seed: { type: 'string' },
        warmup: { type: 'string' },
        delimiter: { type: 'string' },
        'no-header': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: o, positionals } = parsed;
  if (o.version) return { command: 'version' };
  if (o.help || positionals.length === 0 || positionals[0] === 'help') return { command: 'help' };
  const [command, ...rest] = positionals;
  if (command !== 'evaluate') throw new UsageError(`unknown command ${JSON.stringify(command)} (try: evaluate)`);
  if (rest.length !== 1) throw new UsageError(`evaluate takes one file, got ${rest.length}`);
  const detector = (o.detector ?? 'auto').toLowerCase();
  if (!(DETECTORS as readonly string[]).includes(detector))
    throw new UsageError(`--detector ${o.detector}: use one of ${DETECTORS.join(', ')}`);
  let delimiter = o.delimiter ?? ',';
  if (delimiter === 'tab' || delimiter === '\\t') delimiter = '\t';
  if (delimiter.length !== 1 || delimiter === '"')
    throw new UsageError(`--delimiter ${JSON.stringify(o.delimiter)}: one character other than a quote`);
  let types: ColumnType[] | undefined;
  if (o.types !== undefined) {
    try {
      types = parseTypes(o.types);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return {
    command: 'evaluate',
    file: rest[0],
    types,
    label: o.label,
    detector: detector as Detector,
    threshold: o.threshold === undefined ? undefined : parseThreshold(o.threshold),
    seed: integer('seed', o.seed, -Number.MAX_SAFE_INTEGER),
    warmup: integer('warmup', o.warmup, 0),
    delimiter,
    header: !o['no-header'],
  };
}
