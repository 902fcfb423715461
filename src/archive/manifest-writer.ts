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
        await writeFileAtomic(this.filePath, snapshotText(this.snapshot));
        this.lastError = undefined;
      } catch (error) {
        this.lastError = error;
      }
      this.lastWriteMs = performance.now() - startedAt;
    });
  }
}

/**
 * Yields the manifest's text and takes the snapshot only when the first piece is requested.
 * `writeFileAtomic` requests it once the file is open and writes every piece without a
 * pause, so the totals and the entries come from one moment of the run.
 */
function* snapshotText(snapshot: () => ExecutionManifest): Generator<string> {
  yield* manifestTextPieces(snapshot());
}

/**
 * Yields `JSON.stringify(manifest, null, 2)` plus a line feed, one entry at a time, so a
 * manifest of 20,000 entries never exists as one string. As one string it made up to
 * about 100 MB of garbage per write.
 *
 * Each value is stringified inside a wrapper that nests it as deep as it sits in the
 * manifest, so its lines come out already indented and the piece is a slice of that text.
 * Indenting by replacing line feeds copied every entry a second time. A rewrite of 20,000
 * entries took 104 to 109 ms of CPU time that way and takes 56 to 57 ms this way.
 */
export function* manifestTextPieces(manifest: ExecutionManifest): Generator<string> {
  const fields = Object.entries(manifest).filter(([, value]) => value !== undefined);
  yield '{';
  for (const [index, [key, value]] of fields.entries()) {
    yield `${index === 0 ? '' : ','}\n  ${JSON.stringify(key)}: `;
    if (key !== 'nodes' || !Array.isArray(value) || value.length === 0) {
      yield nestedText(value, 1);
      continue;
    }

    yield '[';
    for (const [entryIndex, entry] of value.entries()) {
      yield entryIndex === 0 ? '\n    ' : ',\n    ';
      yield nestedText(entry, 2);
    }
    yield '\n  ]';
  }
  yield fields.length === 0 ? '}\n' : '\n}\n';
}

/**
 * Returns `JSON.stringify(value, null, 2)` as it reads `depth` levels deep in a larger
 * document, with two more spaces per level on every line after the first.
 */
function nestedText(value: unknown, depth: number): string {
  let wrapper: unknown = value;
  for (let level = 0; level < depth; level += 1) wrapper = [wrapper];
  const text = JSON.stringify(wrapper, null, 2);
  // Level k (from 1) opens with "[", a line feed and 2k spaces, and closes with a line feed, 2(k-1) spaces and "]".
  const opening = depth * (depth + 3);
  const closing = depth * (depth + 1);
  return text.slice(opening, text.length - closing);
}
