import pRetry from 'p-retry';
import type { Logger } from 'pino';

import { CozeOutageError, CozeRequestError } from '../coze/errors.js';
import type { OutageBreaker } from './outage-breaker.js';
import type { RequestLimiter } from './request-limiter.js';
import { classifyFailure, type RetryContext } from './retry-policy.js';

export interface RetrySettings {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff; later ones double, with jitter, up to `maxDelayMs`. */
  minDelayMs: number;
  maxDelayMs: number;
  /** A `Retry-After` above this fails the item instead of sleeping inside a cron job. */
  maxRetryAfterMs: number;
}

export interface AttemptTally {
  attempts: number;
  /** The latest attempt's failure, which a call stopped during its backoff would otherwise lose. */
  lastFailure?: unknown;
}

export interface RetryCall {
  limiter: RequestLimiter;
  settings: RetrySettings;
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
  /** Ids to put on every attempt's log line. */
  logFields: Record<string, unknown>;
  context?: () => RetryContext;
  /** Receives the number of attempts made, whether the call succeeds or not. */
  tally: AttemptTally;
  /** The run's breaker, which every attempt's outcome feeds and which can stop the call. */
  breaker?: OutageBreaker | undefined;
}

/**
 * Runs one request with retries. Every attempt takes its own turn in the shared limiter, so
 * a retry never jumps the rate limit. The waits between attempts hold no concurrency slot.
 * `attempt` passes `responded` on to the client, which calls it when the headers arrive.
 */
export function withRetry<T>(attempt: (signal: AbortSignal | undefined, responded: () => void) => Promise<T>, call: RetryCall): Promise<T> {
  const { limiter, settings, signal, logger, logFields, tally, breaker } = call;
  // When the latest attempt was sent; one call's attempts run one after another.
  let sentAt: number | undefined;

  return pRetry(
    async () => {
      // A call that waited out its backoff after the breaker tripped makes no further attempt.
      if (breaker?.tripped !== undefined) throw breaker.tripped;
      tally.attempts += 1;
      const value = await limiter.run((responded) => {
        sentAt = Date.now();
        return attempt(signal, responded);
      });
      breaker?.recordResponse();
      return value;
    },
    {
      retries: settings.retries,
      minTimeout: settings.minDelayMs,
      maxTimeout: settings.maxDelayMs,
      factor: 2,
      randomize: true,
      signal,
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (error instanceof CozeOutageError) return;
        tally.lastFailure = error;
        const decision = classifyFailure(error, call.context?.());
        const outage = noteOutcome(breaker, error, decision.retry && !decision.overLimit);
        if (outage !== undefined) throw outage;
        const retryAfterTooLongMs =
          decision.retryAfterMs !== undefined && decision.retryAfterMs > settings.maxRetryAfterMs ? decision.retryAfterMs : undefined;
        // A wait above the cap fails this item; the run pauses only for its usual over-limit pause.
        if (decision.overLimit) limiter.reportOverLimit(retryAfterTooLongMs === undefined ? decision.retryAfterMs : undefined, sentAt);

        if (decision.retry && retriesLeft > 0 && retryAfterTooLongMs !== undefined) {
          throw retryAfterTooLong(error as CozeRequestError, retryAfterTooLongMs, settings.maxRetryAfterMs);
        }

        const willRetry = decision.retry && retriesLeft > 0;
        // The limiter warns once per slowdown and the summary counts over-limit responses, so a
        // warning for each of their retries would only repeat it.
        logger?.[willRetry && !decision.overLimit ? 'warn' : 'debug'](
          { ...logFields, attempt: attemptNumber, retriesLeft, ...describeForLog(error) },
          willRetry ? 'request failed; retrying' : 'request failed; not retrying',
        );
      },
      shouldRetry: ({ error }) => classifyFailure(error, call.context?.()).retry,
    },
  );
}

/**
 * Feeds one failed attempt to the breaker: a failure worth retrying, other than over-limit, counts
 * towards an outage, and any other failure with an HTTP status shows that Coze responds.
 */
function noteOutcome(breaker: OutageBreaker | undefined, error: unknown, isOutageFailure: boolean): CozeOutageError | undefined {
  if (breaker === undefined) return undefined;
  if (isOutageFailure) return breaker.recordFailure(error);
  if (error instanceof CozeRequestError && error.httpStatus !== undefined && error.httpStatus > 0) breaker.recordResponse();
  return undefined;
}

function retryAfterTooLong(error: CozeRequestError, waitMs: number, capMs: number): CozeRequestError {
  return new CozeRequestError({
    kind: 'retry_after_too_long',
    endpoint: error.endpoint,
    httpStatus: error.httpStatus,
    code: error.code,
    cozeMsg: error.cozeMsg,
    logid: error.logid,
    retryAfterMs: waitMs,
    workflowId: error.workflowId,
    executeId: error.executeId,
    nodeExecuteUuid: error.nodeExecuteUuid,
    message: `Retry-After header asks for ${Math.ceil(waitMs / 1000)} s, more than the cap of ${Math.ceil(capMs / 1000)} s (--max-retry-after); not waiting`,
    cause: error,
  });
}

/** Picks the fields of an error worth a log line. Headers are left out, so the token is too. */
export function describeForLog(error: unknown): Record<string, unknown> {
  if (!(error instanceof CozeRequestError)) {
    return { err: error instanceof Error ? error.message : String(error) };
  }
  return {
    err: error.message,
    kind: error.kind,
    httpStatus: error.httpStatus,
    code: error.code,
    logid: error.logid,
    undiciCode: error.undiciCode,
  };
}
