import type { Logger } from 'pino';

import type { CozeClient } from '../coze/client.js';
import type { OutageBreaker } from '../http/outage-breaker.js';
import type { RequestLimiter } from '../http/request-limiter.js';
import type { RetrySettings } from '../http/with-retry.js';
import type { EntryStatus, ManifestTotals } from './manifest.js';

/** The state every execution of one run shares: one client, one limiter, one set of settings. */
export interface RunContext {
  client: CozeClient;
  limiter: RequestLimiter;
  /** Stops the run once Coze has sent nothing usable for too long. */
  breaker: OutageBreaker;
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
  /** Receives progress events. Batch runs set it to draw a progress bar. */
  onProgress?: ((event: ProgressEvent) => void) | undefined;
}

/**
 * Progress of a run, reported while it works. `execution-prepared` comes once run history is
 * read and the entries are known, `entry-settled` once per entry of that pass, and
 * `execution-finished` with the manifest's totals, which replace what the entries added up to.
 */
export type ProgressEvent =
  | { type: 'execution-prepared'; workflowId: string; executeId: string; entries: number }
  | { type: 'entry-settled'; workflowId: string; executeId: string; status: EntryStatus; bytes: number }
  | { type: 'execution-finished'; workflowId: string; executeId: string; totals: ManifestTotals };

/** Output-node data is kept 24 hours after the run, according to Coze's documentation. */
export const NODE_OUTPUT_RETENTION_MS = 24 * 3_600_000;
