import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

import { parseBenchOptions, USAGE } from './bench-options.js';
import { benchSizes } from './bench-scenarios.js';
import { QUICK_SIZES_NOTE, writeBenchmarksDoc } from './benchmarks-doc.js';
import { killRunningChildren } from './child-runner.js';
import { diskSpaceProblem } from './disk-space.js';
import { describeMachine } from './machine-info.js';
import { measureScenarios } from './measure-scenarios.js';
import { buildReportRows } from './report-rows.js';
import { formatTextTable } from './report-table.js';

/**
 * `npm run bench`: measures the archiver against the fake Coze server on 127.0.0.1, prints
 * the table on stdout and writes the Markdown report. Progress goes to stderr. A missed
 * target is reported in the table and does not change the exit code.
 */
async function main(argv: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseBenchOptions(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const spaceProblem = await diskSpaceProblem(os.tmpdir(), options.repeat, options.quick);
  if (spaceProblem !== undefined) {
    process.stderr.write(`${spaceProblem}\n`);
    return 2;
  }

  const sizes = benchSizes(options.quick);
  const machine = describeMachine();
  // Archives of small outputs are kept until the end (see runOnFakeServer), which the space check allows for.
  const archiveRoot = await mkdtemp(path.join(os.tmpdir(), 'coze-bench-'));

  // Ctrl-C or a kill mid-run would otherwise leave a child running and gigabytes of archives behind.
  const cleanUpAndExit = (signal: NodeJS.Signals): void => {
    killRunningChildren();
    rmSync(archiveRoot, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', cleanUpAndExit).once('SIGTERM', cleanUpAndExit);

  let samples;
  try {
    samples = await measureScenarios(sizes, options.repeat, archiveRoot, (line) => process.stderr.write(`${line}\n`));
  } finally {
    process.off('SIGINT', cleanUpAndExit).off('SIGTERM', cleanUpAndExit);
    await rm(archiveRoot, { recursive: true, force: true });
  }
  const rows = buildReportRows(samples, sizes);

  process.stdout.write(`${formatTextTable(rows)}\n\n`);
  await writeBenchmarksDoc(options.outFile, { machine, command: options.command, repeat: options.repeat, quick: options.quick, rows });

  const judged = rows.filter((row) => row.verdict !== 'info');
  const passed = judged.filter((row) => row.verdict === 'PASS').length;
  process.stdout.write(`${passed} of ${judged.length} targets met. Report written to ${options.outFile}\n`);
  if (options.quick) process.stdout.write(`${QUICK_SIZES_NOTE}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
