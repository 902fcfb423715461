import { isUtf8 } from 'node:buffer';

import { hasControlByte } from './control-bytes.js';

/**
 * Reads the `node_output` string of an execute-node body straight from its bytes.
 *
 * `JSON.parse` would decode a 4 MB output into a JavaScript string, and the write would
 * encode it back to UTF-8: in `npm run bench` that round trip was most of the archiver's
 * CPU time on large outputs. A JSON string is its UTF-8 bytes apart from its escapes, so
 * this copies the spans between escapes and decodes only the escapes. The rest of the body
 * is small, and the caller parses it with the value replaced by a placeholder.
 *
 * Anything this does not read exactly as `JSON.parse` would (invalid UTF-8, a raw control
 * character, a malformed escape, no `"node_output":` key) returns undefined, and the caller
 * falls back to parsing the whole body.
 */

/** The `node_output` value of a body, located and checked but not yet decoded. */
export interface NodeOutputSpan {
  /** The body up to the value's opening quote. */
  before: Buffer;
  /** The body after the value's closing quote. */
  after: Buffer;
  /**
   * Returns what `Buffer.from(JSON.parse(body)...node_output, 'utf8')` gives. The escapes are
   * decoded in place, over the value's own text, so a 4 MB output needs no second buffer.
   * This changes the body, so call it only once the rest of the body has been accepted.
   */
  decode(): Buffer;
}

export const KEY = Buffer.from('"node_output"');
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COLON = 0x3a;

/**
 * The byte that each one-character escape encodes, indexed by the letter after the backslash,
 * or -1. A table, not a map, because a long output has thousands of `\n` escapes.
 */
const SIMPLE_ESCAPES = new Int16Array(256).fill(-1);
for (const [letter, byte] of [
  [0x22, 0x22], // \"
  [0x5c, 0x5c], // \\
  [0x2f, 0x2f], // \/
  [0x62, 0x08], // \b
  [0x66, 0x0c], // \f
  [0x6e, 0x0a], // \n
  [0x72, 0x0d], // \r
  [0x74, 0x09], // \t
] as const) {
  SIMPLE_ESCAPES[letter] = byte;
}

/** Returns the byte that the escape of a backslash and `letter` encodes, or -1 if that is no one-character escape. */
export function simpleEscapeByte(letter: number): number {
  return SIMPLE_ESCAPES[letter & 0xff]!;
}

/** Finds the first `"node_output": "..."` in `body` and checks its value. */
export function findNodeOutput(body: Buffer): NodeOutputSpan | undefined {
  if (!isUtf8(body)) return undefined;

  const keyAt = body.indexOf(KEY);
  if (keyAt === -1) return undefined;
  let at = skipWhitespace(body, keyAt + KEY.length);
  if (body[at] !== COLON) return undefined;
  at = skipWhitespace(body, at + 1);
  if (body[at] !== QUOTE) return undefined;

  const start = at + 1;
  const end = findStringEnd(body, start);
  // Escapes are printable, so checking the raw text checks every character once.
  if (end === undefined || hasControlByte(body, start, end)) return undefined;

  let decoded: Buffer | undefined;
  return {
    before: body.subarray(0, at),
    after: body.subarray(end + 1),
    decode: () => (decoded ??= body.subarray(start, unescapeInPlace(body, start, end))),
  };
}

export function skipWhitespace(body: Buffer, from: number): number {
  let at = from;
  while (body[at] === 0x20 || body[at] === 0x09 || body[at] === 0x0a || body[at] === 0x0d) at += 1;
  return at;
}

/**
 * Returns the index of the closing quote of the JSON string whose text starts at `start`,
 * or undefined if an escape is malformed or the string never ends.
 */
function findStringEnd(body: Buffer, start: number): number | undefined {
  let nextQuote = body.indexOf(QUOTE, start);
  let nextBackslash = body.indexOf(BACKSLASH, start);
  let from = start;
  for (;;) {
    // Both searches run ahead of `from` and are repeated only once passed, so a long
    // output with many escapes is still scanned once, not once per escape.
    if (nextQuote !== -1 && nextQuote < from) nextQuote = body.indexOf(QUOTE, from);
    if (nextQuote === -1) return undefined;
    if (nextBackslash !== -1 && nextBackslash < from) nextBackslash = body.indexOf(BACKSLASH, from);
    if (nextBackslash === -1 || nextQuote < nextBackslash) return nextQuote;

    const escaped = decodeEscape(body, nextBackslash);
    if (escaped === undefined) return undefined;
    from = escaped.next;
  }
}

/**
 * Decodes the escapes of the checked string `[start, end)` over its own bytes and returns
 * where the decoded text ends. Each escape is at least as long as its UTF-8 bytes, so the
 * write position never passes the read position.
 */
function unescapeInPlace(body: Buffer, start: number, end: number): number {
  let written = body.indexOf(BACKSLASH, start);
  if (written === -1 || written > end) return end;

  let from = written;
  while (from < end) {
    let nextBackslash = body.indexOf(BACKSLASH, from);
    if (nextBackslash === -1 || nextBackslash > end) nextBackslash = end;
    written += body.copy(body, written, from, nextBackslash);
    if (nextBackslash === end) break;

    const escaped = decodeEscape(body, nextBackslash)!;
    written += encodeUtf8(escaped.codePoint, body, written);
    from = escaped.next;
  }
  return written;
}

/** Decodes the escape at `at` (a backslash): its code point and where the text goes on. */
export function decodeEscape(body: Buffer, at: number): { codePoint: number; next: number } | undefined {
  const letter = body[at + 1];
  if (letter === undefined) return undefined;
  const simple = simpleEscapeByte(letter);
  if (simple !== -1) return { codePoint: simple, next: at + 2 };
  if (letter !== 0x75) return undefined;

  const unit = readHex4(body, at + 2);
  if (unit === undefined) return undefined;
  const isHigh = unit >= 0xd800 && unit <= 0xdbff;
  const isLow = unit >= 0xdc00 && unit <= 0xdfff;

  if (isHigh && body[at + 6] === BACKSLASH && body[at + 7] === 0x75) {
    const low = readHex4(body, at + 8);
    if (low !== undefined && low >= 0xdc00 && low <= 0xdfff) {
      return { codePoint: 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), next: at + 12 };
    }
  }
  // A lone surrogate becomes U+FFFD, as Buffer.from does when it encodes such a string.
  return { codePoint: isHigh || isLow ? 0xfffd : unit, next: at + 6 };
}

export function readHex4(body: Buffer, at: number): number | undefined {
  let value = 0;
  for (let i = at; i < at + 4; i += 1) {
    const digit = hexDigit(body[i]);
    if (digit === undefined) return undefined;
    value = value * 16 + digit;
  }
  return value;
}

function hexDigit(byte: number | undefined): number | undefined {
  if (byte === undefined) return undefined;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return undefined;
}

/** Writes one code point as UTF-8 at `at` and returns the number of bytes written. */
export function encodeUtf8(codePoint: number, out: Buffer, at: number): number {
  if (codePoint < 0x80) {
    out[at] = codePoint;
    return 1;
  }
  if (codePoint < 0x800) {
    out[at] = 0xc0 | (codePoint >> 6);
    out[at + 1] = 0x80 | (codePoint & 0x3f);
    return 2;
  }
  if (codePoint < 0x10000) {
    out[at] = 0xe0 | (codePoint >> 12);
    out[at + 1] = 0x80 | ((codePoint >> 6) & 0x3f);
    out[at + 2] = 0x80 | (codePoint & 0x3f);
    return 3;
  }
  out[at] = 0xf0 | (codePoint >> 18);
  out[at + 1] = 0x80 | ((codePoint >> 12) & 0x3f);
  out[at + 2] = 0x80 | ((codePoint >> 6) & 0x3f);
  out[at + 3] = 0x80 | (codePoint & 0x3f);
  return 4;
}
