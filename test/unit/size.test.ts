import { describe, expect, it } from 'vitest';

import { parseSize } from '../../src/config/size.js';

describe('parseSize', () => {
  it.each([
    ['1000000', 1_000_000],
    ['0', 0],
    ['1b', 1],
    ['1KB', 1_000],
    ['1MB', 1_000_000],
    ['2GB', 2_000_000_000],
    ['1KiB', 1_024],
    ['64MiB', 67_108_864],
    ['1GiB', 1_073_741_824],
    ['1mb', 1_000_000],
    ['1mib', 1_048_576],
    ['1.5KiB', 1_536],
    [' 3 MB ', 3_000_000],
  ])('%j is %i bytes', (text, expected) => {
    expect(parseSize(text)).toBe(expected);
  });

  it.each(['', 'MB', '-1', '-1MB', '1k', '1m', '1XB', '1e6', '1.MB', '1 M B', 'ten'])('rejects %j', (text) => {
    expect(() => parseSize(text)).toThrow(RangeError);
  });

  it('message names the option and the value', () => {
    expect(() => parseSize('1k', '--max-response-size')).toThrow(
      'Invalid --max-response-size "1k": use bytes or a unit, for example 1000000, 1MB or 64MiB.',
    );
  });
});
