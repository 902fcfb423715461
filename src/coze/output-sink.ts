/** Receives the decoded `node_output` bytes of one response, piece by piece, as they arrive. */
export interface OutputSink {
  /** Appends `bytes`, which the sink may keep: nothing changes them afterwards. */
  write(bytes: Buffer): Promise<void>;
  /** Drops everything written so far, because the client reads the body again as a whole. */
  reset(): Promise<void>;
}

/** An `OutputSink` that keeps the output in memory. */
export class MemorySink implements OutputSink {
  private pieces: Buffer[] = [];

  async write(bytes: Buffer): Promise<void> {
    this.pieces.push(bytes);
  }

  async reset(): Promise<void> {
    this.pieces = [];
  }

  /** Returns everything written, as one buffer. */
  bytes(): Buffer {
    return this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces);
  }
}
