import { performance } from 'node:perf_hooks';

import { formatDuration } from '../config/duration.js';
import { CozeOutageError, CozeRequestError } from '../coze/errors.js';

/**
 * Failed attempts in a row, across the run, before a run may stop for an outage. A few
 * failures after one slow download, the only request for minutes, are not an outage.
 */
export const MIN_OUTAGE_FAILURES = 10;

/**
 * Stops a run once Coze has sent nothing usable for `maxOutageMs` while requests kept
 * failing. Each request retries on its own, so without this an outage of hours costs every
 * remaining output its full round of retries. At the default delays that is 15 to 31 s of
 * waiting each, and over 3 minutes each where every attempt runs into the 30 s timeout. A
 * cron job would run on past Coze's 24 hours; stopped, it exits 1 and the next run resumes.
 *
 * One breaker serves the whole run, both endpoints and every execution, as the limiter does.
 */
export class OutageBreaker {
  private readonly maxOutageMs: number;
  private readonly now: () => number;
  private lastResponseAt: number;
  private failuresInRow = 0;
  private outage: CozeOutageError | undefined;

  /** `maxOutageMs` 0 turns the breaker off. `now` is a monotonic clock in ms; tests replace it. */
  constructor(maxOutageMs: number, now: () => number = () => performance.now()) {
    this.maxOutageMs = maxOutageMs;
    this.now = now;
    this.lastResponseAt = now();
  }

  /** The error that stopped the run, once the breaker has tripped. */
  get tripped(): CozeOutageError | undefined {
    return this.outage;
  }

  /** Records a response from Coze: a success, an over-limit response or a final error. */
  recordResponse(): void {
    if (this.outage !== undefined) return;
    this.lastResponseAt = this.now();
    this.failuresInRow = 0;
  }

  /** Records a failed attempt worth retrying and returns the outage error if the run must stop. */
  recordFailure(error: unknown): CozeOutageError | undefined {
    if (this.outage !== undefined || this.maxOutageMs === 0) return this.outage;

    this.failuresInRow += 1;
    const silentMs = this.now() - this.lastResponseAt;
    if (this.failuresInRow >= MIN_OUTAGE_FAILURES && silentMs >= this.maxOutageMs) {
      const last = describeLast(error);
      const shownMs = silentMs >= 1_000 ? Math.round(silentMs / 1_000) * 1_000 : Math.round(silentMs);
      this.outage = new CozeOutageError(
        `Coze sent no usable response for ${formatDuration(shownMs)}, and the last ${this.failuresInRow} attempts all failed ` +
          `(the last: ${last}). The run stops here, keeping every output saved so far; run the same command again to resume.`,
        { cause: error },
      );
    }
    return this.outage;
  }
}

/** Describes the last failure with its logid, which Coze support requests. */
function describeLast(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return error instanceof CozeRequestError && error.logid !== undefined ? `${message}, logid ${error.logid}` : message;
}
