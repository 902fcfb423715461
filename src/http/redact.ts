/**
 * Removes a bearer token from text that came back from a server, such as an error body
 * that echoes the request headers. The token itself and anything after `Bearer` go.
 */
export function scrubSecret(text: string, secret: string | undefined): string {
  let scrubbed = text;
  if (secret !== undefined && secret.length > 0) {
    scrubbed = scrubbed.split(secret).join('[REDACTED]');
  }
  return scrubbed.replace(/(bearer\s+)[^\s"',;}]+/gi, '$1[REDACTED]');
}

/**
 * Returns the first line of a body, cut to `maxChars` UTF-16 units, for error messages.
 * The cut never splits a surrogate pair, so the result is valid UTF-8 when written.
 */
export function firstLine(text: string, maxChars = 200): string {
  const line = text.trimStart().split(/\r?\n/, 1)[0] ?? '';
  if (line.length <= maxChars) return line;

  const lastUnit = line.charCodeAt(maxChars - 1);
  const end = lastUnit >= 0xd800 && lastUnit <= 0xdbff ? maxChars - 1 : maxChars;
  return `${line.slice(0, end)}…`;
}

/**
 * C0 and C1 control characters and DEL, which can start a terminal escape sequence, and the
 * line and paragraph separators and bidirectional controls, which can break a line or reverse
 * how the rest of it displays.
 */
const UNSAFE_ON_A_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** The part of `UNSAFE_ON_A_TERMINAL` that `JSON.stringify` leaves raw, because it escapes C0 itself. */
export const UNSAFE_RAW_IN_JSON = /[\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** Returns the six-character `\u001b`-style escape of one UTF-16 unit. */
export function unicodeEscape(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** Replaces what remote text (a node title, a Coze `msg`) must not print raw on a terminal with `\u001b`-style escapes. */
export function escapeControlCharacters(text: string): string {
  return text.replace(UNSAFE_ON_A_TERMINAL, unicodeEscape);
}

/**
 * `JSON.stringify`, with the characters of `UNSAFE_RAW_IN_JSON` written as escapes. The value
 * stays the same, but line-based readers, Python's `splitlines` among them, no longer break a
 * record at U+0085, U+2028 or U+2029, and a terminal shows no raw bidirectional control.
 */
export function jsonForReaders(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(UNSAFE_RAW_IN_JSON, unicodeEscape);
}
