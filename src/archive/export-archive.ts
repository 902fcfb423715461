import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import { UsageError } from '../coze/errors.js';
import { jsonForReaders } from '../http/redact.js';
import { toArchiveError } from './atomic-write.js';
import { sha256Hex } from './file-digest.js';
import { MANIFEST_FILE } from './manifest.js';
import {
  openArchive,
  readArchivedManifest,
  resolveArchivedFile,
  type ArchivedEntry,
  type ArchivedManifest,
  type OpenedArchive,
} from './verify-archive.js';

/** A saved entry that was left out of the export, and why. */
export interface ExportSkip {
  /** Path relative to the exported folder, with `/` separators. */
  path: string;
  reason: string;
}

export interface ExportResult {
  manifests: number;
  /** Entries written as JSON lines. */
  exported: number;
  /** UTF-8 bytes of the exported outputs. */
  bytes: number;
  skipped: ExportSkip[];
  /** Entries that are not saved (failed, pending or expired), which an export leaves out. */
  notSaved: number;
  /** Those of them that keep the record of a file saved earlier, changed or deleted since. */
  notSavedWithEarlierFile: number;
}

/**
 * Writes every saved entry under `dir` to `writable` as one JSON line each, with its ids,
 * flags, size, sha256 and the output text. Files are read one at a time and each line waits
 * for the stream to drain, so memory stays flat however large the archive. A file whose
 * size or sha256 no longer matches its manifest is skipped and reported, never exported.
 * Throws `UsageError` when `dir` does not exist or contains no manifest.
 */
export async function exportArchive(dir: string, writable: NodeJS.WritableStream): Promise<ExportResult> {
  const archive = await openArchive(dir);
  const result: ExportResult = { manifests: archive.manifests.length, exported: 0, bytes: 0, skipped: [], notSaved: 0, notSavedWithEarlierFile: 0 };
  const output = new LineWriter(writable);

  try {
    for (const manifestPath of archive.manifests) await exportExecution(archive, manifestPath, output, result);
    for (const folder of archive.foldersWithoutManifest) {
      const reason = `no ${MANIFEST_FILE}, so this execution's outputs are not exported; a fetch of this execution writes it again`;
      result.skipped.push({ path: relativeName(archive.root, path.join(folder, MANIFEST_FILE)), reason });
    }
  } finally {
    output.release();
  }
  return result;
}

/**
 * Exports to `filePath` atomically: the lines go to a temporary file beside it, which is
 * flushed and renamed over `filePath` only when the export finished, so a reader never sees
 * half an export.
 */
export async function exportArchiveToFile(dir: string, filePath: string): Promise<ExportResult> {
  const temporaryPath = `${filePath}.tmp-${randomBytes(4).toString('hex')}`;
  const isFolder = await stat(filePath).then((info) => info.isDirectory(), () => false);
  if (isFolder) throw new UsageError(`Cannot write --output ${filePath}: it is a folder. Name a file, for example ${path.join(filePath, 'outputs.jsonl')}.`);

  // Opening first turns a missing folder into an error here, not an unhandled stream event.
  let handle: FileHandle;
  try {
    handle = await open(temporaryPath, 'wx', 0o644);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`Cannot write --output ${filePath}: ${code}. Check that its folder exists and can be written.`);
  }
  const stream = handle.createWriteStream();

  try {
    const result = await exportArchive(dir, stream);
    stream.end();
    await once(stream, 'close');
    await syncFile(temporaryPath);
    await rename(temporaryPath, filePath);
    return result;
  } catch (error) {
    stream.destroy();
    await rm(temporaryPath, { force: true });
    throw toArchiveError(filePath, error);
  }
}

/** Flushes a written file to disk, so the rename never exposes data still in the page cache. */
async function syncFile(filePath: string): Promise<void> {
  const handle = await open(filePath, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exportExecution(archive: OpenedArchive, manifestPath: string, output: LineWriter, result: ExportResult): Promise<void> {
  const folder = path.dirname(manifestPath);
  const read = await readArchivedManifest(manifestPath);
  if ('problem' in read) {
    result.skipped.push({ path: relativeName(archive.root, manifestPath), reason: read.problem });
    return;
  }

  for (const entry of read.manifest.nodes) {
    if (entry.status !== 'saved') {
      result.notSaved += 1;
      if (entry.sha256 !== null) result.notSavedWithEarlierFile += 1;
      continue;
    }
    const text = await readEntryText(archive, folder, entry, result);
    if (text === undefined) continue;

    await output.write(`${jsonForReaders(exportLine(read.manifest, entry, text))}\n`);
    result.exported += 1;
    result.bytes += entry.bytes ?? 0;
  }
}

/** Reads a saved entry's text after checking its size and sha256 against the manifest. */
async function readEntryText(archive: OpenedArchive, folder: string, entry: ArchivedEntry, result: ExportResult): Promise<string | undefined> {
  const name = entry.file === null ? relativeName(archive.root, folder) : relativeName(archive.root, path.resolve(folder, entry.file));
  const skip = (reason: string): undefined => {
    result.skipped.push({ path: name, reason });
    return undefined;
  };
  if (entry.file === null || entry.bytes === null || entry.sha256 === null) return skip(`saved entry "${entry.title}" lacks file, bytes or sha256`);

  const resolved = await resolveArchivedFile(archive, folder, entry.file);
  if ('problem' in resolved) return skip(resolved.problem);

  let bytes: Buffer;
  try {
    bytes = await readFile(resolved.filePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return skip('file not found; run verify');
    if (code === 'EISDIR') return skip('a folder, not a file; run verify');
    return skip(`cannot read the file: ${code ?? (error as Error).message}`);
  }
  if (bytes.length !== entry.bytes) return skip(`size ${bytes.length} differs from the manifest's ${entry.bytes}; run verify`);
  if (sha256Hex(bytes) !== entry.sha256) return skip("sha256 differs from the manifest's; run verify");
  return bytes.toString('utf8');
}

function exportLine(manifest: ArchivedManifest, entry: ArchivedEntry, text: string): Record<string, unknown> {
  return {
    workflow_id: manifest.workflow_id,
    execute_id: manifest.execute_id,
    node_execute_uuid: entry.node_execute_uuid ?? null,
    node_id: entry.node_id ?? null,
    title: entry.title,
    source: entry.source,
    loop_index: entry.loop_index ?? null,
    batch_index: entry.batch_index ?? null,
    is_finish: entry.is_finish ?? null,
    possibly_incomplete: entry.possibly_incomplete ?? false,
    incomplete_reasons: entry.incomplete_reasons ?? [],
    bytes: entry.bytes,
    sha256: entry.sha256,
    file: entry.file,
    output: text,
  };
}

/**
 * Writes lines with backpressure: after a write the stream refuses, the next waits for
 * `drain`. A stream error, such as EPIPE from a closed pipe, fails the next write instead of
 * crashing the process as an unhandled `error` event.
 */
class LineWriter {
  private readonly writable: NodeJS.WritableStream;
  private error: unknown;
  private readonly onError = (error: unknown): void => {
    this.error ??= error;
  };

  constructor(writable: NodeJS.WritableStream) {
    this.writable = writable;
    writable.on('error', this.onError);
  }

  async write(line: string): Promise<void> {
    if (this.error !== undefined) throw this.error;
    if (this.writable.write(line)) return;
    if (this.error !== undefined) throw this.error;

    await this.drained();
  }

  /** Waits for `drain`; fails on `error`, or on `close` because a destroyed stream never drains. */
  private drained(): Promise<void> {
    const stream = this.writable;
    return new Promise((resolve, reject) => {
      const settle = (error?: unknown): void => {
        stream.off('drain', onDrain);
        stream.off('error', onFail);
        stream.off('close', onClose);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onDrain = (): void => settle();
      const onFail = (error: unknown): void => settle(error);
      const onClose = (): void => settle(this.error ?? new Error('the output stream closed before the export finished'));
      stream.on('drain', onDrain);
      stream.on('error', onFail);
      stream.on('close', onClose);
    });
  }

  release(): void {
    this.writable.off('error', this.onError);
  }
}

function relativeName(root: string, filePath: string): string {
  return path.relative(root, filePath).split(path.sep).join('/');
}
