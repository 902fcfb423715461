const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration with a unit (`500ms`, `30s`, `5m`, `1h`, `1.5s`) into milliseconds.
 * A bare number is rejected because `--timeout 30` in a cron line is ambiguous; a bare 0 is
 * not, so it needs no unit. Units are lower case only: `5M` reads as months in some tools.
 */
export function parseDuration(text: string, optionName = 'duration'): number {
  if (/^\s*0+(?:\.0+)?\s*$/.test(text)) return 0;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text);
  if (!match) {
    throw new RangeError(
      `Invalid ${optionName} "${text}": use a number with a lower-case unit, for example 500ms, 30s, 5m or 1h.`,
    );
  }

  const value = Number(match[1]);
  const unit = UNIT_MS[match[2]!]!;
  return Math.round(value * unit);
}

/** Formats milliseconds for messages and help text, in the largest whole unit. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0 && ms > 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
