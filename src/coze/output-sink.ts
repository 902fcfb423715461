/** Receives the decoded `node_output` bytes of one response, piece by piece, as they arrive. */
export interface OutputSink {
  /**
   * Appends `bytes`. They are valid only until the returned promise settles, because the
   * client reuses its decoding buffer: a sink that keeps them must copy them.
   */
  write(bytes: Buffer): Promise<void>;
  /** Drops everything written so far, because the client reads the body again as a whole, or gives up on it. */
  reset(): Promise<void>;
}

/** An `OutputSink` that keeps the output in memory. */
export class MemorySink implements OutputSink {
  private pieces: Buffer[] = [];

  async write(bytes: Buffer): Promise<void> {
    this.pieces.push(Buffer.from(bytes));
  }

  async reset(): Promise<void> {
    this.pieces = [];
  }

  /** Returns everything written, as one buffer. */
  bytes(): Buffer {
    return this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces);
  }
}
