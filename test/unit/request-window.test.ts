import { performance } from 'node:perf_hooks';

import { describe, expect, it } from 'vitest';

import { RequestWindow } from '../../src/http/request-window.js';

/** Timers may fire a millisecond early against `performance.now()`; checks allow that much. */
const TIMER_SLACK_MS = 2;

describe('RequestWindow', () => {
  it('admits up to the limit at once', async () => {
    const window = new RequestWindow(3, 200);
    const startedAt = performance.now();

    for (let request = 0; request < 3; request += 1) await window.acquire();

    expect(performance.now() - startedAt).toBeLessThan(50);
  });

  it('frees a slot a window after settle', async () => {
    const window = new RequestWindow(2, 100);
    await window.acquire();
    await window.acquire();
    window.settle();
    const settledAt = performance.now();

    await window.acquire();

    expect(performance.now() - settledAt).toBeGreaterThanOrEqual(100 - TIMER_SLACK_MS);
  });

  it('holds slots of requests in flight', async () => {
    const window = new RequestWindow(1, 50);
    await window.acquire();
    let admitted = false;
    const waiting = window.acquire().then(() => (admitted = true));

    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(admitted).toBe(false);

    window.settle();
    const settledAt = performance.now();
    await waiting;
    expect(performance.now() - settledAt).toBeGreaterThanOrEqual(50 - TIMER_SLACK_MS);
  });

  it('abort rejects a waiting acquire', async () => {
    const window = new RequestWindow(1, 10_000);
    const controller = new AbortController();
    const reason = new Error('run interrupted');
    await window.acquire();
    window.settle();

    const waiting = window.acquire(controller.signal);
    controller.abort(reason);

    await expect(waiting).rejects.toBe(reason);
  });
});
