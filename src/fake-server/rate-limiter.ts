/**
 * Server-side limiter over a sliding window: a request is accepted when fewer
 * than `limit` accepted requests arrived in the `windowMs` before it. Rejected
 * requests do not count, so accepted ones never exceed the limit in any window.
 */
export class SlidingWindowLimiter {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly accepted: number[] = [];

  constructor(limit: number, windowMs = 1000) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new TypeError(`\`limit\` must be a positive integer, got ${limit}`);
    }
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Records the request at `nowMs` (monotonic milliseconds) if it fits, and returns whether it did. */
  tryAcquire(nowMs: number): boolean {
    while (this.accepted.length > 0 && nowMs - (this.accepted[0] ?? 0) >= this.windowMs) {
      this.accepted.shift();
    }
    if (this.accepted.length >= this.limit) {
      return false;
    }
    this.accepted.push(nowMs);
    return true;
  }
}
