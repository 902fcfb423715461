import { performance } from 'node:perf_hooks';

import { writeFileAtomic } from './atomic-write.js';
import type { ExecutionManifest } from './manifest.js';

/**
 * Rewrites are spaced by at least this many times the last rewrite's duration, so that a
 * large manifest costs at most about a tenth of the run. In a profile on 2 shared cores,
 * rewriting 20,000 entries every 500 ms took 15% of the CPU time before garbage collection.
 */
const REWRITE_SPACING_FACTOR = 10;

/**
 * Keeps manifest.json in step with the run. Each write is atomic. Updates that arrive while
 * a write is in flight are folded into the next one, and writes are spaced by `intervalMs`
 * or ten times the last write's duration, whichever is longer, so 20,000 small entries do
 * not mean 20,000 rewrites. After a SIGKILL the manifest lags the files by at most that
 * spacing, and the next run fetches the few entries it does not list.
 */
export class ManifestWriter {
  private readonly filePath: string;
  private readonly snapshot: () => ExecutionManifest;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private lastError: unknown;
  private lastWriteMs = 0;

  constructor(filePath: string, snapshot: () => ExecutionManifest, intervalMs = 500) {
    this.filePath = filePath;
    this.snapshot = snapshot;
    this.intervalMs = intervalMs;
  }

  /** Asks for a write soon; cheap to call after every entry. */
  schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.enqueue();
    }, Math.max(this.intervalMs, REWRITE_SPACING_FACTOR * this.lastWriteMs));
    this.timer.unref();
  }

  /** Writes the manifest now and waits for it; throws if any write failed. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.enqueue();
    await this.writing;
    if (this.lastError !== undefined) throw this.lastError;
  }

  private enqueue(): void {
    this.writing = this.writing.then(async () => {
      const startedAt = performance.now();
      try {
        await writeFileAtomic(this.filePath, joinPieces(manifestTextPieces(this.snapshot())));
        this.lastError = undefined;
      } catch (error) {
        this.lastError = error;
      }
      this.lastWriteMs = performance.now() - startedAt;
    });
  }
}

/** Pieces of at least this many characters keep the write calls few. */
const PIECE_CHARS = 64 * 1024;

/**
 * Yields `JSON.stringify(manifest, null, 2)` plus a line feed, one entry at a time, so a
 * manifest of 20,000 entries never exists as one string. As one string it made up to
 * about 100 MB of garbage per write.
 */
export function* manifestTextPieces(manifest: ExecutionManifest): Generator<string> {
  const fields = Object.entries(manifest).filter(([, value]) => value !== undefined);
  yield '{';
  for (const [index, [key, value]] of fields.entries()) {
    yield `${index === 0 ? '' : ','}\n  ${JSON.stringify(key)}: `;
    if (key !== 'nodes' || !Array.isArray(value) || value.length === 0) {
      yield indentLines(JSON.stringify(value, null, 2), '  ');
      continue;
    }

    yield '[';
    for (const [entryIndex, entry] of value.entries()) {
      yield `${entryIndex === 0 ? '' : ','}\n    ${indentLines(JSON.stringify(entry, null, 2), '    ')}`;
    }
    yield '\n  ]';
  }
  yield fields.length === 0 ? '}\n' : '\n}\n';
}

/** Joins small pieces into pieces of about `PIECE_CHARS`. */
function* joinPieces(pieces: Iterable<string>): Generator<string> {
  let buffered: string[] = [];
  let length = 0;
  for (const piece of pieces) {
    buffered.push(piece);
    length += piece.length;
    if (length >= PIECE_CHARS) {
      yield buffered.join('');
      buffered = [];
      length = 0;
    }
  }
  if (buffered.length > 0) yield buffered.join('');
}

/** JSON text has line feeds only between tokens, because JSON.stringify escapes them inside strings. */
function indentLines(text: string, indent: string): string {
  return text.replaceAll('\n', `\n${indent}`);
}
