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
 * Replaces C0 and C1 control characters and DEL with `\u001b`-style escapes, so that remote
 * text (a node title, a Coze `msg`) printed on a terminal cannot start an escape sequence. Line
 * and paragraph separators and bidirectional controls, which can break a line or reverse how the
 * rest of it displays, are escaped too.
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(
    /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
