import { writeFileAtomic } from './atomic-write.js';
import type { ExecutionManifest } from './manifest.js';

/**
 * Keeps manifest.json in step with the run. Each write is atomic. Updates that arrive while
 * a write is in flight are folded into the next one, and writes are spaced by `intervalMs`,
 * so 20,000 small entries do not mean 20,000 rewrites. After a SIGKILL the manifest lags the
 * files by at most that interval, and the next run fetches the few entries it does not list.
 */
export class ManifestWriter {
  private readonly filePath: string;
  private readonly snapshot: () => ExecutionManifest;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private lastError: unknown;

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
    }, this.intervalMs);
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
      try {
        await writeFileAtomic(this.filePath, `${JSON.stringify(this.snapshot(), null, 2)}\n`);
        this.lastError = undefined;
      } catch (error) {
        this.lastError = error;
      }
    });
  }
}
