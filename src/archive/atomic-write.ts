import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

import { ArchiveWriteError } from '../coze/errors.js';

/** Errors that say the disk cannot take the archive; retrying them only repeats the failure. */
const FATAL_WRITE_CODES = new Set(['ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'EDQUOT']);

/** Temporary files of this process, removed on interruption. */
const pendingTemporaryFiles = new Set<string>();

/**
 * Writes a file atomically: the bytes go to a temporary file beside the target, are flushed
 * with fsync, and only then renamed over the final name. A crash at any moment leaves either
 * the old file, the new file, or a stray temporary file, never a truncated final file.
 */
export async function writeFileAtomic(finalPath: string, data: Buffer | string): Promise<void> {
  const temporaryPath = `${finalPath}.tmp-${randomBytes(4).toString('hex')}`;
  pendingTemporaryFiles.add(temporaryPath);

  try {
    const handle = await open(temporaryPath, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporaryPath, finalPath);
  } catch (error) {
    await rm(temporaryPath, { force: true }).catch(() => undefined);
    throw toArchiveError(finalPath, error);
  } finally {
    pendingTemporaryFiles.delete(temporaryPath);
  }
}

/** Removes temporary files still being written, for an interrupted run. */
export async function removePendingTemporaryFiles(): Promise<void> {
  await Promise.all([...pendingTemporaryFiles].map((file) => rm(file, { force: true }).catch(() => undefined)));
}

/** Turns a disk error into one that stops the run, and passes others through. */
export function toArchiveError(filePath: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && FATAL_WRITE_CODES.has(code)) {
    return new ArchiveWriteError(filePath, error as NodeJS.ErrnoException);
  }
  return error;
}
