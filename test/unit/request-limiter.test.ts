import { performance } from 'node:perf_hooks';

import { describe, expect, it, vi } from 'vitest';

import { RequestLimiter, sleep } from '../../src/http/request-limiter.js';

/**
 * Timers and the clocks behind `Date.now()` and `performance.now()` can disagree by a few
 * milliseconds on a busy machine. Every timing check leaves this much slack on its safe side.
 */
const CLOCK_SLACK_MS = 20;

/** Max number of start times inside any window of `windowMs`. */
function maxStartsInWindow(starts: number[], windowMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let max = 0;
  for (let first = 0; first < sorted.length; first += 1) {
    let count = 0;
    while (first + count < sorted.length && sorted[first + count]! - sorted[first]! < windowMs) count += 1;
    max = Math.max(max, count);
  }
  return max;
}

/** Runs `count` tasks through the limiter, recording start times and the peak in flight. */
async function runTasks(limiter: RequestLimiter, count: number, taskMs: number): Promise<{ starts: number[]; peak: number }> {
  const starts: number[] = [];
  let inFlight = 0;
  let peak = 0;

  const task = async (): Promise<void> => {
    starts.push(performance.now());
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    await sleep(taskMs);
    inFlight -= 1;
  };
  await Promise.all(Array.from({ length: count }, () => limiter.run(task)));
  return { starts, peak };
}

describe('RequestLimiter', () => {
  it('qps and concurrency ceilings', async () => {
    const limiter = new RequestLimiter({ qps: 20, concurrency: 4 });

    const { starts, peak } = await runTasks(limiter, 60, 10);

    expect(starts).toHaveLength(60);
    expect(maxStartsInWindow(starts, 1_000 - CLOCK_SLACK_MS)).toBeLessThanOrEqual(20);
    expect(peak).toBeLessThanOrEqual(4);
    expect(limiter.stats().started).toBe(60);
  });

  it('concurrency slots all used', async () => {
    const limiter = new RequestLimiter({ qps: 1_000, concurrency: 4 });

    const { peak } = await runTasks(limiter, 24, 15);

    expect(peak).toBe(4);
  });

  it('task result and rejection pass through', async () => {
    const limiter = new RequestLimiter({ qps: 100, concurrency: 2 });

    await expect(limiter.run(async () => 'value')).resolves.toBe('value');
    await expect(limiter.run(async () => Promise.reject(new Error('attempt failed')))).rejects.toThrow('attempt failed');
  });

  it('spaces starts at the full rate', async () => {
    // 10 per second: starts 75 ms apart, where the window alone would admit all three at once.
    const limiter = new RequestLimiter({ qps: 10, concurrency: 4 });

    const { starts } = await runTasks(limiter, 3, 1);
    const sorted = [...starts].sort((a, b) => a - b);

    expect(sorted[1]! - sorted[0]!).toBeGreaterThanOrEqual(75 - CLOCK_SLACK_MS);
    expect(sorted[2]! - sorted[1]!).toBeGreaterThanOrEqual(75 - CLOCK_SLACK_MS);
  });

  it('no spacing under 1 ms', async () => {
    // Spaced by 0.75 ms, whole-millisecond timers would start 32 requests over 32 ms or more.
    const limiter = new RequestLimiter({ qps: 1_000, concurrency: 32 });

    const { starts } = await runTasks(limiter, 32, 1);

    expect(Math.max(...starts) - Math.min(...starts)).toBeLessThan(CLOCK_SLACK_MS);
  });

  it('slot frees after headers, not body', async () => {
    // One request per window: the second starts once the first's slot frees.
    const limiter = new RequestLimiter({ qps: 1, concurrency: 2 });
    const starts: number[] = [];
    const slowBody = (responded: () => void): Promise<void> => {
      starts.push(performance.now());
      responded();
      return sleep(400);
    };

    await Promise.all([limiter.run(slowBody), limiter.run(slowBody)]);

    // The window is 1,005 ms. Counted from the end of the 400 ms body, the second would start after 1,405 ms.
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(1_005 - CLOCK_SLACK_MS);
    expect(starts[1]! - starts[0]!).toBeLessThan(1_405 - CLOCK_SLACK_MS);
  });

  it('pause after reportOverLimit', async () => {
    const limiter = new RequestLimiter({ qps: 50, concurrency: 4 });

    const reportedAt = performance.now();
    limiter.reportOverLimit(300);
    const { starts } = await runTasks(limiter, 3, 1);

    expect(Math.min(...starts) - reportedAt).toBeGreaterThanOrEqual(300 - CLOCK_SLACK_MS);
  });

  it('pause without Retry-After uses overLimitPauseMs', async () => {
    const limiter = new RequestLimiter({ qps: 50, concurrency: 2, overLimitPauseMs: 200 });

    const reportedAt = performance.now();
    limiter.reportOverLimit(undefined);
    const { starts } = await runTasks(limiter, 1, 1);

    expect(starts[0]! - reportedAt).toBeGreaterThanOrEqual(200 - CLOCK_SLACK_MS);
  });

  it('rate halves after over-limit', async () => {
    const limiter = new RequestLimiter({ qps: 50, concurrency: 4 });

    limiter.reportOverLimit(1);
    const { starts } = await runTasks(limiter, 5, 1);
    const sorted = [...starts].sort((a, b) => a - b);

    expect(limiter.stats().effectiveQps).toBe(25);
    // 25 requests per second is one start every 40 ms.
    for (let index = 1; index < sorted.length; index += 1) {
      expect(sorted[index]! - sorted[index - 1]!).toBeGreaterThanOrEqual(40 - CLOCK_SLACK_MS);
    }
  });

  it('repeated over-limit floors at 1/32', () => {
    const limiter = new RequestLimiter({ qps: 40, concurrency: 4 });

    for (let report = 0; report < 7; report += 1) limiter.reportOverLimit(1);

    expect(limiter.stats()).toEqual({ started: 0, overLimitAnswers: 7, effectiveQps: 1.25, lowestQps: 1.25, lowestOverLimitQps: 1.25 });
  });

  it('request sent in the cut millisecond', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(1_000_000);
      const limiter = new RequestLimiter({ qps: 40, concurrency: 4 });

      limiter.reportOverLimit(1);
      // Sent in the millisecond of the cut: a request sent after the cut would have waited out its pause.
      limiter.reportOverLimit(1, 1_000_000);
      expect(limiter.stats().effectiveQps).toBe(20);

      limiter.reportOverLimit(1, 1_000_001);
      expect(limiter.stats().effectiveQps).toBe(10);
    } finally {
      vi.useRealTimers();
    }
  });

  it('one overshoot halves the rate once', () => {
    const limiter = new RequestLimiter({ qps: 40, concurrency: 4 });
    const sentBeforeAnswers = Date.now() - 50;

    // Requests in flight together get over-limit responses together.
    for (let report = 0; report < 3; report += 1) limiter.reportOverLimit(1, sentBeforeAnswers);
    expect(limiter.stats()).toEqual({ started: 0, overLimitAnswers: 3, effectiveQps: 20, lowestQps: 20, lowestOverLimitQps: 40 });

    // A request sent at the slower rate, after the cut, that still gets an over-limit response halves it again.
    limiter.reportOverLimit(1, Date.now() + 1);
    expect(limiter.stats()).toEqual({ started: 0, overLimitAnswers: 4, effectiveQps: 10, lowestQps: 10, lowestOverLimitQps: 20 });
  });

  it('rate restored after quiet period', async () => {
    const limiter = new RequestLimiter({ qps: 40, concurrency: 2, recoveryAfterMs: 100 });

    limiter.reportOverLimit(1);
    expect(limiter.stats().effectiveQps).toBe(20);

    // One quiet period brings it to just below the rate that drew the response, the next one back to qps.
    await sleep(150);
    await limiter.run(async () => undefined);
    expect(limiter.stats().effectiveQps).toBe(36);

    await sleep(150);
    await limiter.run(async () => undefined);
    expect(limiter.stats().effectiveQps).toBe(40);
    // The summary still reports how slow the run got.
    expect(limiter.stats().lowestQps).toBe(20);
  });

  it('settles below the last overshoot', async () => {
    const limiter = new RequestLimiter({ qps: 40, concurrency: 2, recoveryAfterMs: 100 });
    const quietPeriod = async (): Promise<number> => {
      await sleep(150);
      await limiter.run(async () => undefined);
      return limiter.stats().effectiveQps;
    };

    limiter.reportOverLimit(1);
    expect(limiter.stats().effectiveQps).toBe(20);
    expect(await quietPeriod()).toBe(36);

    // An overshoot close to the last one costs a fifth of the rate, not half.
    limiter.reportOverLimit(1, Date.now() + 1);
    expect(limiter.stats().effectiveQps).toBeCloseTo(28.8, 9);

    // Back to 90 % of the rate that overshot, held there, then a step up tries for more.
    expect(await quietPeriod()).toBeCloseTo(32.4, 9);
    expect(await quietPeriod()).toBe(40);
  });

  it('abort ends the pause early', async () => {
    const controller = new AbortController();
    const limiter = new RequestLimiter({ qps: 50, concurrency: 2, signal: controller.signal });
    const reason = new Error('run interrupted');

    limiter.reportOverLimit(5_000);
    const startedAt = performance.now();
    const pending = limiter.run(async () => 'never');
    setTimeout(() => controller.abort(reason), 30);

    await expect(pending).rejects.toBe(reason);
    expect(performance.now() - startedAt).toBeLessThan(2_500);
    expect(limiter.stats().started).toBe(0);
  });
});

describe('sleep', () => {
  it('rejects at once when already aborted', async () => {
    const reason = new Error('stopped');

    await expect(sleep(10_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});
