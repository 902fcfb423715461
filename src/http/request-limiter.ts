import pLimit, { type LimitFunction } from 'p-limit';
import pThrottle from 'p-throttle';
import type { Logger } from 'pino';

export interface RequestLimiterOptions {
  /** Ceiling of requests started in any one-second window. */
  qps: number;
  /** Ceiling of requests in flight. */
  concurrency: number;
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
  /** Pause after an over-limit response that carries no `Retry-After`. */
  overLimitPauseMs?: number;
  /** Quiet time after which a slowed run steps back up towards `qps`. */
  recoveryAfterMs?: number;
}

/**
 * The throttle's window, a little over one second: requests leave the client on its clock
 * but are counted on Coze's, and event-loop delays can bunch them by a few milliseconds.
 */
const THROTTLE_INTERVAL_MS = 1_020;

/** Lowest share of `qps` the run slows down to after repeated over-limit responses. */
const MIN_RATE_FACTOR = 1 / 8;

/**
 * One limiter per run, shared by both endpoints and every execution. p-throttle (strict)
 * keeps the hard ceiling. On top of it an adaptive gate pauses the whole run after an
 * over-limit response and spaces requests out at a lower rate until Coze stays quiet.
 */
export class RequestLimiter {
  readonly qps: number;
  private readonly concurrencyLimit: LimitFunction;
  private readonly throttle: <T>(task: () => Promise<T>) => Promise<T>;
  private readonly logger: Logger | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly overLimitPauseMs: number;
  private readonly recoveryAfterMs: number;

  private pausedUntil = 0;
  private nextStartAt = 0;
  private rateFactor = 1;
  private lastOverLimitAt = 0;
  private overLimitAnswers = 0;
  private started = 0;

  constructor(options: RequestLimiterOptions) {
    this.qps = options.qps;
    this.logger = options.logger;
    this.signal = options.signal;
    this.overLimitPauseMs = options.overLimitPauseMs ?? 1_000;
    this.recoveryAfterMs = options.recoveryAfterMs ?? 10_000;
    this.concurrencyLimit = pLimit(options.concurrency);

    const throttled = pThrottle({ limit: options.qps, interval: THROTTLE_INTERVAL_MS, strict: true, signal: options.signal })(
      (task: () => Promise<unknown>) => task(),
    );
    this.throttle = <T>(task: () => Promise<T>) => throttled(task) as Promise<T>;
  }

  /** Runs one request attempt once a concurrency slot, the adaptive gate and the throttle allow it. */
  run<T>(task: () => Promise<T>): Promise<T> {
    return this.concurrencyLimit(async () => {
      await this.waitForGate();
      return this.throttle(() => {
        this.started += 1;
        return task();
      });
    });
  }

  /** Pauses and slows the whole run after Coze answers over-limit. */
  reportOverLimit(retryAfterMs: number | undefined): void {
    const now = Date.now();
    this.overLimitAnswers += 1;
    this.lastOverLimitAt = now;
    this.pausedUntil = Math.max(this.pausedUntil, now + (retryAfterMs ?? this.overLimitPauseMs));

    const wasSlowed = this.rateFactor < 1;
    this.rateFactor = Math.max(MIN_RATE_FACTOR, this.rateFactor / 2);
    if (!wasSlowed) {
      this.logger?.warn(
        { qps: this.qps, slowedToQps: this.effectiveQps(), pauseMs: this.pausedUntil - now },
        'Coze answered over-limit; pausing every request and slowing down',
      );
    }
  }

  /** Counts of what the limiter did, for the summary and the benchmark. */
  stats(): { started: number; overLimitAnswers: number; effectiveQps: number } {
    return { started: this.started, overLimitAnswers: this.overLimitAnswers, effectiveQps: this.effectiveQps() };
  }

  private effectiveQps(): number {
    return this.qps * this.rateFactor;
  }

  private async waitForGate(): Promise<void> {
    for (;;) {
      this.signal?.throwIfAborted();
      this.recover();

      const now = Date.now();
      const spacingMs = this.rateFactor < 1 ? 1_000 / this.effectiveQps() : 0;
      const startAt = Math.max(now, this.pausedUntil, this.nextStartAt);
      if (startAt <= now) {
        this.nextStartAt = now + spacingMs;
        return;
      }
      await sleep(startAt - now, this.signal);
    }
  }

  /** Steps the rate back up after a quiet period, logging once when it is whole again. */
  private recover(): void {
    if (this.rateFactor >= 1) return;

    const now = Date.now();
    if (now - this.lastOverLimitAt < this.recoveryAfterMs) return;

    this.rateFactor = Math.min(1, this.rateFactor * 2);
    this.lastOverLimitAt = now;
    if (this.rateFactor >= 1) {
      this.nextStartAt = 0;
      this.logger?.info({ qps: this.qps, overLimitAnswers: this.overLimitAnswers }, 'request rate restored');
    }
  }
}

/** Sleeps for `ms`, rejecting early with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }

    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
