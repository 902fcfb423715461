import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Options of one `npm run bench` run. */
export interface BenchOptions {
  /** Repetitions of every scenario. The report shows medians. */
  repeat: number;
  /** Tiny sizes that finish in seconds, too small for the timing targets to mean much. */
  quick: boolean;
  /** Markdown report to create or update. */
  outFile: string;
  /** The command line as typed, for the report. */
  command: string;
}

export const DEFAULT_REPEAT = 3;

/** dist/bench/ sits two levels below the project root, as src/bench/ does. */
const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const USAGE = `Usage: node dist/bench/run-bench.js [--repeat N] [--quick] [--out FILE]

  --repeat N   runs of every scenario, reported as medians (default ${DEFAULT_REPEAT})
  --quick      tiny sizes for a smoke run of a few seconds
  --out FILE   markdown report to write (default docs/benchmarks.md)
  --help       show this help`;

/** Parses the bench's arguments, or returns 'help'. Throws a `TypeError` naming the invalid option. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      repeat: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help === true) return 'help';

  const repeat = values.repeat === undefined ? DEFAULT_REPEAT : Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50) {
    throw new TypeError(`Invalid \`--repeat\` ${values.repeat}: expected a whole number from 1 to 50.`);
  }

  return {
    repeat,
    quick: values.quick === true,
    outFile: path.resolve(values.out ?? path.join(PROJECT_ROOT, 'docs', 'benchmarks.md')),
    command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
  };
}
