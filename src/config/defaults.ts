import { BASE_URLS } from '../coze/base-url.js';
import type { RetrySettings } from '../http/with-retry.js';

/*
 * Default settings live here, apart from the modules that use them, so that `--help` can
 * show them without loading the HTTP client, zod and pino.
 */

/** Defaults of a run's options. */
export const DEFAULTS = {
  baseUrl: BASE_URLS.cn,
  outDir: './coze-archive',
  qps: 10,
  concurrency: 8,
  timeoutMs: 30_000,
  maxResponseBytes: 64 * 1024 * 1024,
  maxOutageMs: 5 * 60_000,
} as const;

/** Retry defaults of every request. */
export const DEFAULT_RETRY_SETTINGS: RetrySettings = {
  retries: 5,
  minDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000,
};

/** Coze keeps output-node data 24 hours, so a warning at 20 hours leaves time to act. */
export const DEFAULT_EXPIRY_WARNING_MS = 20 * 3_600_000;
