const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  kib: 1_024,
  mib: 1_048_576,
  gib: 1_073_741_824,
};

/** Parses a byte size such as `1000000`, `64MiB` or `1MB` (decimal MB, binary MiB). */
export function parseSize(text: string, optionName = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = UNIT_BYTES[(match?.[2] || 'b').toLowerCase()];
  if (!match || unit === undefined) {
    throw new RangeError(`Invalid ${optionName} "${text}": use bytes or a unit, for example 1000000, 1MB or 64MiB.`);
  }
  return Math.round(Number(match[1]) * unit);
}
