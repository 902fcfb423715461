import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';

import { RequestWindow } from './request-window.js';

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

/** Counts and rates from one run of the limiter. */
export interface LimiterStats {
  /** Request attempts started, retries included. */
  started: number;
  /** Over-limit responses from Coze: HTTP 429, or code 4009, 4013 or 4020. */
  overLimitAnswers: number;
  /** Requests per second allowed now, below `qps` while the run is slowed. */
  effectiveQps: number;
  /** The lowest rate the run was slowed to; `qps` when it never was. */
  lowestQps: number;
  /** The lowest rate in force when an over-limit response cut it, or undefined before the first cut. */
  lowestOverLimitQps: number | undefined;
}

/**
 * The window Coze counts requests in. Coze states its limits per second; 5 ms on top
 * absorbs rounding of the two clocks to whole milliseconds.
 */
const RATE_WINDOW_MS = 1_005;

/**
 * Share of 1/`qps` kept between two starts at the full rate. Without it requests leave in bursts
 * of the concurrency, and a window later the bursts wait for each other's concurrency slots. On
 * the rate-bound bench workload this took 1.036 × the limit against 1.043 × without spacing.
 */
const START_SPACING_SHARE = 0.75;

/**
 * Lowest share of `qps` the run slows down to after repeated over-limit responses. With a floor
 * of an eighth, `--qps 200` against a fake-server limit of 10 per second drew an over-limit
 * response every 1.4 s for the whole run.
 */
const MIN_RATE_FACTOR = 1 / 32;

/**
 * Share of the last rate that drew an over-limit response, which the run climbs back to and keeps.
 * NOTE: this and the steps below were tuned against the fake server's one-second window. Coze
 * does not document how it counts, so a real limit may reward other values.
 */
const BELOW_OVERSHOOT = 0.9;

/**
 * Step by which a run that held its rate for a quiet period raises the remembered overshoot,
 * to find out whether the limit went up. Coze's limit is shared with the account's other calls.
 */
const PROBE_STEP = 1.25;

/**
 * Share of the last overshoot from which a rate that overshoots again is cut by
 * `NEAR_OVERSHOOT_CUT` instead of halved, because the limit is close. On the fake server with a
 * limit of 20 per second under `--qps 50`, 1,001 requests averaged 15.7 per second with these
 * steps, and 12.1 with halving and doubling back.
 */
const NEAR_OVERSHOOT = 0.8;

/** Factor of a cut near the last overshoot. */
const NEAR_OVERSHOOT_CUT = 0.8;

/**
 * One limiter per run, shared by both endpoints and every execution. A `RequestWindow`
 * keeps the hard ceiling. On top of it an adaptive gate keeps starts apart. After an over-limit
 * response it pauses the whole run and spaces requests out at a lower rate, which climbs back
 * towards the last rate that drew such a response while Coze stays quiet.
 */
export class RequestLimiter {
  readonly qps: number;
  readonly concurrency: number;
  private readonly concurrencyLimit: LimitFunction;
  private readonly window: RequestWindow;
  private readonly logger: Logger | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly overLimitPauseMs: number;
  private readonly recoveryAfterMs: number;

  private pausedUntil = 0;
  private nextStartAt = 0;
  private rateFactor = 1;
  private lastOverLimitAt = 0;
  /** Minimum time between two starts at the full rate; 0 where that is under a timer's 1 ms. */
  private readonly startGapMs: number;
  /** When the rate was last cut. A request sent before then does not cut it again. */
  private lastSlowdownAt = 0;
  /** The last rate factor that drew an over-limit response, or undefined before the first one. */
  private overshootFactor: number | undefined;
  private overLimitAnswers = 0;
  private started = 0;
  /** The lowest rate factor of the run, for the summary. */
  private lowestRateFactor = 1;
  /** The lowest rate factor that drew an over-limit response, for the summary's advice on `qps`. */
  private lowestOvershootFactor: number | undefined;

  constructor(options: RequestLimiterOptions) {
    this.qps = options.qps;
    this.concurrency = options.concurrency;
    this.logger = options.logger;
    this.signal = options.signal;
    this.overLimitPauseMs = options.overLimitPauseMs ?? 1_000;
    this.recoveryAfterMs = options.recoveryAfterMs ?? 10_000;
    this.concurrencyLimit = pLimit(options.concurrency);
    const startGapMs = (START_SPACING_SHARE * 1_000) / options.qps;
    this.startGapMs = startGapMs >= 1 ? startGapMs : 0;

    // Coze's limits are whole numbers per second; a rate below 1 becomes one request per 1/qps seconds.
    const windowLimit = Math.max(1, Math.floor(options.qps));
    this.window = new RequestWindow(windowLimit, options.qps < 1 ? RATE_WINDOW_MS / options.qps : RATE_WINDOW_MS);
  }

  /**
   * Runs one request attempt once a concurrency slot, the adaptive gate and the rate window allow
   * it. `task` calls `responded` when the response's headers arrive: Coze has counted the request
   * by then, so its window slot starts to free at that moment, not once the body is read.
   */
  run<T>(task: (responded: () => void) => Promise<T>): Promise<T> {
    return this.concurrencyLimit(async () => {
      await this.waitForGate();
      await this.window.acquire(this.signal);
      this.started += 1;
      let settled = false;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        this.window.settle();
      };
      try {
        return await task(settle);
      } finally {
        settle();
      }
    });
  }

  /**
   * Pauses and slows the whole run after an over-limit response from Coze. `sentAt` is the
   * request's `Date.now()` when it was sent. A response to a request sent before the last
   * slowdown pauses the run but does not cut the rate again. The requests in flight at an
   * overshoot tend to get over-limit responses together, so they cut the rate once, not once each.
   */
  reportOverLimit(retryAfterMs: number | undefined, sentAt?: number): void {
    const now = Date.now();
    this.overLimitAnswers += 1;
    this.lastOverLimitAt = now;
    this.pausedUntil = Math.max(this.pausedUntil, now + (retryAfterMs ?? this.overLimitPauseMs));
    // A request sent in the millisecond of the last cut counts as sent before it, because the cut
    // starts a pause that requests sent after it wait out.
    if (sentAt !== undefined && sentAt <= this.lastSlowdownAt) return;

    const before = this.rateFactor;
    const nearLastOvershoot = this.overshootFactor !== undefined && before >= NEAR_OVERSHOOT * this.overshootFactor;
    this.overshootFactor = before;
    this.lowestOvershootFactor = Math.min(this.lowestOvershootFactor ?? before, before);
    this.rateFactor = Math.max(MIN_RATE_FACTOR, before * (nearLastOvershoot ? NEAR_OVERSHOOT_CUT : 0.5));
    this.lowestRateFactor = Math.min(this.lowestRateFactor, this.rateFactor);
    this.lastSlowdownAt = now;

    const fields = { qps: this.qps, slowedToQps: this.effectiveQps(), pauseMs: this.pausedUntil - now };
    // A warning each time the rate leaves `qps`, and a debug line for each further cut.
    if (before >= 1) this.logger?.warn(fields, 'Coze answered over-limit; pausing every request and slowing down');
    else if (this.rateFactor !== before) this.logger?.debug(fields, 'Coze answered over-limit at the slower rate; slowing down further');
  }

  /** Counts of what the limiter did, for the summary and the benchmark. */
  stats(): LimiterStats {
    return {
      started: this.started,
      overLimitAnswers: this.overLimitAnswers,
      effectiveQps: this.effectiveQps(),
      lowestQps: this.qps * this.lowestRateFactor,
      lowestOverLimitQps: this.lowestOvershootFactor === undefined ? undefined : this.qps * this.lowestOvershootFactor,
    };
  }

  private effectiveQps(): number {
    return this.qps * this.rateFactor;
  }

  private async waitForGate(): Promise<void> {
    for (;;) {
      this.signal?.throwIfAborted();
      this.recover();

      const now = Date.now();
      const slowed = this.rateFactor < 1;
      const spacingMs = slowed ? 1_000 / this.effectiveQps() : this.startGapMs;
      const startAt = Math.max(now, this.pausedUntil, this.nextStartAt);
      if (startAt <= now) {
        // At the full rate a start that a late timer delayed by less than a gap does not push the next
        // one back. At a slowed rate the spacing is the limit itself, so lost time is not made up.
        const onSchedule = !slowed && now - this.nextStartAt < spacingMs;
        this.nextStartAt = (onSchedule ? this.nextStartAt : now) + spacingMs;
        return;
      }
      await sleep(startAt - now, this.signal);
    }
  }

  /**
   * Steps the rate back up after each quiet period: doubling up to just below the last rate that
   * drew an over-limit response, then holding there for one period before trying higher. Each
   * step is logged at debug level, and the rate whole again at info level.
   */
  private recover(): void {
    if (this.rateFactor >= 1) return;

    const now = Date.now();
    if (now - this.lastOverLimitAt < this.recoveryAfterMs) return;

    const overshoot = this.overshootFactor ?? 1;
    const hold = Math.min(1, BELOW_OVERSHOOT * overshoot);
    if (this.rateFactor < hold) {
      this.rateFactor = Math.min(hold, this.rateFactor * 2);
    } else {
      this.overshootFactor = overshoot * PROBE_STEP;
      this.rateFactor = Math.min(1, BELOW_OVERSHOOT * this.overshootFactor);
    }
    this.lastOverLimitAt = now;
    if (this.rateFactor >= 1) {
      this.nextStartAt = 0;
      this.logger?.info({ qps: this.qps, overLimitAnswers: this.overLimitAnswers }, 'request rate restored');
    } else {
      this.logger?.debug({ qps: this.qps, raisedToQps: this.effectiveQps() }, 'no over-limit response for a quiet period; raising the request rate');
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
