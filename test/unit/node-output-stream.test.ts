import { describe, expect, it } from 'vitest';

import { findNodeOutput } from '../../src/coze/node-output-bytes.js';
import { NodeOutputDecoder } from '../../src/coze/node-output-stream.js';

/** A small seeded generator, so a failing case can be replayed. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Cuts `body` into pieces of 1 to `maxPiece` bytes. */
function cut(body: Buffer, random: () => number, maxPiece: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    const size = 1 + Math.floor(random() * maxPiece);
    pieces.push(body.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

/** Feeds `pieces` to a decoder; returns the output and the text around it, or undefined where it gave up. */
function decodeInPieces(pieces: readonly Buffer[]): { output: Buffer; before: Buffer; after: Buffer } | undefined {
  const decoder = new NodeOutputDecoder();
  const output: Buffer[] = [];
  for (const piece of pieces) {
    const decoded = decoder.push(piece);
    if (decoded === undefined) return undefined;
    output.push(Buffer.from(decoded));
  }
  const around = decoder.finish();
  return around === undefined ? undefined : { output: Buffer.concat(output), ...around };
}

/** Returns what reading the whole body gives: the reference for every cut. */
function decodeWhole(body: Buffer): { output: Buffer; before: Buffer; after: Buffer } | undefined {
  const span = findNodeOutput(Buffer.from(body));
  return span === undefined ? undefined : { before: span.before, after: span.after, output: Buffer.from(span.decode()) };
}

function bodyAround(valueText: string): string {
  return `{"code":0,"msg":"成功","data":{"is_finish":true,"node_output":${valueText}},"detail":{"logid":"L"}}`;
}

// Characters that exercise every branch: ASCII, escapes, 2-, 3- and 4-byte UTF-8, lone surrogates.
const ALPHABET = ['a', ' ', '"', '\\', '/', '\n', '\t', '\u0001', 'é', '中', '😀', '\ud800', '\udfff'];

function randomText(random: () => number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i += 1) text += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return text;
}

describe('NodeOutputDecoder', () => {
  it('random cuts match the whole-body read', () => {
    const random = createRandom(42);
    for (let round = 0; round < 1_500; round += 1) {
      let literal = JSON.stringify(randomText(random, Math.floor(random() * 30)));
      if (random() < 0.3) {
        // The same text with \u escapes in upper case and written out for raw characters.
        literal = literal.replace(/\\u([0-9a-f]{4})/g, (_, hex: string) => `\\u${hex.toUpperCase()}`);
        literal = literal.replace(/é/g, '\\u00E9').replace(/😀/g, '\\ud83d\\ude00');
      }
      const body = Buffer.from(bodyAround(literal), 'utf8');
      const pieces = cut(body, random, 1 + Math.floor(random() * 24));

      const streamed = decodeInPieces(pieces);

      // Every generated body is valid, so both ways must read it.
      expect(streamed, `literal ${literal}`).toBeDefined();
      expect(streamed, `literal ${literal}`).toEqual(decodeWhole(body));
    }
  });

  it('broken bodies fail as the whole-body read does', () => {
    const random = createRandom(7);
    const broken = [
      bodyAround('"line\u0001one"'),
      bodyAround('"a\\xb"'),
      bodyAround('"a\\u12g4"'),
      '{"data":{"node_output":"never ends',
      '{"data":{"node_output":"ends in an escape\\',
      '{"data":{"node_output":null}}',
      '{"code":0,"msg":"node_output","data":{}}',
    ];
    for (const text of broken) {
      for (let round = 0; round < 30; round += 1) {
        const body = Buffer.from(text, 'utf8');

        expect(decodeInPieces(cut(body, random, 8)), text).toBeUndefined();
        expect(decodeWhole(body), text).toBeUndefined();
      }
    }
  });

  it('invalid UTF-8 anywhere fails', () => {
    const random = createRandom(9);
    const valid = Buffer.from(bodyAround('"中文 😀 é"'), 'utf8');
    let rejected = 0;
    for (let round = 0; round < 300; round += 1) {
      const body = Buffer.from(valid);
      body[Math.floor(random() * body.length)] = [0xff, 0x80, 0xc0, 0xe4][Math.floor(random() * 4)]!;
      const pieces = cut(body, random, 6);

      const expected = decodeWhole(body);
      if (expected === undefined) rejected += 1;

      expect(decodeInPieces(pieces)).toEqual(expected);
    }
    expect(rejected).toBeGreaterThan(100);
  });

  it('an escape cut anywhere decodes once', () => {
    const body = Buffer.from(bodyAround('"x\\ud83d\\ude00y\\u4e2d\\n"'), 'utf8');
    for (let split = 1; split < body.length; split += 1) {
      const streamed = decodeInPieces([body.subarray(0, split), body.subarray(split)]);

      expect(streamed?.output, `split at ${split}`).toEqual(Buffer.from('x😀y中\n', 'utf8'));
    }
  });

  it('plain text comes back as views of the chunks', () => {
    const decoder = new NodeOutputDecoder();
    const head = Buffer.from('{"code":0,"data":{"node_output":"', 'utf8');
    const middle = Buffer.from('第二段没有转义', 'utf8');

    expect(decoder.push(head)?.length).toBe(0);
    const output = decoder.push(middle);

    expect(output?.buffer).toBe(middle.buffer);
    expect(output?.toString()).toBe('第二段没有转义');
  });

  it('a key beyond 64 KiB is left to the whole-body read', () => {
    const body = Buffer.from(`{"code":0,"msg":"${'x'.repeat(200_000)}","data":{"node_output":"late"}}`, 'utf8');

    expect(decodeInPieces(cut(body, createRandom(3), 16_384))).toBeUndefined();
    expect(decodeWhole(body)?.output).toEqual(Buffer.from('late'));
  });
});
