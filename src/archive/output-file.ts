import { createHash, type Hash } from 'node:crypto';

import type { OutputSink } from '../coze/output-sink.js';
import { largeOutputEnded, largeOutputStarted } from '../heap-growth.js';
import { createAtomicFile, writeFileAtomic, type AtomicFileWriter } from './atomic-write.js';

/**
 * Output up to this size stays in memory and is written in one piece, as most outputs are
 * small. Beyond it, the output streams to a temporary file as it arrives. Both ways make the
 * same kinds of calls to the disk. The limit was 1 MiB, but pieces held that long outlived
 * young-generation collections, so 40 outputs of 4 MiB caused a dozen major ones.
 */
const IN_MEMORY_BYTES = 64 * 1024;

/**
 * The file of one output as it arrives: hashed piece by piece, kept in memory while small,
 * then streamed to a temporary file, and given its final name by `commit`. A large output
 * thus never exists as one buffer of decoded text.
 */
export class OutputFile implements OutputSink {
  private readonly folder: string;
  private pieces: Buffer[] = [];
  private size = 0;
  private hash: Hash = createHash('sha256');
  private file: AtomicFileWriter | undefined;
  private streaming = false;

  /** `folder` is where the final file goes; the temporary file must be beside it for the rename. */
  constructor(folder: string) {
    this.folder = folder;
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.size;
  }

  async write(bytes: Buffer): Promise<void> {
    this.hash.update(bytes);
    this.size += bytes.length;
    if (this.file === undefined && this.size <= IN_MEMORY_BYTES) {
      // The caller reuses `bytes` once this returns (see `OutputSink`).
      this.pieces.push(Buffer.from(bytes));
      return;
    }

    // Once per output, in a method of its own, so that V8 compiles the path of every piece small.
    const file = this.file ?? (await this.startStreaming());
    await file.write(bytes);
  }

  /** Creates the temporary file and writes the pieces kept in memory so far to it. */
  private async startStreaming(): Promise<AtomicFileWriter> {
    const file = await createAtomicFile(this.folder);
    this.file = file;
    this.streaming = true;
    largeOutputStarted();
    for (const piece of this.pieces) await file.write(piece);
    this.pieces = [];
    return file;
  }

  async reset(): Promise<void> {
    await this.discard();
    this.size = 0;
    this.hash = createHash('sha256');
  }

  /** Writes the output to `finalPath` atomically and returns its sha256 in hex. */
  async commit(finalPath: string): Promise<string> {
    try {
      if (this.file === undefined) {
        await writeFileAtomic(finalPath, this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces));
      } else {
        // A failed commit removes its own temporary file.
        await this.file.commit(finalPath);
      }
    } finally {
      this.pieces = [];
      this.file = undefined;
      this.endStreaming();
    }
    return this.hash.digest('hex');
  }

  /** Drops the output and removes its temporary file, if it has one. */
  async discard(): Promise<void> {
    this.pieces = [];
    const file = this.file;
    this.file = undefined;
    this.endStreaming();
    await file?.discard();
  }

  private endStreaming(): void {
    if (!this.streaming) return;
    this.streaming = false;
    largeOutputEnded();
  }
}
