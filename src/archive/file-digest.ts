import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Returns true when the file exists with exactly `bytes` bytes and the given sha256.
 * The size is checked first, so a file cut short costs no hashing.
 */
export async function fileMatches(filePath: string, bytes: number, sha256: string): Promise<boolean> {
  try {
    const info = await stat(filePath);
    if (!info.isFile() || info.size !== bytes) return false;
  } catch {
    return false;
  }

  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex') === sha256;
}
