import path from 'node:path';

import { Command } from 'commander';

import type { ExportResult } from '../archive/export-archive.js';
import { UsageError } from '../coze/errors.js';
import { EXIT_CODES } from '../exit-codes.js';
import type { CliEnvironment } from './cli-environment.js';

interface ExportFlags {
  output?: string;
}

/** Declares `export`: writes every saved entry of an archive as JSON Lines. */
export function exportCommand(environment: CliEnvironment): Command {
  return new Command('export')
    .description('Write every saved output under DIR as JSON Lines: ids, node fields, bytes, sha256 and the output text.')
    .argument('<dir>', 'archive folder, usually the --out folder of fetch')
    .option('--output <file>', 'write to FILE, replacing it atomically when the export is complete (default: stdout)')
    .addHelpText('after', '\nExit codes: 0 all saved entries exported; 1 some skipped because their file is missing or altered, an execution folder without a manifest, or the output pipe closed early; 2 DIR missing, or holding neither a manifest nor a folder laid out as an execution\'s.')
    .action(async (dir: string, flags: ExportFlags) => {
      // Imported here, not at the top, so `--help` does not load them.
      const { exportArchive, exportArchiveToFile } = await import('../archive/export-archive.js');
      const { plural, terminalText } = await import('../batch/batch-summary.js');

      if (flags.output?.trim() === '') throw new UsageError('Invalid --output "": name a file, or leave the option out to write to stdout.');

      let result: ExportResult;
      try {
        result = flags.output === undefined ? await exportArchive(dir, environment.stdout) : await exportArchiveToFile(dir, path.resolve(flags.output));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
        // The reader went away, as in `export DIR | head`, which is not a fault of the archive.
        environment.stderr.write('coze-node-outputs: export stopped: the output pipe was closed.\n');
        environment.exitCode = EXIT_CODES.failed;
        return;
      }

      environment.stderr.write(terminalText(exportLines(result, flags.output, plural)));
      environment.exitCode = result.skipped.length === 0 ? EXIT_CODES.ok : EXIT_CODES.failed;
    });
}

/** Formatter of a count and its noun, from `batch-summary.js`, passed in because that module loads late. */
type Plural = (count: number, noun: string, pluralNoun?: string) => string;

function exportLines(result: ExportResult, output: string | undefined, plural: Plural): string[] {
  const lines = result.skipped.map((skip) => `coze-node-outputs: skipped ${skip.path}: ${skip.reason}`);
  lines.push(
    `Exported ${plural(result.exported, 'entry', 'entries')} (${result.bytes} bytes) from ${plural(result.manifests, 'manifest')} to ${output ?? 'stdout'}` +
      `${result.skipped.length > 0 ? `; ${result.skipped.length} skipped` : ''}.`,
  );
  if (result.notSaved > 0) {
    const earlier = result.notSavedWithEarlierFile > 0 ? `, ${result.notSavedWithEarlierFile} of them with a file saved earlier that was changed or deleted since` : '';
    lines.push(`Not exported: ${plural(result.notSaved, 'entry', 'entries')} not saved (failed, pending or expired)${earlier}. Run verify to see which, and what to do.`);
  }
  return lines;
}
