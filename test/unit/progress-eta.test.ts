import { describe, expect, it } from 'vitest';

import { estimateRemaining } from '../../src/batch/progress-bar.js';
import type { ProgressSnapshot } from '../../src/batch/progress-tracker.js';

function snapshot(entriesDone: number, entriesKnown: number): ProgressSnapshot {
  return { entriesDone, entriesKnown, bytes: 0, executionsDone: 0, executionsTotal: 1 };
}

describe('estimateRemaining', () => {
  it.each([
    ['nothing settled yet', snapshot(0, 100), 5_000, '?'],
    ['half done after 10 s', snapshot(50, 100), 10_000, '10s'],
    ['minutes left', snapshot(10, 100), 10_000, '1m30s'],
    ['hours left', snapshot(1, 400), 10_000, '1h06m'],
    ['all done', snapshot(100, 100), 10_000, '0s'],
  ])('%s', (_name, value, elapsedMs, expected) => {
    expect(estimateRemaining(value, elapsedMs)).toBe(expected);
  });
});
