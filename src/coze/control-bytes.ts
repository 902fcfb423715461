/**
 * Finds bytes below 0x20, which JSON forbids inside a string, in the raw text of an output.
 * Every byte of every output passes this check, so long ranges are scanned by a small
 * WebAssembly function, 16 bytes per SIMD instruction. On the 2-core test machine it took
 * 5 ms for 160 MiB, copy into its memory included, where the JavaScript word loop took 22 to
 * 25 ms. Short ranges use the loop, and so does a runtime without WebAssembly SIMD, though
 * undici, the HTTP client, needs WebAssembly for its own parser.
 */

/** Ranges shorter than this skip the copy into WebAssembly memory. */
const SIMD_MIN_BYTES = 1024;

/** Bytes scanned per copy: the WebAssembly memory's one page of 64 KiB. */
const WINDOW_BYTES = 64 * 1024;

/** Returns whether any byte in `[start, end)` of `bytes` is below 0x20. */
export function hasControlByte(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start >= SIMD_MIN_BYTES) {
    const scanner = simdScanner();
    if (scanner !== undefined) return scanner(bytes, start, end);
  }
  return hasControlByteInWords(bytes, start, end);
}

/**
 * Returns whether any byte in `[start, end)` is below 0x20, in JavaScript. The aligned
 * middle is tested four bytes at a time: `(word - 0x20202020) & ~word & 0x80808080` is
 * non-zero exactly when some byte of the word is below 0x20.
 *
 * The loops sit in functions of their own. With them all in one function, V8 compiled the
 * word loop while it ran (on-stack replacement) and dropped that code when it reached the byte
 * loop after it, whose code had not run yet. That happened on almost every call, up to 937
 * times in one bench run, and one profiled run spent 58% of its CPU time in this check.
 */
export function hasControlByteInWords(bytes: Uint8Array, start: number, end: number): boolean {
  const misaligned = (bytes.byteOffset + start) % 4;
  const wordsStart = Math.min(end, start + (misaligned === 0 ? 0 : 4 - misaligned));
  // Whole groups of four words only, so the word loop has no tail for V8 to meet late.
  const wordCount = Math.max(0, Math.floor((end - wordsStart) / 16)) * 4;
  const wordsEnd = wordsStart + wordCount * 4;

  if (hasControlByteOneByOne(bytes, start, wordsStart) || hasControlByteOneByOne(bytes, wordsEnd, end)) return true;
  if (wordCount === 0) return false;
  return (controlByteFlags(new Int32Array(bytes.buffer, bytes.byteOffset + wordsStart, wordCount)) & (0x80808080 | 0)) !== 0;
}

function hasControlByteOneByOne(bytes: Uint8Array, start: number, end: number): boolean {
  for (let at = start; at < end; at += 1) {
    if (bytes[at]! < 0x20) return true;
  }
  return false;
}

/**
 * Returns the words' control-byte flags ORed together, for a multiple of four words. Int32
 * arithmetic with `| 0` and no branch in the loop is about twice as fast here as Uint32 words
 * tested one by one, and four words per turn halve it again.
 */
function controlByteFlags(words: Int32Array): number {
  let flags = 0;
  for (let i = 0; i < words.length; i += 4) {
    const a = words[i]! | 0;
    const b = words[i + 1]! | 0;
    const c = words[i + 2]! | 0;
    const d = words[i + 3]! | 0;
    flags |= (((a - 0x20202020) | 0) & ~a) | (((b - 0x20202020) | 0) & ~b);
    flags |= (((c - 0x20202020) | 0) & ~c) | (((d - 0x20202020) | 0) & ~d);
  }
  return flags;
}

/** Returns whether long ranges are scanned with SIMD here, rather than with the word loop. */
export function simdScanAvailable(): boolean {
  return simdScanner() !== undefined;
}

type Scanner = (bytes: Uint8Array, start: number, end: number) => boolean;

/**
 * The part of the WebAssembly JavaScript API used here, which neither TypeScript's ES
 * libraries nor Node's types declare. It is undefined in a runtime without WebAssembly.
 */
declare const WebAssembly:
  | {
      Module: new (bytes: Uint8Array) => object;
      Instance: new (module: object) => { exports: { memory: { buffer: ArrayBuffer }; scan: (length: number) => number } };
    }
  | undefined;

/** The SIMD scanner, made on first use: undefined until then, null where it cannot run. */
let scanner: Scanner | null | undefined;

function simdScanner(): Scanner | undefined {
  if (scanner === undefined) scanner = createSimdScanner();
  return scanner ?? undefined;
}

function createSimdScanner(): Scanner | null {
  if (typeof WebAssembly !== 'object') return null;
  let exports;
  try {
    exports = new WebAssembly.Instance(new WebAssembly.Module(scanModuleBytes())).exports;
  } catch {
    // A runtime without SIMD rejects the module, and the word loop does the same job.
    return null;
  }

  const memory = new Uint8Array(exports.memory.buffer);
  const scan = exports.scan;
  return (bytes, start, end) => {
    for (let from = start; from < end; from += WINDOW_BYTES) {
      const length = Math.min(WINDOW_BYTES, end - from);
      // The function reads whole 16-byte lanes, so the last few bytes are checked here.
      const lanesLength = length - (length % 16);
      memory.set(bytes.subarray(from, from + lanesLength));
      if (scan(lanesLength) !== 0) return true;
      if (hasControlByteOneByOne(bytes, from + lanesLength, from + length)) return true;
    }
    return false;
  };
}

/**
 * Encodes the WebAssembly module, one exported page of memory and this function:
 *
 *     (func (export "scan") (param $end i32) (result i32)
 *       (local $at i32) (local $min v128)
 *       (local.set $min (v128.const i8x16 0xff ...))
 *       (block (loop
 *         (br_if 1 (i32.ge_u (local.get $at) (local.get $end)))
 *         (local.set $min (i8x16.min_u (local.get $min) (v128.load (local.get $at))))
 *         (local.set $at (i32.add (local.get $at) (i32.const 16)))
 *         (br 0)))
 *       (v128.any_true (i8x16.lt_u (local.get $min) (i8x16.splat (i32.const 0x20)))))
 *
 * It keeps the smallest byte seen in each of the 16 lanes and returns whether any lane's is
 * below 0x20. `$end` must be a multiple of 16 and at most 64 KiB.
 */
function scanModuleBytes(): Uint8Array {
  const body = [
    ...[0x02, 0x01, I32, 0x01, V128], // locals: $at (1) and $min (2)
    ...[SIMD, 0x0c, ...new Array<number>(16).fill(0xff)], // v128.const, every byte 0xff
    ...[0x21, 2], // local.set $min
    ...[0x02, 0x40, 0x03, 0x40], // block, loop
    ...[0x20, 1, 0x20, 0, 0x4f, 0x0d, 1], // local.get $at, local.get $end, i32.ge_u, br_if 1
    ...[0x20, 2, 0x20, 1, SIMD, 0x00, 0x00, 0x00], // local.get $min, local.get $at, v128.load
    ...[SIMD, 0x77, 0x21, 2], // i8x16.min_u, local.set $min
    ...[0x20, 1, 0x41, 16, 0x6a, 0x21, 1], // local.get $at, i32.const 16, i32.add, local.set $at
    ...[0x0c, 0, 0x0b, 0x0b], // br 0, end loop, end block
    ...[0x20, 2, 0x41, 0x20, SIMD, 0x0f], // local.get $min, i32.const 0x20, i8x16.splat
    ...[SIMD, 0x26, SIMD, 0x53], // i8x16.lt_u, v128.any_true
    0x0b, // end function
  ];

  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [1, 0x60, 1, I32, 1, I32]), // types: (i32) -> i32
    ...section(3, [1, 0]), // functions: one of type 0
    ...section(5, [1, 0x00, 1]), // memories: one, 1 page, no maximum
    ...section(7, [2, ...encodeName('memory'), 0x02, 0, ...encodeName('scan'), 0x00, 0]), // exports
    ...section(10, [1, ...encodeLength(body.length), ...body]), // code
  ]);
}

const I32 = 0x7f;
const V128 = 0x7b;
/** The prefix of every SIMD instruction. */
const SIMD = 0xfd;

function section(id: number, content: number[]): number[] {
  return [id, ...encodeLength(content.length), ...content];
}

function encodeName(name: string): number[] {
  return [...encodeLength(name.length), ...Buffer.from(name, 'utf8')];
}

/** Encodes a length as unsigned LEB128, as WebAssembly's binary format writes them. */
function encodeLength(length: number): number[] {
  const bytes: number[] = [];
  let rest = length;
  do {
    let byte = rest & 0x7f;
    rest >>>= 7;
    if (rest !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest !== 0);
  return bytes;
}
