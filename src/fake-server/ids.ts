import { createHash, randomBytes } from 'node:crypto';

const BEIJING_OFFSET_MS = 8 * 60 * 60 * 1000;

/** Hashes a string to 32 bits (FNV-1a), used to seed the text generator. */
export function hash32(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i += 1) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Creates a seeded generator of floats in [0, 1) (mulberry32), so generated text is repeatable. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Creates a request log id shaped like Coze's: a 14-digit Beijing-time
 * timestamp followed by 20 upper-case hex digits (random, so ids are unique).
 */
export function createLogid(nowMs: number): string {
  const time = new Date(nowMs + BEIJING_OFFSET_MS);
  const stamp = [
    time.getUTCFullYear(),
    time.getUTCMonth() + 1,
    time.getUTCDate(),
    time.getUTCHours(),
    time.getUTCMinutes(),
    time.getUTCSeconds(),
  ]
    .map((part, index) => String(part).padStart(index === 0 ? 4 : 2, '0'))
    .join('');
  return stamp + randomBytes(10).toString('hex').toUpperCase();
}

/** Derives a stable UUID-shaped string from a seed, so generated nodes keep their uuid across runs. */
export function deterministicUuid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Derives a stable random-looking map key, like the keys Coze invents for
 * the repeats of an output node inside a loop or batch.
 */
export function deterministicKey(seed: string, length = 16): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const digest = createHash('sha256').update(seed).digest();
  let key = '';
  for (let i = 0; i < length; i += 1) {
    key += alphabet.charAt((digest[i] ?? 0) % alphabet.length);
  }
  return key;
}
