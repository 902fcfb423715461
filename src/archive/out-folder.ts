import { mkdir, mkdtemp, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { ArchiveWriteError, UsageError } from '../coze/errors.js';
import { toArchiveError } from './atomic-write.js';

/**
 * Rejects an output folder that cannot be one: an empty path, a path that exists and is not a
 * folder, or a path below a file. It runs before any request, so a mistyped path costs none.
 * `label` names the setting in the message: `outDir` for the library, `--out` for the CLI.
 */
export async function checkOutFolder(outDir: string, label: string): Promise<void> {
  if (outDir.trim() === '') throw new UsageError(`Invalid ${label} "${outDir}": name a folder.`);

  const target = path.resolve(outDir);
  let current = target;
  for (;;) {
    // A path below a file fails with ENOTDIR, so the walk goes on up to that file.
    const info = await stat(current).catch(() => undefined);
    if (info !== undefined) {
      if (info.isDirectory()) return;
      const problem = current === target ? 'it exists and is not a folder' : `${current} is a file, not a folder`;
      throw new UsageError(`Invalid ${label} ${outDir}: ${problem}. Name a folder, or a path that does not exist yet.`);
    }

    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

/**
 * Checks, for a dry run, that the output folder could be made and written. It makes a folder in
 * the nearest existing level and removes it at once. A read-only disk, missing permission or a
 * pseudo file system such as /proc throws what the real run would: `ArchiveWriteError` for a disk
 * that rejects writes, `UsageError` for a path no run can write to.
 */
export async function probeOutFolder(outDir: string, label: string): Promise<void> {
  let existing = path.resolve(outDir);
  while ((await stat(existing).catch(() => undefined)) === undefined && path.dirname(existing) !== existing) {
    existing = path.dirname(existing);
  }

  let probe: string;
  try {
    probe = await mkdtemp(path.join(existing, '.coze-node-outputs-probe-'));
  } catch (error) {
    // A disk that is full, read-only or closed to this user fails the run with exit 1, not as
    // a usage error, so the dry run fails the same way.
    if (toArchiveError(existing, error) instanceof ArchiveWriteError) {
      throw new ArchiveWriteError(existing, error as NodeJS.ErrnoException, 'then run the dry run again');
    }
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`Invalid ${label} ${outDir}: a folder cannot be made in ${existing} (${code}). Name a folder on a disk that takes files.`);
  }
  await rmdir(probe);
}

/**
 * Creates the output folder before the first request. A disk that is full, read-only or closed
 * to this user throws `ArchiveWriteError`. Any other failure, such as ENOENT from a folder
 * under /proc, means a path no run can write to. It throws `UsageError` naming the level.
 */
export async function makeOutFolder(outDir: string, label: string): Promise<void> {
  try {
    await makeFolderLevels(outDir);
  } catch (error) {
    const archiveError = toArchiveError(outDir, error);
    if (archiveError instanceof ArchiveWriteError) throw archiveError;
    const { code, path: level } = error as NodeJS.ErrnoException;
    throw new UsageError(`Invalid ${label} ${outDir}: creating ${level ?? outDir} failed with ${code ?? String(error)}. Name a folder on a disk that takes files.`);
  }
}

/**
 * Creates `folder` and its missing parents one level at a time, top down. In /proc a folder's
 * parent exists and making the folder still fails with ENOENT, and there Node 20.20's
 * recursive mkdir never returned. One level at a time, that ENOENT is thrown.
 */
export async function makeFolderLevels(folder: string): Promise<void> {
  const missing: string[] = [];
  let current = path.resolve(folder);
  while ((await stat(current).catch(() => undefined)) === undefined) {
    missing.push(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }

  for (const level of missing.reverse()) {
    try {
      await mkdir(level);
    } catch (error) {
      // Another execution of the same batch may have made it meanwhile.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
