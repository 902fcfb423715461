import { setTimeout as sleep } from 'node:timers/promises';

import type { ExecutionTarget } from '../archive/archive-execution.js';
import { describeError } from '../archive/entry-results.js';
import type { RunContext } from '../archive/run-context.js';
import type { RunHistoryResult } from '../coze/client.js';
import { AuthError, CozeOutageError, isAuthError, TOKEN_ADVICE } from '../coze/errors.js';
import { withRetry } from '../http/with-retry.js';

/** Waits between two run-history polls of one execution. Each wait doubles, up to the cap. */
export interface PollSettings {
  initialDelayMs: number;
  maxDelayMs: number;
}

/**
 * Starting at 2 s keeps every execution to at most one poll per 2 s, and the 60 s cap still
 * notices a finish within a minute on a long wait.
 */
export const DEFAULT_POLL_SETTINGS: PollSettings = { initialDelayMs: 2_000, maxDelayMs: 60_000 };

export interface WaitResult {
  /** True once run history shows any status other than `Running`. */
  finished: boolean;
  polls: number;
  /** The status of the last poll that succeeded. */
  lastStatus: string | undefined;
  /** The last run history read, so archiving it costs no further call. */
  lastRunHistory?: RunHistoryResult | undefined;
}

/**
 * Polls run history of a running execution with capped exponential backoff until it
 * finishes, the deadline (wall clock, Unix ms) passes or the run is interrupted. A poll that
 * fails is logged and the next one tries again. A rejected token throws `AuthError`, and an
 * outage that the run's breaker stops on throws `CozeOutageError`.
 */
export async function waitUntilFinished(
  context: RunContext,
  target: ExecutionTarget,
  deadlineMs: number,
  settings: PollSettings,
): Promise<WaitResult> {
  const result: WaitResult = { finished: false, polls: 0, lastStatus: undefined };
  let delayMs = settings.initialDelayMs;

  for (;;) {
    const remainingMs = deadlineMs - Date.now();
    if (remainingMs <= 0) return result;

    context.logger.debug({ ...target, delayMs: Math.min(delayMs, remainingMs) }, 'execution still running; polling again');
    if (!(await pause(Math.min(delayMs, remainingMs), context.signal))) return result;
    if (Date.now() >= deadlineMs) return result;

    result.polls += 1;
    const runHistory = await pollRunHistory(context, target);
    const status = runHistory?.record.execute_status;
    if (runHistory !== undefined) {
      result.lastStatus = status;
      result.lastRunHistory = runHistory;
    }
    if (status !== undefined && status !== 'Running') {
      result.finished = true;
      return result;
    }
    delayMs = Math.min(settings.maxDelayMs, delayMs * 2);
  }
}

/** Reads the execution's run history once through the run's limiter, or returns undefined when that failed. */
async function pollRunHistory(context: RunContext, target: ExecutionTarget): Promise<RunHistoryResult | undefined> {
  try {
    const result = await withRetry((signal, responded) => context.client.getRunHistory(target.workflowId, target.executeId, signal, { onResponse: responded }), {
      limiter: context.limiter,
      breaker: context.breaker,
      settings: context.retry,
      signal: context.signal,
      logger: context.logger,
      logFields: { ...target },
      tally: { attempts: 0 },
    });
    return result;
  } catch (error) {
    if (isAuthError(error)) {
      throw new AuthError(
        `Coze rejected the token while polling execution ${target.executeId} (code ${error.code ?? error.httpStatus}` +
          `${error.logid ? `, logid ${error.logid}` : ''}).`,
        error,
        TOKEN_ADVICE,
      );
    }
    if (error instanceof CozeOutageError) throw error;
    if (!context.signal.aborted) {
      context.logger.warn({ ...target, ...describeError(error) }, 'run history poll failed; polling again later');
    }
    return undefined;
  }
}

/** Sleeps unless the run is interrupted, and returns false when it was. */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
