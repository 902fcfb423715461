import { describe, expect, it } from 'vitest';

import { formatDuration, parseDuration } from '../../src/config/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['0.5h', 1_800_000],
    ['0s', 0],
    ['0', 0],
    ['0.0', 0],
    [' 2 m ', 120_000],
    ['1.4ms', 1],
  ])('%j is %i ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each(['30', '', 's', '-1s', '1d', '1.s', '.5s', '1e3ms', '1 s 2', '5 minutes', 'Infinitys', '5M', '10S', '250MS', '01'])(
    'rejects %j',
    (text) => {
      expect(() => parseDuration(text)).toThrow(RangeError);
    },
  );

  it('message names the option and the value', () => {
    expect(() => parseDuration('30', '--timeout')).toThrow(
      'Invalid --timeout "30": use a number with a lower-case unit, for example 500ms, 30s, 5m or 1h.',
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [7_200_000, '2h'],
    [300_000, '5m'],
    [90_000, '90s'],
    [1_500, '1500ms'],
    [250, '250ms'],
    [0, '0ms'],
  ])('%i ms is %j', (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });
});
