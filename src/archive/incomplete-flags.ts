/**
 * Coze documents that output over "1 MB" may come back incomplete, without stating whether
 * that is 1,000,000 or 1,048,576 bytes. Both readings flag by default, so the lower one decides.
 */
export const DEFAULT_FLAG_BYTES: readonly number[] = [1_000_000, 1_048_576];

export type IncompleteReason = `size_at_least_${number}_bytes` | 'is_finish_false' | 'output_trimmed';

export interface IncompleteFacts {
  /** UTF-8 byte length, never string length: 400,000 Chinese characters are 1.2 MB. */
  bytes: number;
  isFinish?: boolean | undefined;
  isOutputTrimmed?: boolean | undefined;
}

/** Lists why an output may be incomplete; an empty list means nothing suggests it. */
export function incompleteReasons(facts: IncompleteFacts, flagBytes: readonly number[] = DEFAULT_FLAG_BYTES): IncompleteReason[] {
  const reasons: IncompleteReason[] = [];

  for (const threshold of [...flagBytes].sort((a, b) => a - b)) {
    if (facts.bytes >= threshold) reasons.push(`size_at_least_${threshold}_bytes`);
  }
  if (facts.isFinish === false) reasons.push('is_finish_false');
  if (facts.isOutputTrimmed === true) reasons.push('output_trimmed');
  return reasons;
}
