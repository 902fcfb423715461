import { isUtf8 } from 'node:buffer';

import { hasControlByte } from './control-bytes.js';
import {
  BACKSLASH,
  COLON,
  decodeEscape,
  encodeUtf8,
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
  /** The index in the last chunk at which the value text it decoded ends. */
  private stop = 0;

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

    const nextQuote = text.indexOf(QUOTE);
    const nextBackslash = text.indexOf(BACKSLASH);
    let output: Buffer;
    if (nextBackslash === -1 || (nextQuote !== -1 && nextQuote < nextBackslash)) {
      // No escape before the value ends: the output is a view of the chunk.
      this.stop = nextQuote === -1 ? text.length : nextQuote;
      output = text.subarray(0, this.stop);
    } else {
      if (this.scratch.length < text.length) this.scratch = Buffer.allocUnsafe(text.length);
      const written = this.unescape(text, nextQuote, nextBackslash);
      if (written === -1) return this.fail();
      output = this.scratch.subarray(0, written);
    }

    // Escapes are printable, so checking the raw text checks every character once.
    const stop = this.stop;
    if (hasControlByte(text, 0, stop)) return this.fail();
    if (stop < text.length && text[stop] === BACKSLASH) this.heldEscape = Buffer.from(text.subarray(stop));
    else if (stop < text.length) this.endValue(text, stop);
    return output;
  }

  /**
   * Copies `text` to `scratch` and decodes its escapes there, from the first at `firstBackslash`.
   * Returns the decoded length, or -1 for a malformed escape, and sets `stop`.
   *
   * Rare cases end the loop and are left to the caller, because V8 throws optimized code away
   * when it first meets a case it has not run. Compiling again took up to 40 ms per archiver run.
   */
  private unescape(text: Buffer, firstQuote: number, firstBackslash: number): number {
    const out = this.scratch;
    out.set(text);
    // The end of `text` is used for a quote or backslash that is not there, so that the same
    // comparisons run on every chunk.
    let nextQuote = firstQuote === -1 ? text.length : firstQuote;
    let written = firstBackslash;
    let from = firstBackslash;
    for (;;) {
      if (escapeIsCut(text, from)) break;

      const simple = simpleEscapeByte(text[from + 1]!);
      if (simple !== -1) {
        out[written] = simple;
        written += 1;
        from += 2;
      } else {
        const escaped = decodeEscape(text, from);
        if (escaped === undefined) return -1;
        written += encodeUtf8(escaped.codePoint, out, written);
        from = escaped.next;
      }
      // Escapes often come in runs, such as `\n\n` between paragraphs.
      if (from < text.length && text[from] === BACKSLASH) continue;

      if (nextQuote < from) nextQuote = indexOrEnd(text, QUOTE, from);
      const nextBackslash = indexOrEnd(text, BACKSLASH, from);
      const valueGoesOn = nextBackslash < nextQuote;
      const spanEnd = valueGoesOn ? nextBackslash : nextQuote;
      out.copyWithin(written, from, spanEnd);
      written += spanEnd - from;
      from = spanEnd;
      if (!valueGoesOn) break;
    }
    this.stop = from;
    return written;
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

/** Returns the index of the first `byte` in `text` at or after `from`, or the length of `text`. */
function indexOrEnd(text: Buffer, byte: number, from: number): number {
  const at = text.indexOf(byte, from);
  return at === -1 ? text.length : at;
}

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
