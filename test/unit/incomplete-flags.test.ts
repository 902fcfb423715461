import { describe, expect, it } from 'vitest';

import { DEFAULT_FLAG_BYTES, incompleteReasons } from '../../src/archive/incomplete-flags.js';

describe('incompleteReasons', () => {
  it('default thresholds are both readings of 1 MB', () => {
    expect(DEFAULT_FLAG_BYTES).toEqual([1_000_000, 1_048_576]);
  });

  it.each([
    [0, []],
    [999_999, []],
    [1_000_000, ['size_at_least_1000000_bytes']],
    [1_048_575, ['size_at_least_1000000_bytes']],
    [1_048_576, ['size_at_least_1000000_bytes', 'size_at_least_1048576_bytes']],
  ])('%i bytes', (bytes, expected) => {
    expect(incompleteReasons({ bytes })).toEqual(expected);
  });

  it('400,000 Chinese characters flagged by bytes', () => {
    const text = '字'.repeat(400_000);
    const bytes = Buffer.byteLength(text, 'utf8');

    expect(text.length).toBe(400_000);
    expect(bytes).toBe(1_200_000);
    expect(incompleteReasons({ bytes })).toEqual(['size_at_least_1000000_bytes', 'size_at_least_1048576_bytes']);
  });

  it('is_finish false', () => {
    expect(incompleteReasons({ bytes: 10, isFinish: false })).toEqual(['is_finish_false']);
  });

  it('is_finish true or unknown', () => {
    expect(incompleteReasons({ bytes: 10, isFinish: true })).toEqual([]);
    expect(incompleteReasons({ bytes: 10, isFinish: undefined })).toEqual([]);
  });

  it('output trimmed', () => {
    expect(incompleteReasons({ bytes: 10, isOutputTrimmed: true })).toEqual(['output_trimmed']);
    expect(incompleteReasons({ bytes: 10, isOutputTrimmed: false })).toEqual([]);
  });

  it('all reasons together in order', () => {
    expect(incompleteReasons({ bytes: 2_000_000, isFinish: false, isOutputTrimmed: true })).toEqual([
      'size_at_least_1000000_bytes',
      'size_at_least_1048576_bytes',
      'is_finish_false',
      'output_trimmed',
    ]);
  });

  it('custom thresholds sorted', () => {
    const thresholds = [500, 100];

    expect(incompleteReasons({ bytes: 499 }, thresholds)).toEqual(['size_at_least_100_bytes']);
    expect(incompleteReasons({ bytes: 500 }, thresholds)).toEqual(['size_at_least_100_bytes', 'size_at_least_500_bytes']);
    expect(thresholds).toEqual([500, 100]);
  });

  it('no thresholds', () => {
    expect(incompleteReasons({ bytes: 5_000_000 }, [])).toEqual([]);
  });
});
