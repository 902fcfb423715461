import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { makeFolderLevels } from '../archive/out-folder.js';
import type { MachineInfo } from './machine-info.js';
import type { ReportRow } from './report-rows.js';
import { formatMarkdownTable } from './report-table.js';

/** The note shown with a quick run's results, on the console and in the report. */
export const QUICK_SIZES_NOTE = 'Quick sizes are far too small for the targets to mean anything: they check that the bench runs.';

export const GENERATED_START = '<!-- bench:generated:start -->';
export const GENERATED_END = '<!-- bench:generated:end -->';

/** Results of one bench run, with the machine and the command behind them. */
export interface BenchReport {
  machine: MachineInfo;
  command: string;
  repeat: number;
  quick: boolean;
  rows: ReportRow[];
}

/**
 * Writes the report into `filePath` between the generated markers, keeping every line
 * outside them, so notes written by hand (causes of misses, before and after) survive a
 * new run. A file without the markers gets the block appended.
 */
export async function writeBenchmarksDoc(filePath: string, report: BenchReport): Promise<void> {
  const block = `${GENERATED_START}\n${renderGeneratedBlock(report)}\n${GENERATED_END}`;
  const existing = await readFile(filePath, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });

  await makeFolderLevels(path.dirname(filePath));
  await writeFile(filePath, spliceBlock(existing, block));
}

function spliceBlock(existing: string | undefined, block: string): string {
  if (existing === undefined) return `# Benchmarks\n\n${block}\n`;

  const start = existing.indexOf(GENERATED_START);
  const end = existing.indexOf(GENERATED_END);
  if (start === -1 || end === -1 || end < start) return `${existing.trimEnd()}\n\n${block}\n`;
  return existing.slice(0, start) + block + existing.slice(end + GENERATED_END.length);
}

/** Renders the machine, the command and the table, with one note per scenario. */
export function renderGeneratedBlock(report: BenchReport): string {
  const { machine } = report;
  const lines = [
    '## Latest run',
    '',
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGib.toFixed(1)} GiB memory, ${machine.platform}`,
    `- Node ${machine.nodeVersion}`,
    `- Date: ${machine.date}`,
    `- Command: \`${report.command}\` (${report.repeat} ${report.repeat === 1 ? 'repetition' : 'repetitions'} of every scenario${report.quick ? ', quick sizes' : ''})`,
    '',
  ];
  if (report.quick) {
    lines.push(QUICK_SIZES_NOTE, '');
  }

  lines.push(formatMarkdownTable(report.rows), '', '### Notes on each row', '');
  for (const row of report.rows) lines.push(`- **${row.id}**: ${row.note}`);
  return lines.join('\n');
}
