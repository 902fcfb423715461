import { randomBytes } from 'node:crypto';
import { rmSync, writeSync } from 'node:fs';
import { open, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import { ArchiveWriteError } from '../coze/errors.js';

/** Error codes of a disk that cannot take the archive. Retrying them only repeats the failure. */
const FATAL_WRITE_CODES = new Set(['ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'EDQUOT']);

/** Marks a temporary file: `<final name>.tmp-<8 hex digits>`. */
export const TEMPORARY_SUFFIX = '.tmp-';
export const TEMPORARY_FILE_PATTERN = /\.tmp-[0-9a-f]{8}$/;

/** Temporary files of this process, removed on interruption. */
const pendingTemporaryFiles = new Set<string>();

/**
 * Writes a file atomically: the bytes go to a temporary file beside the target, are flushed
 * with fsync, and only then renamed over the final name. A crash at any moment leaves either
 * the old file, the new file, or a stray temporary file, never a truncated final file.
 * `data` may be pieces of text. They are made and written as UTF-8 without yielding to other
 * tasks, so text made lazily from state that other tasks change shows it at one moment.
 */
export async function writeFileAtomic(finalPath: string, data: Buffer | string | Iterable<string>): Promise<void> {
  const temporaryPath = `${finalPath}${TEMPORARY_SUFFIX}${randomBytes(4).toString('hex')}`;
  pendingTemporaryFiles.add(temporaryPath);

  try {
    const handle = await open(temporaryPath, 'wx', 0o644);
    try {
      if (typeof data === 'string' || Buffer.isBuffer(data)) await writeFile(handle, data);
      else writePiecesSync(handle.fd, data);
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

/**
 * Bytes of text gathered before each write call, in one buffer that every call reuses. As small
 * as a streamed file's calls, for the same reason (see `GATHER_BYTES`).
 */
const PIECES_BUFFER_BYTES = 32 * 1024;

/**
 * Writes pieces of text as UTF-8, gathered in one reusable buffer, so thousands of short
 * pieces cost a few write calls and no buffer each. The calls are synchronous, so no other
 * task runs between the first piece and the last.
 */
function writePiecesSync(fd: number, pieces: Iterable<string>): void {
  // NOTE: a disk that throttles writes blocks the event loop for as long. A manifest of 20,000
  // entries is about 11 MB, which the page cache took in about 3 ms on the test machine.
  const buffer = Buffer.allocUnsafe(PIECES_BUFFER_BYTES);
  let used = 0;

  for (const piece of pieces) {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8, so a piece that passes this test fits whole.
    if (used + piece.length * 3 > buffer.length) {
      writeAllSync(fd, buffer.subarray(0, used));
      used = 0;
    }
    if (piece.length * 3 > buffer.length) {
      writeAllSync(fd, Buffer.from(piece, 'utf8'));
      continue;
    }
    used += buffer.write(piece, used, 'utf8');
  }
  if (used > 0) writeAllSync(fd, buffer.subarray(0, used));
}

function writeAllSync(fd: number, bytes: Buffer): void {
  let written = 0;
  while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
}

/** A temporary file written piece by piece, which becomes a final file only when committed. */
export interface AtomicFileWriter {
  /** Takes `bytes`, which the caller may reuse once the returned promise settles. */
  write(bytes: Buffer): Promise<void>;
  /** Flushes the file with fsync and renames it to `finalPath`, in the same folder. */
  commit(finalPath: string): Promise<void>;
  /** Closes and removes the temporary file. */
  discard(): Promise<void>;
}

/**
 * Bytes gathered before each write call of a streamed file. On the test VM (Linux 6.18, ext4),
 * each call's pages were cached as one folio of the call's size. For minutes at a time, folios
 * of 64 KiB and more came from memory the host had to back first, and copying 160 MiB into them
 * took up to 500 ms more kernel time. Folios of 32 KiB did not in the same runs, probably because
 * the kernel reuses freed blocks up to that size from per-CPU lists. The calls are synchronous,
 * because through the thread pool so many of them cost the main thread more than the copies.
 */
const GATHER_BYTES = 32 * 1024;

/**
 * Creates a temporary file in `folder` for output whose final name is chosen once it is
 * complete. It has the same `.tmp-` suffix as those of `writeFileAtomic`, so the clean-up
 * of interrupted runs and `verify` treat both alike.
 */
export async function createAtomicFile(folder: string): Promise<AtomicFileWriter> {
  const temporaryPath = path.join(folder, `incoming${TEMPORARY_SUFFIX}${randomBytes(4).toString('hex')}`);
  pendingTemporaryFiles.add(temporaryPath);
  let handle: FileHandle;
  try {
    handle = await open(temporaryPath, 'wx', 0o644);
  } catch (error) {
    pendingTemporaryFiles.delete(temporaryPath);
    throw toArchiveError(temporaryPath, error);
  }

  // Outside V8's heap, so a buffer that lives as long as the download costs no collection.
  const gathered = Buffer.allocUnsafeSlow(GATHER_BYTES);
  let used = 0;

  // NOTE: a disk that throttles writes blocks the event loop for as long, as the manifest's writes do.
  const writeGathered = (): void => {
    writeAllSync(handle.fd, gathered.subarray(0, used));
    used = 0;
  };

  const discard = async (): Promise<void> => {
    await handle.close().catch(() => undefined);
    await rm(temporaryPath, { force: true }).catch(() => undefined);
    pendingTemporaryFiles.delete(temporaryPath);
  };

  return {
    async write(bytes) {
      try {
        let from = 0;
        while (from < bytes.length) {
          const copied = bytes.copy(gathered, used, from);
          used += copied;
          from += copied;
          if (used === gathered.length) writeGathered();
        }
      } catch (error) {
        throw toArchiveError(temporaryPath, error);
      }
    },
    async commit(finalPath) {
      try {
        writeGathered();
        await handle.sync();
        await handle.close();
        await rename(temporaryPath, finalPath);
        pendingTemporaryFiles.delete(temporaryPath);
      } catch (error) {
        await discard();
        throw toArchiveError(finalPath, error);
      }
    },
    discard,
  };
}

/** Removes temporary files still being written, for an interrupted run. */
export async function removePendingTemporaryFiles(): Promise<void> {
  await Promise.all([...pendingTemporaryFiles].map((file) => rm(file, { force: true }).catch(() => undefined)));
}

/**
 * Removes temporary files still being written before the process exits at once. It does not
 * yield, so no other task, such as the run's summary, runs before the exit.
 */
export function removePendingTemporaryFilesSync(): void {
  for (const file of pendingTemporaryFiles) {
    try {
      rmSync(file, { force: true });
    } catch {
      // A file that cannot be removed is left for the next run of the execution, which removes it.
    }
  }
}

/** Turns a disk error into one that stops the run, and passes others through. */
export function toArchiveError(filePath: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && FATAL_WRITE_CODES.has(code)) {
    return new ArchiveWriteError(filePath, error as NodeJS.ErrnoException);
  }
  return error;
}

/**
 * Removes temporary files that a killed run left in `folder` and its `subfolders`. Runs of
 * one archive must not overlap (the cron guide uses a lock), so none of them is in use.
 */
export async function removeStaleTemporaryFiles(folder: string, subfolders: readonly string[]): Promise<number> {
  let removed = 0;
  for (const dir of [folder, ...subfolders.map((name) => path.join(folder, name))]) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!TEMPORARY_FILE_PATTERN.test(name)) continue;
      await rm(path.join(dir, name), { force: true });
      removed += 1;
    }
  }
  return removed;
}
