import { describe, expect, it } from 'vitest';

import { CozeOutageError } from '../../src/coze/errors.js';
import { MIN_OUTAGE_FAILURES, OutageBreaker } from '../../src/http/outage-breaker.js';

/** Builds a breaker on a clock the test moves by hand. */
function breakerAt(maxOutageMs: number): { breaker: OutageBreaker; advance: (ms: number) => void } {
  let now = 1_000;
  return { breaker: new OutageBreaker(maxOutageMs, () => now), advance: (ms) => (now += ms) };
}

function failTimes(breaker: OutageBreaker, count: number): CozeOutageError | undefined {
  let outage: CozeOutageError | undefined;
  for (let index = 0; index < count; index += 1) outage = breaker.recordFailure(new Error(`HTTP 502, attempt ${index + 1}`));
  return outage;
}

describe('outage breaker', () => {
  it('trips after the limit and enough failures', () => {
    const { breaker, advance } = breakerAt(60_000);
    advance(60_000);
    const outage = failTimes(breaker, MIN_OUTAGE_FAILURES);

    expect(outage).toBeInstanceOf(CozeOutageError);
    expect(breaker.tripped).toBe(outage);
    expect(outage?.message).toContain('no usable response for 1m');
    expect(outage?.message).toContain(`the last ${MIN_OUTAGE_FAILURES} attempts all failed (the last: HTTP 502, attempt 10)`);
    expect(outage?.message).toContain('run the same command again to resume');
  });

  it('waits for the limit to pass', () => {
    const { breaker, advance } = breakerAt(60_000);
    advance(59_999);

    expect(failTimes(breaker, 3 * MIN_OUTAGE_FAILURES)).toBeUndefined();
    advance(1);
    expect(breaker.recordFailure(new Error('reset'))).toBeInstanceOf(CozeOutageError);
  });

  it('waits for enough failures in a row', () => {
    const { breaker, advance } = breakerAt(1_000);
    advance(10_000);

    expect(failTimes(breaker, MIN_OUTAGE_FAILURES - 1)).toBeUndefined();
    expect(breaker.recordFailure(new Error('reset'))).toBeInstanceOf(CozeOutageError);
  });

  it('restarts both counts on a response', () => {
    const { breaker, advance } = breakerAt(1_000);
    advance(10_000);
    failTimes(breaker, MIN_OUTAGE_FAILURES - 1);
    breaker.recordResponse();
    advance(999);

    expect(failTimes(breaker, MIN_OUTAGE_FAILURES)).toBeUndefined();
    advance(1);
    expect(breaker.recordFailure(new Error('reset'))).toBeInstanceOf(CozeOutageError);
  });

  it('never trips with a limit of 0', () => {
    const { breaker, advance } = breakerAt(0);
    advance(24 * 3_600_000);

    expect(failTimes(breaker, 1_000)).toBeUndefined();
    expect(breaker.tripped).toBeUndefined();
  });

  it('stays tripped after a response', () => {
    const { breaker, advance } = breakerAt(1_000);
    advance(1_000);
    const outage = failTimes(breaker, MIN_OUTAGE_FAILURES);
    breaker.recordResponse();

    expect(breaker.tripped).toBe(outage);
    expect(breaker.recordFailure(new Error('later'))).toBe(outage);
  });
});
