import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';

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

  return (await hashFile(filePath)).sha256 === sha256;
}

/** Streams a file through sha256, so a large output costs no more memory than a small one. */
export async function hashFile(filePath: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(filePath)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Size, sha256 and modification time of a regular file, or undefined when there is none; a symbolic link does not count. */
export async function digestFile(filePath: string): Promise<{ bytes: number; sha256: string; mtimeMs: number } | undefined> {
  try {
    const info = await lstat(filePath);
    if (!info.isFile()) return undefined;
    return { ...(await hashFile(filePath)), mtimeMs: info.mtimeMs };
  } catch {
    return undefined;
  }
}
