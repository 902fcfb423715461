/**
 * Parses a `Retry-After` header given as seconds or as an HTTP date. Returns milliseconds
 * from `nowMs`, or undefined when the value is absent, negative, unparsable or in the past,
 * so that the caller falls back to its own backoff.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;

  const trimmed = text.trim();
  if (trimmed === '') return undefined;

  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    return Math.round(Number(trimmed) * 1000);
  }
  if (/^[+-]?\d/.test(trimmed)) return undefined;

  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;

  const waitMs = dateMs - nowMs;
  return waitMs > 0 ? waitMs : undefined;
}
