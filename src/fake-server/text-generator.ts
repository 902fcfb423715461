import { createRandom, hash32 } from './ids.js';
import { ASCII_WORDS, CHINESE_HEADINGS, CHINESE_PARAGRAPHS } from './prose.js';

/** Text to generate: its script and its exact size in characters or UTF-8 bytes. */
export interface TextSpec {
  text: 'chinese' | 'ascii';
  chars?: number | undefined;
  bytes?: number | undefined;
}

const PARAGRAPH_BREAK = '\n\n';
// Start a new section with a heading roughly every this many paragraphs.
const PARAGRAPHS_PER_SECTION = 5;

/**
 * Generates prose of exactly `spec.chars` characters or `spec.bytes` UTF-8 bytes.
 * The same spec and seed always give the same text, so the server can rebuild a
 * node body on every request instead of keeping it in memory.
 */
export function generateText(spec: TextSpec, seed: string): string {
  const nextPiece = spec.text === 'chinese' ? chinesePieces(seed) : asciiPieces(seed);

  if (spec.chars !== undefined) {
    return takeChars(nextPiece, spec.chars);
  }
  if (spec.bytes !== undefined) {
    return takeBytes(nextPiece, spec.bytes);
  }
  throw new TypeError('generateText needs `chars` or `bytes` in its spec');
}

/** Returns the UTF-8 size of one UTF-16 code unit of BMP text. */
function utf8Size(code: number): number {
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  return 3;
}

function takeChars(nextPiece: () => string, chars: number): string {
  const pieces: string[] = [];
  let length = 0;
  while (length < chars) {
    const piece = nextPiece();
    pieces.push(piece);
    length += piece.length;
  }
  return pieces.join('').slice(0, chars);
}

function takeBytes(nextPiece: () => string, bytes: number): string {
  const pieces: string[] = [];
  let size = 0;

  for (;;) {
    const piece = nextPiece();
    const pieceSize = Buffer.byteLength(piece);
    if (size + pieceSize > bytes) {
      const head = headWithinBytes(piece, bytes - size);
      pieces.push(head.text);
      size += head.size;
      break;
    }
    pieces.push(piece);
    size += pieceSize;
  }

  // A 3-byte character cannot fill the last one or two bytes, so pad with line feeds.
  pieces.push('\n'.repeat(bytes - size));
  return pieces.join('');
}

function headWithinBytes(piece: string, budget: number): { text: string; size: number } {
  let size = 0;
  let end = 0;
  while (end < piece.length) {
    const charSize = utf8Size(piece.charCodeAt(end));
    if (size + charSize > budget) break;
    size += charSize;
    end += 1;
  }
  return { text: piece.slice(0, end), size };
}

function chinesePieces(seed: string): () => string {
  const random = createRandom(hash32(`chinese:${seed}`));
  let paragraphIndex = 0;
  let headingIndex = 0;

  return () => {
    const startsSection = paragraphIndex % PARAGRAPHS_PER_SECTION === 0;
    paragraphIndex += 1;
    const paragraph = pick(CHINESE_PARAGRAPHS, random) + PARAGRAPH_BREAK;
    if (!startsSection) {
      return paragraph;
    }
    const heading = CHINESE_HEADINGS[headingIndex % CHINESE_HEADINGS.length] ?? '';
    headingIndex += 1;
    return heading + PARAGRAPH_BREAK + paragraph;
  };
}

function asciiPieces(seed: string): () => string {
  const random = createRandom(hash32(`ascii:${seed}`));

  return () => {
    const sentenceCount = 3 + Math.floor(random() * 4);
    const sentences: string[] = [];
    for (let i = 0; i < sentenceCount; i += 1) {
      sentences.push(asciiSentence(random));
    }
    return sentences.join(' ') + PARAGRAPH_BREAK;
  };
}

function asciiSentence(random: () => number): string {
  const wordCount = 6 + Math.floor(random() * 10);
  const words: string[] = [];
  for (let i = 0; i < wordCount; i += 1) {
    words.push(pick(ASCII_WORDS, random));
  }
  const sentence = words.join(' ');
  return sentence.charAt(0).toUpperCase() + sentence.slice(1) + '.';
}

function pick(items: readonly string[], random: () => number): string {
  return items[Math.floor(random() * items.length)] ?? '';
}
