import { describe, expect, it } from 'vitest';

import { findNodeOutput } from '../../src/coze/node-output-bytes.js';

/** What the full parse gives: the reference every decoded output must equal. */
function parsedOutput(body: string | Buffer): Buffer {
  const json = JSON.parse(Buffer.from(body).toString('utf8')) as { data: { node_output: string } };
  return Buffer.from(json.data.node_output, 'utf8');
}

function bodyAround(valueText: string): string {
  return `{"code":0,"msg":"","data":{"is_finish":true,"node_output":${valueText}},"detail":{"logid":"L"}}`;
}

/** A small seeded generator, so a failing case can be replayed. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

// Characters that exercise every branch: ASCII, escapes, 2-, 3- and 4-byte UTF-8, lone surrogates.
const ALPHABET = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0001', '\u001f', 'é', '中', '文', '😀', '\ud800', '\udfff', '\u2028', '\u007f'];

function randomText(random: () => number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i += 1) text += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return text;
}

/** Rewrites some characters of a JSON string literal as `\uXXXX`, in either case, and `/` as `\/`. */
function withUnicodeEscapes(literal: string, random: () => number): string {
  return literal.replace(/\\u[0-9a-fA-F]{4}|\\.|[^"\\]/gu, (piece) => {
    if (piece.startsWith('\\') || random() < 0.6) return piece;
    if (piece === '/') return '\\/';
    // An astral character becomes its two surrogate escapes.
    return [...Array(piece.length).keys()]
      .map((index) => {
        const hex = piece.charCodeAt(index).toString(16).padStart(4, '0');
        return `\\u${random() < 0.5 ? hex : hex.toUpperCase()}`;
      })
      .join('');
  });
}

describe('findNodeOutput', () => {
  it('plain output is a view of the body', () => {
    const body = Buffer.from(bodyAround('"第一章 原始输出 😀"'), 'utf8');

    const span = findNodeOutput(body);

    expect(span?.before.toString()).toBe('{"code":0,"msg":"","data":{"is_finish":true,"node_output":');
    expect(span?.decode()).toEqual(Buffer.from('第一章 原始输出 😀', 'utf8'));
    expect(span?.decode().buffer).toBe(body.buffer);
    expect(span?.after.toString()).toBe('},"detail":{"logid":"L"}}');
  });

  it('every escape decodes as JSON.parse does', () => {
    const literal = '"q\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f \\u4e2D\\u00e9 \\ud83d\\ude00 \\ud800x \\udc00 \\ud800\\ud83d\\ude00 \\u0000"';
    const body = bodyAround(literal);

    expect(findNodeOutput(Buffer.from(body, 'utf8'))?.decode()).toEqual(parsedOutput(body));
  });

  it('random outputs match JSON.parse', () => {
    const random = createRandom(20_261_204);
    for (let round = 0; round < 2_000; round += 1) {
      const literal = withUnicodeEscapes(JSON.stringify(randomText(random, Math.floor(random() * 40))), random);
      const body = bodyAround(literal);

      const span = findNodeOutput(Buffer.from(body, 'utf8'));

      expect(span?.decode(), `literal ${literal}`).toEqual(parsedOutput(body));
    }
  });

  it('body changes only on decode', () => {
    const body = Buffer.from(bodyAround('"a\\nb\\u4e2d"'), 'utf8');
    const original = Buffer.from(body);

    const span = findNodeOutput(body);

    expect(body.equals(original)).toBe(true);
    expect(span?.decode()).toEqual(Buffer.from('a\nb中', 'utf8'));
    expect(span?.decode()).toEqual(Buffer.from('a\nb中', 'utf8'));
    expect(body.equals(original)).toBe(false);
  });

  it('whitespace around the colon', () => {
    const body = '{"code":0,"data":{"node_output" \n:\t "a\\nb"}}';

    expect(findNodeOutput(Buffer.from(body, 'utf8'))?.decode()).toEqual(Buffer.from('a\nb'));
  });

  it.each([
    ['a raw control character', bodyAround('"line\u0001one"')],
    ['a raw control character after an escape', bodyAround('"a\\n\u001fb"')],
    ['an unknown escape', bodyAround('"a\\xb"')],
    ['a short \\u escape', bodyAround('"a\\u12"')],
    ['a \\u escape with a non-hex digit', bodyAround('"a\\u12g4"')],
    ['a backslash at the end of the body', '{"data":{"node_output":"a\\'],
    ['no closing quote', '{"data":{"node_output":"abc'],
    ['no closing quote after escapes', '{"data":{"node_output":"a\\n\\"bc'],
    ['a null value', bodyAround('null')],
    ['the key used as a value', '{"code":0,"msg":"node_output","data":{}}'],
    ['no node_output key', '{"code":0,"data":{}}'],
  ])('%s falls back', (_name, body) => {
    expect(findNodeOutput(Buffer.from(body, 'utf8'))).toBeUndefined();
  });

  it('invalid UTF-8 falls back', () => {
    const body = Buffer.concat([Buffer.from('{"data":{"node_output":"a'), Buffer.from([0xff]), Buffer.from('"}}')]);

    expect(findNodeOutput(body)).toBeUndefined();
  });

  it('4 MiB output with many escapes', () => {
    const paragraph = '这是一段很长的中文输出，用来检查长文本的解码。'.repeat(8);
    const text = Array.from({ length: 4_000 }, (_, index) => `${paragraph}${index}`).join('\n\n"');
    const body = bodyAround(JSON.stringify(text));

    const span = findNodeOutput(Buffer.from(body, 'utf8'));

    expect(span?.decode().equals(Buffer.from(text, 'utf8'))).toBe(true);
  });
});
