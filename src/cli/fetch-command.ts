import { Command, Option } from 'commander';
import type { Logger } from 'pino';

import { archiveExecution } from '../archive/archive-execution.js';
import { createRun, DEFAULTS } from '../archive/create-run.js';
import { BASE_URLS, type CozeRegion } from '../coze/base-url.js';
import { UsageError } from '../coze/errors.js';
import { exitCodeFor } from '../exit-codes.js';
import { DEFAULT_RETRY_SETTINGS } from '../http/with-retry.js';
import { DEFAULT_FLAG_BYTES } from '../archive/incomplete-flags.js';
import { formatDuration } from '../config/duration.js';
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
import { jsonSummary, textSummary } from './summary.js';
import type { CliEnvironment } from './cli-environment.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface FetchFlags {
  workflowId?: string;
  executeId?: string;
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
  logLevel: string;
}

/** Declares `fetch` and its options; the action runs the library and sets the exit code. */
export function fetchCommand(environment: CliEnvironment): Command {
  return new Command('fetch')
    .description('Archive every output-node result of one execution.')
    .option('--workflow-id <id>', 'workflow_id of the execution (digits)', digitIdArgument)
    .option('--execute-id <id>', 'execute_id of the execution (digits)', digitIdArgument)
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
    .addOption(
      new Option('--log-level <level>', 'log detail on stderr').choices(LOG_LEVELS).default('info'),
    )
    .addHelpText(
      'after',
      '\nDurations take a unit: 500ms, 30s, 5m, 1h. Sizes are bytes, or take a unit: 1MB (10^6), 1MiB (2^20).\n' +
        'Exit codes: 0 all saved, 1 some failed or expired, 2 invalid usage, 3 token rejected, 4 still running or pending, 130/143 interrupted.',
    )
    .action(async (flags: FetchFlags) => {
      environment.exitCode = await runFetch(flags, environment);
    });
}

async function runFetch(flags: FetchFlags, environment: CliEnvironment): Promise<number> {
  if (flags.workflowId === undefined || flags.executeId === undefined) {
    throw new UsageError('Missing --workflow-id and --execute-id. Example: coze-node-outputs fetch --workflow-id 7350000000000000001 --execute-id 7431000000000000001');
  }

  const logger: Logger = environment.makeLogger(flags.logLevel);
  const run = createRun({
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
  });

  try {
    const manifest = await archiveExecution(run.context, { workflowId: flags.workflowId, executeId: flags.executeId });
    const exitCode = environment.signal.aborted ? environment.interruptExitCode() : exitCodeFor([manifest]);

    if (flags.json) environment.stdout.write(jsonSummary([manifest], run.context.outDir, exitCode));
    else environment.stderr.write(textSummary([manifest], run.context.outDir));
    return exitCode;
  } finally {
    await run.close();
  }
}

function chooseBaseUrl(flags: FetchFlags, env: NodeJS.ProcessEnv): string {
  if (flags.baseUrl !== undefined && flags.region !== undefined) {
    throw new UsageError('Use either --base-url or --region, not both.');
  }
  if (flags.baseUrl !== undefined) return flags.baseUrl;
  if (flags.region !== undefined) return BASE_URLS[flags.region];
  return env.COZE_API_BASE?.trim() || BASE_URLS.cn;
}

/** An option whose default is shown in help in the unit users type, not in raw milliseconds. */
function option<T>(flags: string, description: string, parse: (text: string) => T, defaultValue: T, shownDefault: string): Option {
  return new Option(flags, description).argParser(parse).default(defaultValue, shownDefault);
}
