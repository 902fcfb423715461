import type { Logger } from 'pino';

import type { CozeClient } from '../coze/client.js';
import type { RequestLimiter } from '../http/request-limiter.js';
import type { RetrySettings } from '../http/with-retry.js';

/** What every execution of one run shares: one client, one limiter, one set of settings. */
export interface RunContext {
  client: CozeClient;
  limiter: RequestLimiter;
  retry: RetrySettings;
  outDir: string;
  flagBytes: readonly number[];
  /** Fetch every entry again, ignoring what an earlier run saved. */
  force: boolean;
  signal: AbortSignal;
  logger: Logger;
  /** Clock in Unix milliseconds; tests of expiry replace it. */
  now: () => number;
  toolVersion: string;
}

/** Output-node data is kept 24 hours after the run, according to Coze's documentation. */
export const NODE_OUTPUT_RETENTION_MS = 24 * 3_600_000;
