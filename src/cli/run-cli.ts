import { CommanderError } from 'commander';

import { removePendingTemporaryFiles } from '../archive/atomic-write.js';
import { ArchiveWriteError, AuthError, CozeOutageError, UsageError } from '../coze/errors.js';
import { EXIT_CODES } from '../exit-codes.js';
import { jsonForReaders } from '../http/redact.js';
import type { CliEnvironment } from './cli-environment.js';
import { buildProgram } from './program.js';

/**
 * Runs the command line and returns the exit code. This is the one place where errors
 * become exit codes; commands throw typed errors and never call `process.exit`.
 */
export async function runCli(argv: readonly string[], environment: CliEnvironment): Promise<number> {
  // Commander would echo an unknown `--token=VALUE` in its error, so reject it before parsing.
  if (argv.some((arg) => arg === '--token' || arg.startsWith('--token='))) {
    environment.stderr.write(
      'coze-node-outputs: no option takes the token itself, because other users can read process arguments; set COZE_API_TOKEN or pass --token-file PATH.\n',
    );
    return EXIT_CODES.usage;
  }

  const program = buildProgram(environment);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return environment.exitCode;
  } catch (error) {
    const exitCode = exitCodeForError(error, environment);
    // A script that reads --json output gets a document also from a command that stopped before
    // its own, such as one rejected (exit 2) or unable to make its output folder (exit 1).
    if (argv.includes('--json') && !environment.jsonWritten) {
      environment.stdout.write(`${jsonForReaders(errorDocument(exitCode, error, environment.signal.aborted), 2)}\n`);
    }
    return exitCode;
  } finally {
    await removePendingTemporaryFiles();
  }
}

/** Builds the `--json` output of a command that stopped before it wrote its own. */
function errorDocument(exitCode: number, error: unknown, interrupted: boolean): { exit_code: number; error: string } {
  if (interrupted && !(error instanceof AuthError)) return { exit_code: exitCode, error: 'Interrupted by a signal before the summary.' };
  const message = error instanceof Error ? error.message.replace(/^error: /, '') : String(error);
  return { exit_code: exitCode, error: message };
}

function exitCodeForError(error: unknown, environment: CliEnvironment): number {
  if (error instanceof CommanderError) {
    // Help and version are printed by commander and end with its own code 0.
    return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
  }
  if (environment.signal.aborted && !(error instanceof AuthError)) {
    return environment.interruptExitCode();
  }

  const message = error instanceof Error ? error.message : String(error);
  environment.stderr.write(`coze-node-outputs: ${message}\n`);
  if (error instanceof UsageError || error instanceof RangeError) return EXIT_CODES.usage;
  if (error instanceof AuthError) return EXIT_CODES.auth;
  if (error instanceof ArchiveWriteError || error instanceof CozeOutageError) return EXIT_CODES.failed;

  environment.stderr.write(`${(error as Error | undefined)?.stack ?? ''}\n`);
  return EXIT_CODES.failed;
}
