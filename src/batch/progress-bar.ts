import { Writable } from 'node:stream';

import { Presets, SingleBar } from 'cli-progress';

import type { ProgressEvent } from '../archive/run-context.js';
import { ProgressTracker, type ProgressSnapshot } from './progress-tracker.js';

export interface ProgressDisplay {
  onProgress(event: ProgressEvent): void;
  /** Removes the bar, before the summary is written. */
  stop(): void;
  /** A stream for log lines: each is written over the bar's line, and the bar is drawn again below it. */
  logStream: Writable;
}

export interface ProgressDisplayOptions {
  stream: NodeJS.WritableStream;
  executions: number;
  /** Unix ms; tests pass a fixed clock. */
  now?: () => number;
}

/**
 * Decides whether to draw a progress bar: only for a person at a terminal, never when stderr
 * goes to a log file or a pipe, nor with `--json` or `--quiet`.
 */
export function wantsProgressBar(stream: NodeJS.WritableStream, flags: { json?: boolean | undefined; quiet?: boolean | undefined }): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true && !flags.json && !flags.quiet;
}

/** Draws entries done of known, bytes saved, byte rate and ETA with cli-progress. */
export function createProgressDisplay(options: ProgressDisplayOptions): ProgressDisplay {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const tracker = new ProgressTracker(options.executions);
  const bar = new SingleBar(
    {
      stream: options.stream,
      format: '{bar} {value}/{total} entries | {executions} executions | {size} | {rate} | ETA {timeLeft}',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      // Redraw on every frame, so the bar comes back below a log line written over it.
      forceRedraw: true,
    },
    Presets.shades_classic,
  );
  let started = false;

  const logStream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      // Erase the bar's line first, so the log line does not run on from the bar.
      options.stream.write(started ? `\r\u001b[2K${chunk.toString()}` : chunk);
      done();
    },
  });

  return {
    logStream,
    onProgress(event) {
      tracker.handle(event);
      const snapshot = tracker.snapshot();
      const payload = { ...progressPayload(snapshot, now() - startedAt), timeLeft: estimateRemaining(snapshot, now() - startedAt) };
      const total = Math.max(snapshot.entriesKnown, snapshot.entriesDone, 1);

      if (!started) {
        bar.start(total, snapshot.entriesDone, payload);
        started = true;
        return;
      }
      bar.setTotal(total);
      bar.update(snapshot.entriesDone, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Formats the values shown beside the bar. */
export function progressPayload(snapshot: ProgressSnapshot, elapsedMs: number): { executions: string; size: string; rate: string } {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? snapshot.bytes / seconds : 0;
  return {
    executions: `${snapshot.executionsDone}/${snapshot.executionsTotal}`,
    size: formatBytes(snapshot.bytes),
    rate: `${formatBytes(rate)}/s`,
  };
}

/** Formats a byte count in binary units, the way file managers show sizes. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} ${units[0]}` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Estimates the time left from the entries settled so far. cli-progress's own estimate
 * prints "NF" while the total still grows as run histories arrive, so this one shows "?".
 */
export function estimateRemaining(snapshot: ProgressSnapshot, elapsedMs: number): string {
  const remaining = snapshot.entriesKnown - snapshot.entriesDone;
  if (snapshot.entriesDone === 0 || elapsedMs <= 0 || remaining < 0) return '?';

  const seconds = Math.ceil((remaining * elapsedMs) / snapshot.entriesDone / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
