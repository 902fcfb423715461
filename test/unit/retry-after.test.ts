import { describe, expect, it } from 'vitest';

import { parseRetryAfter } from '../../src/http/retry-after.js';

/** Wednesday 18 June 2025, 08:00:00 UTC. */
const NOW_MS = Date.UTC(2025, 5, 18, 8, 0, 0);

describe('parseRetryAfter', () => {
  it.each([
    ['30', 30_000],
    ['0', 0],
    ['1.5', 1_500],
    ['0.25', 250],
    [' 12 ', 12_000],
    ['2099', 2_099_000],
  ])('seconds %j', (header, expected) => {
    expect(parseRetryAfter(header, NOW_MS)).toBe(expected);
  });

  it('HTTP date in the future', () => {
    expect(parseRetryAfter('Wed, 18 Jun 2025 08:00:45 GMT', NOW_MS)).toBe(45_000);
  });

  it('obsolete RFC 850 date in the future', () => {
    expect(parseRetryAfter('Wednesday, 18-Jun-25 08:01:00 GMT', NOW_MS)).toBe(60_000);
  });

  it('HTTP date in the past', () => {
    expect(parseRetryAfter('Wed, 18 Jun 2025 07:59:00 GMT', NOW_MS)).toBeUndefined();
  });

  it('HTTP date equal to now', () => {
    expect(parseRetryAfter('Wed, 18 Jun 2025 08:00:00 GMT', NOW_MS)).toBeUndefined();
  });

  it.each(['-5', '-0.5', '+5', '1e3', '1.', '5s', '30 seconds'])('number-like garbage %j', (header) => {
    expect(parseRetryAfter(header, NOW_MS)).toBeUndefined();
  });

  it.each(['soon', 'retry later', 'later 2099'])('word garbage %j', (header) => {
    expect(parseRetryAfter(header, NOW_MS)).toBeUndefined();
  });

  it.each(['', '   ', undefined])('empty or absent %j', (header) => {
    expect(parseRetryAfter(header, NOW_MS)).toBeUndefined();
  });

  it('array header uses the first value', () => {
    expect(parseRetryAfter(['7', '9'], NOW_MS)).toBe(7_000);
  });

  it('empty array header', () => {
    expect(parseRetryAfter([], NOW_MS)).toBeUndefined();
  });
});
