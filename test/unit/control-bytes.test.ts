import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { hasControlByte, hasControlByteInWords, simdScanAvailable } from '../../src/coze/control-bytes.js';
import { PROJECT_ROOT, runNode } from '../helpers/run-cli.js';

/** A small seeded generator, so a failing case can be replayed. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

function hasControlByteOneByOne(bytes: Uint8Array, start: number, end: number): boolean {
  return bytes.subarray(start, end).some((byte) => byte < 0x20);
}

/** Returns `length` random bytes from 0x20 to 0xff, with up to two control bytes at random places. */
function randomBytes(random: () => number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i += 1) bytes[i] = 0x20 + Math.floor(random() * 0xe0);
  const controls = Math.floor(random() * 3);
  for (let i = 0; i < controls; i += 1) bytes[Math.floor(random() * length)] = Math.floor(random() * 0x20);
  return bytes;
}

describe('hasControlByte', () => {
  it('matches a byte loop at every alignment', () => {
    const random = createRandom(7);
    for (let round = 0; round < 3_000; round += 1) {
      const backing = Buffer.alloc(48);
      for (let i = 0; i < backing.length; i += 1) backing[i] = 0x20 + Math.floor(random() * 0xe0);
      if (random() < 0.5) backing[Math.floor(random() * backing.length)] = Math.floor(random() * 0x20);
      const offset = Math.floor(random() * 5);
      const view = backing.subarray(offset);
      const start = Math.floor(random() * 12);
      const end = start + Math.floor(random() * (view.length - start + 1));

      const expected = [...view.subarray(start, end)].some((byte) => byte < 0x20);

      expect(hasControlByte(view, start, end), `offset ${offset} ${start}..${end}`).toBe(expected);
    }
  });

  it('0x20 after high bytes is not flagged', () => {
    const bytes = Buffer.from([0xff, 0x80, 0x20, 0x20, 0xe4, 0xb8, 0xad, 0x20]);

    expect(hasControlByte(bytes, 0, bytes.length)).toBe(false);
  });

  it('long ranges match a byte loop', () => {
    const random = createRandom(11);
    for (let round = 0; round < 300; round += 1) {
      // Up to three 64 KiB windows of the SIMD scan, from any alignment.
      const bytes = randomBytes(random, 1_024 + Math.floor(random() * 200_000)).subarray(Math.floor(random() * 16));
      const start = Math.floor(random() * 64);
      const end = bytes.length - Math.floor(random() * 64);
      const expected = hasControlByteOneByOne(bytes, start, end);

      expect(hasControlByte(bytes, start, end), `round ${round}`).toBe(expected);
      expect(hasControlByteInWords(bytes, start, end), `round ${round}`).toBe(expected);
    }
  });

  it('finds one control byte anywhere', () => {
    // Two windows of 64 KiB and 18,935 bytes: 1,183 lanes of 16 bytes and a tail of 7.
    const bytes = Buffer.alloc(150_007, 0xe4);
    // The first and last byte, lane and window edges, and the tail after the last whole lane.
    const places = [0, 15, 16, 1_023, 65_535, 65_536, 65_551, 131_072, 149_999, 150_000, 150_006];

    expect(hasControlByte(bytes, 0, bytes.length)).toBe(false);
    for (const place of places) {
      bytes[place] = 0x1f;

      expect(hasControlByte(bytes, 0, bytes.length), `at ${place}`).toBe(true);
      expect(hasControlByte(bytes, place + 1, bytes.length), `after ${place}`).toBe(false);
      bytes[place] = 0xe4;
    }
  });

  it('scans with SIMD on Node 20', () => {
    expect(simdScanAvailable()).toBe(true);
  });

  it('works without WebAssembly', async () => {
    const module = path.join(PROJECT_ROOT, 'dist', 'coze', 'control-bytes.js');
    const script = [
      `const { hasControlByte } = await import(${JSON.stringify(module)});`,
      'const bytes = Buffer.alloc(100000, 0x41);',
      'const clean = hasControlByte(bytes, 0, bytes.length);',
      'bytes[99999] = 0x0a;',
      'console.log(typeof WebAssembly, clean, hasControlByte(bytes, 0, bytes.length));',
    ].join('\n');

    // --jitless turns WebAssembly off, so the word loop does the work.
    const result = await runNode(['--jitless', '--input-type=module', '-e', script]);

    expect(result.stderr).not.toMatch(/Error/);
    expect(result.stdout.trim()).toBe('undefined false true');
  });
});
