import { isUtf8 } from 'node:buffer';

import {
  BACKSLASH,
  COLON,
  decodeEscape,
  encodeUtf8,
  hasControlByte,
  KEY,
  QUOTE,
  readHex4,
  simpleEscapeByte,
  skipWhitespace,
} from './node-output-bytes.js';

/**
 * Decodes the `node_output` string of an execute-node body chunk by chunk, as the body
 * arrives, so that the output is hashed and written as it comes rather than after the
 * whole body. It reads exactly what `findNodeOutput` reads from the whole body, and gives up
 * (`push` or `finish` returns undefined) wherever that would, and also when 64 KiB have
 * arrived without the key. The caller then reads the whole body the other way.
 *
 * What `push` returns is valid only until the next `push`: a view of the chunk, or of one
 * buffer that the decoder reuses for every chunk with escapes. A fresh buffer per chunk
 * made 160 MB of garbage for 40 outputs of 4 MiB, and the major collections it caused
 * cost more CPU than the decoding.
 */
export class NodeOutputDecoder {
  private phase: 'prefix' | 'value' | 'suffix' | 'failed' = 'prefix';
  /** The body so far while looking for the key, then the body up to the value's opening quote. */
  private before: Buffer = EMPTY;
  private readonly after: Buffer[] = [];
  /** Value text held over from the previous chunk: an escape that chunk cut in two. */
  private heldEscape: Buffer = EMPTY;
  /** A UTF-8 sequence that the previous chunk cut in two. */
  private heldUtf8: Buffer = EMPTY;
  /** Decoded text of the last chunk that had escapes. */
  private scratch: Buffer = EMPTY;

  /**
   * Takes the next chunk of the body and returns the output bytes it completes, valid until
   * the next call, or undefined once this way cannot read the body.
   */
  push(chunk: Buffer): Buffer | undefined {
    if (this.phase === 'failed') return undefined;
    if (!this.checkUtf8(chunk)) return this.fail();

    if (this.phase === 'prefix') return this.findValue(chunk);
    if (this.phase === 'value') return this.decodeValue(chunk);
    this.after.push(chunk);
    return EMPTY;
  }

  /** Ends the body and returns the text around the value, or undefined if the value never ended. */
  finish(): { before: Buffer; after: Buffer } | undefined {
    if (this.phase !== 'suffix' || this.heldUtf8.length > 0) return this.fail();
    return { before: this.before, after: Buffer.concat(this.after) };
  }

  private fail(): undefined {
    this.phase = 'failed';
    return undefined;
  }

  /** Looks for `"node_output": "` in the body so far, then decodes the value text after it. */
  private findValue(chunk: Buffer): Buffer | undefined {
    const text = this.before.length === 0 ? chunk : Buffer.concat([this.before, chunk]);
    const keyAt = text.indexOf(KEY);
    if (keyAt === -1) return this.waitForKey(text);

    let at = skipWhitespace(text, keyAt + KEY.length);
    if (at === text.length) return this.waitForKey(text);
    if (text[at] !== COLON) return this.fail();
    at = skipWhitespace(text, at + 1);
    if (at === text.length) return this.waitForKey(text);
    if (text[at] !== QUOTE) return this.fail();

    this.before = text.subarray(0, at);
    this.phase = 'value';
    return this.decodeValue(text.subarray(at + 1));
  }

  private waitForKey(text: Buffer): Buffer | undefined {
    if (text.length > MAX_PREFIX_BYTES) return this.fail();
    this.before = text;
    return EMPTY;
  }

  /** Decodes value text up to the closing quote, if it is in `chunk`, and keeps the rest as `after`. */
  private decodeValue(chunk: Buffer): Buffer | undefined {
    const text = this.heldEscape.length === 0 ? chunk : Buffer.concat([this.heldEscape, chunk]);
    this.heldEscape = EMPTY;

    let nextQuote = text.indexOf(QUOTE);
    let nextBackslash = text.indexOf(BACKSLASH);
    if (nextBackslash === -1 || (nextQuote !== -1 && nextQuote < nextBackslash)) {
      // No escape before the value ends: the output is a view of the chunk.
      const end = nextQuote === -1 ? text.length : nextQuote;
      if (hasControlByte(text, 0, end)) return this.fail();
      if (nextQuote !== -1) this.endValue(text, nextQuote);
      return text.subarray(0, end);
    }

    // Copy the chunk once, then decode each escape in place and move the text after it left.
    // Escapes only shrink the text, so the chunk bounds the decoded length.
    if (this.scratch.length < text.length) this.scratch = Buffer.allocUnsafe(text.length);
    const out = this.scratch;
    out.set(text);
    let written = nextBackslash;
    let from = nextBackslash;
    for (;;) {
      if (escapeIsCut(text, from)) {
        if (hasControlByte(text, 0, from)) return this.fail();
        this.heldEscape = Buffer.from(text.subarray(from));
        return out.subarray(0, written);
      }

      const simple = simpleEscapeByte(text[from + 1]!);
      if (simple !== -1) {
        out[written] = simple;
        written += 1;
        from += 2;
      } else {
        const escaped = decodeEscape(text, from);
        if (escaped === undefined) return this.fail();
        written += encodeUtf8(escaped.codePoint, out, written);
        from = escaped.next;
      }
      // Escapes often come in runs, such as `\n\n` between paragraphs.
      if (text[from] === BACKSLASH) continue;

      if (nextQuote !== -1 && nextQuote < from) nextQuote = text.indexOf(QUOTE, from);
      nextBackslash = text.indexOf(BACKSLASH, from);
      const valueGoesOn = nextBackslash !== -1 && (nextQuote === -1 || nextBackslash < nextQuote);
      let spanEnd = text.length;
      if (valueGoesOn) spanEnd = nextBackslash;
      else if (nextQuote !== -1) spanEnd = nextQuote;
      out.copyWithin(written, from, spanEnd);
      written += spanEnd - from;
      from = spanEnd;
      if (valueGoesOn) continue;

      if (hasControlByte(text, 0, spanEnd)) return this.fail();
      if (nextQuote !== -1) this.endValue(text, nextQuote);
      return out.subarray(0, written);
    }
  }

  private endValue(text: Buffer, closingQuote: number): void {
    this.phase = 'suffix';
    this.after.push(text.subarray(closingQuote + 1));
  }

  /**
   * Checks that the body so far is valid UTF-8, as `isUtf8` on the whole body would. A
   * sequence cut at the end of a chunk is held until the next chunk completes it.
   */
  private checkUtf8(chunk: Buffer): boolean {
    let rest = chunk;
    if (this.heldUtf8.length > 0) {
      const missing = utf8SequenceLength(this.heldUtf8[0]!) - this.heldUtf8.length;
      if (chunk.length < missing) {
        this.heldUtf8 = Buffer.concat([this.heldUtf8, chunk]);
        return true;
      }
      if (!isUtf8(Buffer.concat([this.heldUtf8, chunk.subarray(0, missing)]))) return false;
      rest = chunk.subarray(missing);
    }

    const cut = cutSequenceLength(rest);
    if (!isUtf8(rest.subarray(0, rest.length - cut))) return false;
    this.heldUtf8 = cut === 0 ? EMPTY : Buffer.from(rest.subarray(rest.length - cut));
    return true;
  }
}

const EMPTY = Buffer.alloc(0);

/** The key comes after `code` and `msg`, so a body that has not reached it by then is read whole. */
const MAX_PREFIX_BYTES = 64 * 1024;

/**
 * Returns whether the escape at `at` may continue past the end of `text`: a backslash with
 * less than a whole `\uXXXX` after it, or a high surrogate whose low half may follow.
 */
function escapeIsCut(text: Buffer, at: number): boolean {
  if (at + 1 >= text.length) return true;
  if (text[at + 1] !== 0x75) return false;
  if (at + 6 > text.length) return true;

  const unit = readHex4(text, at + 2);
  const isHigh = unit !== undefined && unit >= 0xd800 && unit <= 0xdbff;
  return isHigh && at + 12 > text.length && (at + 6 === text.length || text[at + 6] === BACKSLASH);
}

/** Returns the length of the UTF-8 sequence that `lead` starts, or 1 for a byte that starts none. */
function utf8SequenceLength(lead: number): number {
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  if (lead >= 0xe0) return lead <= 0xef ? 3 : 1;
  if (lead >= 0xc2) return 2;
  return 1;
}

/** Returns how many bytes at the end of `bytes` start a UTF-8 sequence that they do not finish. */
function cutSequenceLength(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back += 1) {
    const byte = bytes[bytes.length - back]!;
    if ((byte & 0xc0) === 0x80) continue;
    return utf8SequenceLength(byte) > back ? back : 0;
  }
  return 0;
}
