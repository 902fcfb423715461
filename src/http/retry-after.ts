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

  const dateMs = parseHttpDate(trimmed);
  if (Number.isNaN(dateMs)) return undefined;

  const waitMs = dateMs - nowMs;
  return waitMs > 0 ? waitMs : undefined;
}

/** The three date forms HTTP allows (RFC 9110): IMF-fixdate, RFC 850 and asctime. */
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC_850_DATE = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * Parses an HTTP date, or returns NaN. `Date.parse` alone accepts text such as "later 2099",
 * which would turn a garbled header into a wait of decades.
 */
function parseHttpDate(text: string): number {
  if (IMF_FIXDATE.test(text) || RFC_850_DATE.test(text)) return Date.parse(text);
  // asctime carries no zone; HTTP defines it as GMT, but V8 would read it as local time.
  if (ASCTIME_DATE.test(text)) return Date.parse(`${text} GMT`);
  return Number.NaN;
}
