import { performance } from 'node:perf_hooks';

/**
 * Admits at most `limit` requests in any `windowMs`, counting each request from its start
 * until `windowMs` after it settles: when its response's headers arrive, or it fails. Coze
 * counts a request when it arrives, which is some time between the client's start and the
 * response. Holding the slot for a full window after the response keeps Coze's count within
 * `limit` however the network delays or bunches requests. The price is one round trip per
 * window: with 100 ms round trips the rate is about 9% below `limit`.
 */
export class RequestWindow {
  private readonly limit: number;
  private readonly windowMs: number;
  private inFlight = 0;
  /** `performance.now()` times at which settled requests leave the window, oldest first. */
  private readonly releases: number[] = [];
  private head = 0;
  private waiters: (() => void)[] = [];

  /** `limit` is a whole number of requests, at least 1. */
  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Waits until the window has room, then counts one request as started. */
  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = performance.now();
      this.expire(now);
      if (this.inFlight + this.releases.length - this.head < this.limit) {
        this.inFlight += 1;
        return;
      }
      await this.waitForRoom(now, signal);
    }
  }

  /** Marks one started request as settled. Its slot frees `windowMs` from now. */
  settle(): void {
    this.inFlight -= 1;
    this.releases.push(performance.now() + this.windowMs);
    for (const wake of this.waiters.splice(0)) wake();
  }

  private expire(now: number): void {
    while (this.head < this.releases.length && this.releases[this.head]! <= now) this.head += 1;
    if (this.head > 1_024 && this.head * 2 > this.releases.length) {
      this.releases.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Sleeps until the oldest slot frees or, when every slot is held by a request in flight, until one settles. */
  private waitForRoom(now: number, signal?: AbortSignal): Promise<void> {
    const nextRelease = this.releases[this.head];
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((waiter) => waiter !== done);
        reject(signal!.reason);
      };
      const timer = nextRelease === undefined ? undefined : setTimeout(done, Math.max(1, Math.ceil(nextRelease - now)));
      if (nextRelease === undefined) this.waiters.push(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
