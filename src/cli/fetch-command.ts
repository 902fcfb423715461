import { stat } from 'node:fs/promises';

import { Command, Option } from 'commander';
import type { Logger } from 'pino';

import type { ExecutionTarget } from '../archive/archive-execution.js';
import { DEFAULTS, type RunOptions } from '../archive/create-run.js';
import { DEFAULT_FLAG_BYTES } from '../archive/incomplete-flags.js';
import { DEFAULT_EXPIRY_WARNING_MS, runBatch, type BatchResult } from '../batch/batch-runner.js';
import { badLineMessages, summaryDocument, summaryTable, type InputReport } from '../batch/batch-summary.js';
import { dryRunDocument, dryRunText, planDryRun } from '../batch/dry-run.js';
import { parseExecutionList, readExecutionListText } from '../batch/input-list.js';
import { createProgressDisplay, wantsProgressBar } from '../batch/progress-bar.js';
import { formatDuration } from '../config/duration.js';
import { BASE_URLS, type CozeRegion } from '../coze/base-url.js';
import { UsageError } from '../coze/errors.js';
import { EXIT_CODES } from '../exit-codes.js';
import { DEFAULT_RETRY_SETTINGS } from '../http/with-retry.js';
import {
  digitIdArgument,
  durationArgument,
  nonNegativeIntegerArgument,
  positiveIntegerArgument,
  positiveNumberArgument,
  sizeArgument,
  sizeListArgument,
} from './option-parsers.js';
import { readToken } from './read-token.js';
import type { CliEnvironment } from './cli-environment.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface FetchFlags {
  workflowId?: string;
  executeId?: string;
  from?: string;
  dryRun: boolean;
  wait?: number;
  expiryWarning: number;
  quiet: boolean;
  out: string;
  baseUrl?: string;
  region?: CozeRegion;
  tokenFile?: string;
  qps: number;
  concurrency: number;
  retries: number;
  timeout: number;
  retryMinDelay: number;
  maxRetryAfter: number;
  maxResponseSize: number;
  flagBytes: number[];
  force: boolean;
  json: boolean;
  /** Undefined when not given: `info`, or `warn` while a progress bar is drawn. */
  logLevel?: string;
}

/** Declares `fetch` and its options; the action runs the library and sets the exit code. */
export function fetchCommand(environment: CliEnvironment): Command {
  return new Command('fetch')
    .description('Archive every output-node result of one execution, or of every execution listed with --from.')
    .option('--workflow-id <id>', 'workflow_id of the execution (digits)', digitIdArgument)
    .option('--execute-id <id>', 'execute_id of the execution (digits)', digitIdArgument)
    .option(
      '--from <file>',
      'archive every execution listed in FILE (- for stdin): lines of "workflow_id execute_id", CSV with a header naming both, or JSON Lines',
    )
    .option('--dry-run', 'check the input and print the number of Coze calls the run would make; sends no request', false)
    .option('--wait <duration>', 'wait up to this long, from the start of the run, for running executions to finish, then archive them', durationArgument)
    .addOption(
      option(
        '--expiry-warning <duration>',
        'warn about executions older than this; Coze deletes output-node results 24h after the run',
        durationArgument,
        DEFAULT_EXPIRY_WARNING_MS,
        formatDuration(DEFAULT_EXPIRY_WARNING_MS),
      ),
    )
    .option('--out <dir>', 'archive root; files go to <dir>/<workflow_id>/<execute_id>/', DEFAULTS.outDir)
    .option('--base-url <url>', `Coze API base URL (default: $COZE_API_BASE, else ${BASE_URLS.cn})`)
    .addOption(new Option('--region <region>', `shortcut for --base-url: cn = ${BASE_URLS.cn}, com = ${BASE_URLS.com}`).choices(['cn', 'com']))
    .option('--token-file <path>', 'read the token from this file (default: $COZE_API_TOKEN, else $COZE_API_KEY)')
    .option('--qps <n>', 'maximum requests per second across the whole run', positiveNumberArgument, DEFAULTS.qps)
    .option('--concurrency <n>', 'maximum requests in flight', positiveIntegerArgument, DEFAULTS.concurrency)
    .option('--retries <n>', 'retries per request after the first attempt', nonNegativeIntegerArgument, DEFAULT_RETRY_SETTINGS.retries)
    .addOption(
      option('--timeout <duration>', 'connect, headers and body-idle timeout per request', durationArgument, DEFAULTS.timeoutMs, formatDuration(DEFAULTS.timeoutMs)),
    )
    .addOption(
      option(
        '--retry-min-delay <duration>',
        'first retry delay; later ones double, with jitter, up to 30s',
        durationArgument,
        DEFAULT_RETRY_SETTINGS.minDelayMs,
        formatDuration(DEFAULT_RETRY_SETTINGS.minDelayMs),
      ),
    )
    .addOption(
      option(
        '--max-retry-after <duration>',
        'a Retry-After longer than this fails the item instead of waiting',
        durationArgument,
        DEFAULT_RETRY_SETTINGS.maxRetryAfterMs,
        formatDuration(DEFAULT_RETRY_SETTINGS.maxRetryAfterMs),
      ),
    )
    .addOption(
      option('--max-response-size <size>', 'largest response body accepted, in bytes or with a unit', sizeArgument, DEFAULTS.maxResponseBytes, '64MiB'),
    )
    .addOption(
      option(
        '--flag-bytes <sizes>',
        'flag outputs of at least this many UTF-8 bytes as possibly incomplete; one size or a comma-separated list',
        sizeListArgument,
        [...DEFAULT_FLAG_BYTES],
        '1000000,1048576 (both readings of "1 MB")',
      ),
    )
    .option('--force', 'fetch every entry again, even those an earlier run saved intact', false)
    .option('--json', 'print a JSON summary to stdout', false)
    .option('--quiet', 'write only errors to stderr: no progress bar, no log lines below error, no summary table', false)
    .addOption(
      new Option('--log-level <level>', 'log detail on stderr (default: info, or warn while a progress bar is shown)').choices(LOG_LEVELS),
    )
    .addHelpText(
      'after',
      '\nDurations take a unit: 500ms, 30s, 5m, 1h. Sizes are bytes, or take a unit: 1MB (10^6), 1MiB (2^20).\n' +
        'Exit codes: 0 all saved; 1 some failed, expired or not found, or bad lines in --from; 2 invalid usage or no valid\n' +
        'execution in --from; 3 token rejected; 4 still running or pending (1 wins over 4); 130/143 interrupted.\n' +
        'With --dry-run: 0 input valid, 1 some bad lines, 2 no valid execution.',
    )
    .action(async (flags: FetchFlags) => {
      environment.exitCode = await runFetch(flags, environment);
    });
}

async function runFetch(flags: FetchFlags, environment: CliEnvironment): Promise<number> {
  const { targets, input } = await readTargets(flags, environment.stdin);
  for (const message of badLineMessages(input)) environment.stderr.write(`${message}\n`);

  if (flags.dryRun) return printDryRun(targets.length, input, flags, environment);
  await checkOutFolder(flags.out);
  if (targets.length === 0) {
    throw new UsageError(`No valid execution in --from ${input.source}: each line needs a workflow_id and an execute_id of digits.`);
  }

  const showProgress = wantsProgressBar(environment.stderr, flags);
  // Info lines would break into the bar, so a terminal with a bar gets warnings and errors only.
  const level = flags.quiet ? 'error' : (flags.logLevel ?? (showProgress ? 'warn' : 'info'));
  const logger: Logger = environment.makeLogger(level);
  const display = showProgress ? createProgressDisplay({ stream: environment.stderr, executions: targets.length }) : undefined;

  let result: BatchResult;
  try {
    result = await runBatch({
      ...(await runOptions(flags, environment, logger)),
      executions: targets,
      waitMs: flags.wait ?? 0,
      expiryWarningMs: flags.expiryWarning,
      onProgress: display?.onProgress,
    });
  } finally {
    display?.stop();
  }

  const exitCode = fetchExitCode(result, input, environment);
  printSummary(result, input, exitCode, flags, environment);
  // run-cli prints the error and maps it to the same exit code as the summary's.
  if (result.fatalError !== undefined) throw result.fatalError;
  return exitCode;
}

/** Returns the executions to archive: the --from list, or the one named by --workflow-id and --execute-id. */
async function readTargets(flags: FetchFlags, stdin: NodeJS.ReadableStream): Promise<{ targets: ExecutionTarget[]; input: InputReport }> {
  const hasIds = flags.workflowId !== undefined || flags.executeId !== undefined;
  if (flags.from !== undefined && hasIds) {
    throw new UsageError('Use either --from FILE or --workflow-id with --execute-id, not both.');
  }

  if (flags.from !== undefined) {
    const list = parseExecutionList(await readExecutionListText(flags.from, stdin));
    const input = { source: flags.from, format: list.format, badLines: list.badLines, duplicateLines: list.duplicateLines };
    return { targets: list.targets, input };
  }

  if (flags.workflowId === undefined || flags.executeId === undefined) {
    const missing = [flags.workflowId === undefined ? '--workflow-id' : '', flags.executeId === undefined ? '--execute-id' : ''];
    throw new UsageError(
      `Missing ${missing.filter(Boolean).join(' and ')}, or use --from FILE. Example: coze-node-outputs fetch --workflow-id 7350000000000000001 --execute-id 7431000000000000001`,
    );
  }
  const input: InputReport = { source: null, format: null, badLines: [], duplicateLines: [] };
  return { targets: [{ workflowId: flags.workflowId, executeId: flags.executeId }], input };
}

function printDryRun(executions: number, input: InputReport, flags: FetchFlags, environment: CliEnvironment): number {
  const plan = planDryRun(executions, input, flags.wait ?? 0);
  if (flags.json) environment.stdout.write(`${JSON.stringify(dryRunDocument(plan), null, 2)}\n`);
  else if (!flags.quiet || plan.exitCode === EXIT_CODES.usage) environment.stderr.write(dryRunText(plan));
  return plan.exitCode;
}

async function runOptions(flags: FetchFlags, environment: CliEnvironment, logger: Logger): Promise<RunOptions> {
  return {
    token: await readToken(flags.tokenFile, environment.env),
    baseUrl: chooseBaseUrl(flags, environment.env),
    outDir: flags.out,
    qps: flags.qps,
    concurrency: flags.concurrency,
    retries: flags.retries,
    timeoutMs: flags.timeout,
    retryMinDelayMs: flags.retryMinDelay,
    maxRetryAfterMs: flags.maxRetryAfter,
    maxResponseBytes: flags.maxResponseSize,
    flagBytes: flags.flagBytes,
    force: flags.force,
    signal: environment.signal,
    logger,
  };
}

/** Computes the batch's exit code, where bad input lines count as failures (1 wins over 4). */
function fetchExitCode(result: BatchResult, input: InputReport, environment: CliEnvironment): number {
  if (environment.signal.aborted && result.fatalError === undefined) return environment.interruptExitCode();

  const hasBadLines = input.badLines.length > 0;
  if (hasBadLines && (result.exitCode === EXIT_CODES.ok || result.exitCode === EXIT_CODES.pending)) return EXIT_CODES.failed;
  return result.exitCode;
}

function printSummary(result: BatchResult, input: InputReport, exitCode: number, flags: FetchFlags, environment: CliEnvironment): void {
  const document = summaryDocument(result, input, exitCode, environment.signal.aborted);
  if (flags.json) environment.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  else if (!flags.quiet) environment.stderr.write(summaryTable(result, input, flags.expiryWarning));
}

function chooseBaseUrl(flags: FetchFlags, env: NodeJS.ProcessEnv): string {
  if (flags.baseUrl !== undefined && flags.region !== undefined) {
    throw new UsageError('Use either --base-url or --region, not both.');
  }
  if (flags.baseUrl !== undefined) return flags.baseUrl;
  if (flags.region !== undefined) return BASE_URLS[flags.region];
  return env.COZE_API_BASE?.trim() || BASE_URLS.cn;
}

/** Builds an option whose help shows the default in the unit users type, not in raw milliseconds. */
function option<T>(flags: string, description: string, parse: (text: string) => T, defaultValue: T, shownDefault: string): Option {
  return new Option(flags, description).argParser(parse).default(defaultValue, shownDefault);
}

/** Rejects an `--out` that exists but is not a folder, before any request is spent. */
async function checkOutFolder(out: string): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info !== undefined && !info.isDirectory()) {
    throw new UsageError(`Invalid --out ${out}: it exists and is not a folder. Name a folder, or a path that does not exist yet.`);
  }
}
