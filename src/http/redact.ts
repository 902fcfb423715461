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

/** Returns the first line of a body, cut to `maxChars`, for error messages. */
export function firstLine(text: string, maxChars = 200): string {
  const line = text.trimStart().split(/\r?\n/, 1)[0] ?? '';
  return line.length > maxChars ? `${line.slice(0, maxChars)}…` : line;
}
