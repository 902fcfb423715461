import type { Logger } from 'pino';

import type { ExecutionTarget } from '../archive/archive-execution.js';
import { resolveRunSettings, type RunOptions } from '../archive/create-run.js';
import { checkOutFolder, makeOutFolder, probeOutFolder } from '../archive/out-folder.js';
import { runBatch, type BatchResult } from '../batch/batch-runner.js';
import { badLineMessages, summaryDocument, summaryTable, type InputReport } from '../batch/batch-summary.js';
import { dryRunDocument, dryRunText, planDryRun } from '../batch/dry-run.js';
import { parseExecutionList, readExecutionListText } from '../batch/input-list.js';
import { createProgressDisplay, wantsProgressBar } from '../batch/progress-bar.js';
import { BASE_URLS } from '../coze/base-url.js';
import { UsageError } from '../coze/errors.js';
import { DEFAULT_RETRY_SETTINGS } from '../config/defaults.js';
import { EXIT_CODES } from '../exit-codes.js';
import { jsonForReaders } from '../http/redact.js';
import type { CliEnvironment } from './cli-environment.js';
import type { FetchFlags } from './fetch-command.js';
import { readToken } from './read-token.js';

/*
 * What `fetch` does once its options are parsed. It is loaded only then, so `--help` and
 * argument errors do not load the HTTP client, zod and pino.
 */

/** Runs `fetch` and returns its exit code. */
export async function runFetch(flags: FetchFlags, environment: CliEnvironment): Promise<number> {
  const { targets, input } = await readTargets(flags, environment.stdin);
  for (const message of badLineMessages(input)) environment.stderr.write(`${message}\n`);

  if (flags.dryRun) {
    // Every setting the run would reject is rejected here too, so that a passing dry run means a runnable command.
    const settings = resolveRunSettings(settingOptions(flags, environment));
    await checkOutFolder(flags.out, '--out');
    await probeOutFolder(flags.out, '--out');
    return printDryRun(targets, input, flags, environment, settings.baseUrl.href);
  }
  await checkOutFolder(flags.out, '--out');
  // A list of comments and blank lines alone is a quiet hour for a cron job, not a mistake.
  if (targets.length === 0 && input.badLines.length > 0) {
    throw new UsageError(`No valid execution in --from ${input.source}: each line needs a workflow_id and an execute_id of digits.`);
  }
  await makeOutFolder(flags.out, '--out');

  const showProgress = wantsProgressBar(environment.stderr, flags);
  // Info lines would break into the bar, so a terminal with a bar gets warnings and errors only.
  const level = flags.quiet ? 'error' : (flags.logLevel ?? (showProgress ? 'warn' : 'info'));
  const display = showProgress ? createProgressDisplay({ stream: environment.stderr, executions: targets.length }) : undefined;
  const logger: Logger = await environment.makeLogger(level, display?.logStream);

  let result: BatchResult;
  try {
    result = await runBatch({
      ...(await runOptions(flags, environment, logger)),
      executions: targets,
      waitMs: flags.wait ?? 0,
      expiryWarningMs: flags.expiryWarning,
      onProgress: display?.onProgress,
      // The summary lists only entries not saved or flagged, and manifest.json keeps the rest.
      keepSavedEntries: false,
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

function printDryRun(targets: readonly ExecutionTarget[], input: InputReport, flags: FetchFlags, environment: CliEnvironment, baseUrl: string): number {
  const plan = planDryRun(targets, input, flags.wait ?? 0, baseUrl);
  if (flags.json) environment.stdout.write(`${jsonForReaders(dryRunDocument(plan), 2)}\n`);
  // A list whose every line is bad is an error. Any other plan is what the dry run was asked for,
  // so it goes to stdout, where `> plan.txt` keeps it, also under --quiet.
  else if (plan.exitCode === EXIT_CODES.usage) environment.stderr.write(dryRunText(plan));
  else environment.stdout.write(dryRunText(plan));
  return plan.exitCode;
}

async function runOptions(flags: FetchFlags, environment: CliEnvironment, logger: Logger): Promise<RunOptions> {
  return {
    ...settingOptions(flags, environment),
    token: await readToken(flags.tokenFile, environment.env),
    signal: environment.signal,
    logger,
  };
}

/** Returns the run's options from the flags, all but the token, the signal and the logger. */
function settingOptions(flags: FetchFlags, environment: CliEnvironment): Omit<RunOptions, 'token'> {
  return {
    baseUrl: chooseBaseUrl(flags, environment.env),
    outDir: flags.out,
    qps: flags.qps,
    concurrency: flags.concurrency,
    retries: flags.retries,
    timeoutMs: flags.timeout,
    retryMinDelayMs: flags.retryMinDelay,
    // The CLI has no flag for the cap, so a first delay above it raises the cap with it.
    retryMaxDelayMs: Math.max(DEFAULT_RETRY_SETTINGS.maxDelayMs, flags.retryMinDelay),
    maxRetryAfterMs: flags.maxRetryAfter,
    maxOutageMs: flags.maxOutage,
    maxResponseBytes: flags.maxResponseSize,
    flagBytes: flags.flagBytes,
    force: flags.force,
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
  if (flags.json) {
    environment.stdout.write(`${jsonForReaders(document, 2)}\n`);
    environment.jsonWritten = true;
  } else if (!flags.quiet) environment.stderr.write(summaryTable(result, input, flags.expiryWarning, environment.signal.aborted));
}

function chooseBaseUrl(flags: FetchFlags, env: NodeJS.ProcessEnv): string {
  if (flags.baseUrl !== undefined && flags.region !== undefined) {
    throw new UsageError('Use either --base-url or --region, not both.');
  }
  if (flags.baseUrl !== undefined) return flags.baseUrl;
  if (flags.region !== undefined) return BASE_URLS[flags.region];
  return env.COZE_API_BASE?.trim() || BASE_URLS.cn;
}

