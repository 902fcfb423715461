import { Command, Option } from 'commander';

import { DEFAULT_FLAG_BYTES } from '../archive/incomplete-flags.js';
import { DEFAULT_EXPIRY_WARNING_MS, DEFAULT_RETRY_SETTINGS, DEFAULTS } from '../config/defaults.js';
import { formatDuration } from '../config/duration.js';
import { BASE_URLS, type CozeRegion } from '../coze/base-url.js';
import {
  digitIdArgument,
  durationArgument,
  expiryWarningArgument,
  nonNegativeIntegerArgument,
  positiveDurationArgument,
  positiveIntegerArgument,
  positiveNumberArgument,
  positiveSizeArgument,
  sizeListArgument,
} from './option-parsers.js';
import type { CliEnvironment } from './cli-environment.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface FetchFlags {
  workflowId?: string;
  executeId?: string;
  from?: string;
  dryRun?: boolean;
  wait?: number;
  expiryWarning: number;
  quiet?: boolean;
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
  maxOutage: number;
  maxResponseSize: number;
  flagBytes: number[];
  force?: boolean;
  json?: boolean;
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
    .option('--dry-run', 'check the input and every other setting, and print the number of Coze calls the run would make and where they would go; sends no request')
    .option('--wait <duration>', 'wait up to this long, from the start of the run, for running executions to finish, then archive them', durationArgument)
    .addOption(
      option(
        '--expiry-warning <duration>',
        'warn about executions older than this, at most 24h; Coze deletes output-node results 24h after the run',
        expiryWarningArgument,
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
      option('--timeout <duration>', 'connect, headers and body-idle timeout per request', positiveDurationArgument, DEFAULTS.timeoutMs, formatDuration(DEFAULTS.timeoutMs)),
    )
    .addOption(
      option(
        '--retry-min-delay <duration>',
        'first retry delay; later ones double, with jitter, up to 30s (or this delay, if longer)',
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
      option(
        '--max-outage <duration>',
        'stop the run once Coze has sent no usable response for this long and at least 10 attempts in a row failed; 0 never stops',
        durationArgument,
        DEFAULTS.maxOutageMs,
        formatDuration(DEFAULTS.maxOutageMs),
      ),
    )
    .addOption(
      option('--max-response-size <size>', 'largest response body accepted, in bytes or with a unit', positiveSizeArgument, DEFAULTS.maxResponseBytes, '64MiB'),
    )
    .addOption(
      option(
        '--flag-bytes <sizes>',
        'flag outputs of at least this many UTF-8 bytes as possibly incomplete; one size or a comma-separated list',
        sizeListArgument,
        [...DEFAULT_FLAG_BYTES],
        '1000000,1048576, both readings of "1 MB"',
      ),
    )
    .option('--force', 'fetch every entry again, even those an earlier run saved intact or found expired')
    .option('--json', 'print a JSON summary to stdout')
    .option('--quiet', 'write only errors to stderr: no progress bar, no log lines below error, no summary table')
    .addOption(
      new Option('--log-level <level>', 'log detail on stderr (default: info, or warn while a progress bar is shown)').choices(LOG_LEVELS),
    )
    .addHelpText(
      'after',
      '\nDurations take a lower-case unit: 500ms, 30s, 5m, 1h; a bare 0 needs none. Sizes are bytes, or take a unit: 1MB (10^6), 1MiB (2^20).\n' +
        'Exit codes: 0 all saved; 1 some failed, expired or not found, bad lines in --from, or the run stopped for an\n' +
        'outage (--max-outage); 2 invalid usage, or a --from list whose every line is bad; 3 token rejected or without permission\n' +
        'for a workflow (4101); 4 an execution still running (3 wins over 1, and 1 over 4); 130/143 interrupted.\n' +
        'With --dry-run: 0 input valid (a list of comments alone too), 1 some bad lines or a disk that rejects --out (as the run\n' +
        'would), 2 every line bad or an invalid setting.',
    )
    .action(async (flags: FetchFlags) => {
      const { runFetch } = await import('./fetch-run.js');
      environment.exitCode = await runFetch(flags, environment);
    });
}

/** Builds an option whose help shows the default in the unit users type, not in raw milliseconds. */
function option<T>(flags: string, description: string, parse: (text: string) => T, defaultValue: T, shownDefault: string): Option {
  return new Option(flags, description).argParser(parse).default(defaultValue, shownDefault);
}
