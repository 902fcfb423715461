import { setMaxListeners } from 'node:events';
import path from 'node:path';

import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';

import { DEFAULT_RETRY_SETTINGS, DEFAULTS } from '../config/defaults.js';
import { resolveBaseUrl } from '../coze/base-url.js';
import { CozeClient } from '../coze/client.js';
import { UsageError } from '../coze/errors.js';
import { OutageBreaker } from '../http/outage-breaker.js';
import { RequestLimiter } from '../http/request-limiter.js';
import { silentLogger } from '../logger.js';
import { TOOL_VERSION } from '../version.js';
import { DEFAULT_FLAG_BYTES } from './incomplete-flags.js';
import type { RunContext } from './run-context.js';

export { DEFAULTS };

/** Options shared by every run, whether of one execution or many. */
export interface RunOptions {
  /** Coze personal access token or OAuth access token. */
  token: string;
  /** Default `https://api.coze.cn`. Plain http is allowed only for loopback hosts. */
  baseUrl?: string;
  /** Archive root; executions go to `<outDir>/<workflow_id>/<execute_id>/`. Default `./coze-archive`. */
  outDir?: string;
  /** Requests per second across the run. Default 10. */
  qps?: number;
  /** Requests in flight across the run. Default 8. */
  concurrency?: number;
  /** Retries after the first attempt of each request. Default 5. */
  retries?: number;
  /** Connect, headers and body-idle timeout per request, in ms. Default 30,000. */
  timeoutMs?: number;
  /** First retry delay in ms; later ones double up to `retryMaxDelayMs`. Default 500. */
  retryMinDelayMs?: number;
  retryMaxDelayMs?: number;
  /** A `Retry-After` longer than this fails the item. Default 60,000. */
  maxRetryAfterMs?: number;
  /**
   * Stops the run once Coze has sent no usable response for this long, in ms, while at least 10
   * attempts in a row failed. 0 never stops. Default 300,000 (5 minutes).
   */
  maxOutageMs?: number;
  /** Maximum size of one response body in bytes. Default 64 MiB. */
  maxResponseBytes?: number;
  /** Byte sizes from which an output is flagged as possibly incomplete. */
  flagBytes?: readonly number[];
  /** Fetch everything again, ignoring an earlier manifest. */
  force?: boolean;
  signal?: AbortSignal;
  logger?: Logger;
  /** Clock in Unix ms, for tests of expiry. */
  now?: () => number;
  /** An undici dispatcher, for unit tests with `MockAgent`. */
  dispatcher?: Dispatcher;
}

export interface Run {
  context: RunContext;
  close(): Promise<void>;
}

/** A run's settings, checked and with defaults applied. */
export interface RunSettings {
  baseUrl: URL;
  qps: number;
  concurrency: number;
  timeoutMs: number;
  maxResponseBytes: number;
  flagBytes: number[];
  retry: RunContext['retry'];
  maxOutageMs: number;
  outDir: string;
}

/**
 * Checks every option but the token and applies the defaults. It throws `UsageError` for the
 * first invalid one, and `fetch --dry-run` calls it to report what the real run would reject.
 */
export function resolveRunSettings(options: Omit<RunOptions, 'token'>): RunSettings {
  const minDelayMs = nonNegativeInteger(options.retryMinDelayMs ?? DEFAULT_RETRY_SETTINGS.minDelayMs, 'retry delay');
  const maxDelayMs = positiveInteger(options.retryMaxDelayMs ?? DEFAULT_RETRY_SETTINGS.maxDelayMs, 'retry delay cap');
  if (minDelayMs > maxDelayMs) {
    throw new UsageError(`Invalid retry delays: retryMinDelayMs ${minDelayMs} is above retryMaxDelayMs ${maxDelayMs}. Lower the first or raise the second.`);
  }

  return {
    baseUrl: resolveBaseUrl(options.baseUrl ?? DEFAULTS.baseUrl),
    qps: positiveNumber(options.qps ?? DEFAULTS.qps, 'requests per second (--qps)'),
    concurrency: positiveInteger(options.concurrency ?? DEFAULTS.concurrency, 'concurrency (--concurrency)'),
    timeoutMs: positiveInteger(options.timeoutMs ?? DEFAULTS.timeoutMs, 'timeout (--timeout, ms)'),
    maxResponseBytes: responseLimit(options.maxResponseBytes ?? DEFAULTS.maxResponseBytes),
    flagBytes: (options.flagBytes ?? DEFAULT_FLAG_BYTES).map((value) => positiveInteger(value, 'flag size (--flag-bytes)')),
    retry: {
      retries: nonNegativeInteger(options.retries ?? DEFAULT_RETRY_SETTINGS.retries, 'retries'),
      minDelayMs,
      maxDelayMs,
      maxRetryAfterMs: nonNegativeInteger(options.maxRetryAfterMs ?? DEFAULT_RETRY_SETTINGS.maxRetryAfterMs, 'max retry-after'),
    },
    maxOutageMs: nonNegativeInteger(options.maxOutageMs ?? DEFAULTS.maxOutageMs, 'outage limit (--max-outage, ms)'),
    outDir: path.resolve(options.outDir ?? DEFAULTS.outDir),
  };
}

/** Validates options and builds the client and the one limiter that a run shares. */
export function createRun(options: RunOptions): Run {
  if (typeof options.token !== 'string' || options.token.trim() === '') {
    // A library caller passes `token`. The CLI reads COZE_API_TOKEN and --token-file, and names them in its own message.
    throw new UsageError('Missing token: pass a Coze personal access token as the token option.');
  }
  const settings = resolveRunSettings(options);

  const signal = options.signal ?? new AbortController().signal;
  // The limiter's waits for every worker of every execution listen on the run's signal.
  setMaxListeners(0, signal);
  const logger = options.logger ?? silentLogger();
  const client = new CozeClient({
    baseUrl: settings.baseUrl,
    token: options.token.trim(),
    timeoutMs: settings.timeoutMs,
    maxResponseBytes: settings.maxResponseBytes,
    connections: settings.concurrency,
    dispatcher: options.dispatcher,
    userAgent: `coze-node-outputs/${TOOL_VERSION}`,
  });
  const limiter = new RequestLimiter({ qps: settings.qps, concurrency: settings.concurrency, signal, logger });

  const context: RunContext = {
    client,
    limiter,
    breaker: new OutageBreaker(settings.maxOutageMs),
    retry: settings.retry,
    outDir: settings.outDir,
    flagBytes: settings.flagBytes,
    force: options.force ?? false,
    signal,
    logger,
    now: options.now ?? Date.now,
    toolVersion: TOOL_VERSION,
  };
  return { context, close: () => client.close() };
}

function positiveNumber(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`Invalid ${name} ${value}: expected a number above 0.`);
  return value;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`Invalid ${name} ${value}: expected a whole number above 0.`);
  return value;
}

/**
 * Smallest response limit accepted. Every Coze response carries its envelope, so a smaller limit
 * would reject most of them and is most likely a size missing its unit.
 */
const MIN_RESPONSE_BYTES = 1024;

function responseLimit(value: number): number {
  const name = 'maximum response size (--max-response-size, bytes)';
  const bytes = positiveInteger(value, name);
  if (bytes < MIN_RESPONSE_BYTES) {
    throw new UsageError(
      `Invalid ${name} ${bytes}: expected at least ${MIN_RESPONSE_BYTES} bytes, because most Coze responses are larger. A size without a unit is in bytes, so write 64MiB, for example.`,
    );
  }
  return bytes;
}

function nonNegativeInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`Invalid ${name} ${value}: expected a whole number, 0 or more.`);
  return value;
}
