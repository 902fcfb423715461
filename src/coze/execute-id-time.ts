/** 2023-01-01T00:00:00Z, before Coze existed: an earlier decoded time means the guess is wrong. */
const EARLIEST_PLAUSIBLE_MS = Date.UTC(2023, 0, 1);

/**
 * Estimates when an execution started from its `execute_id`, for the grace period in which
 * Coze may not know a new execution yet. Coze ids look like ByteDance's generated ids, whose
 * top 32 bits are Unix seconds; recorded ids decode to dates that match their runs.
 * NOTE: this layout is not documented by Coze. A decoded time outside 2023..now+1 day is
 * treated as unknown, so a wrong guess only means no grace period.
 */
export function estimateStartFromId(executeId: string, nowMs = Date.now()): number | undefined {
  if (!/^\d{1,20}$/.test(executeId)) return undefined;

  const id = BigInt(executeId);
  if (id >= 1n << 64n) return undefined;

  const startMs = Number(id >> 32n) * 1000;
  if (startMs < EARLIEST_PLAUSIBLE_MS || startMs > nowMs + 86_400_000) return undefined;
  return startMs;
}
