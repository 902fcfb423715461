import type { ProgressEvent } from '../archive/run-context.js';

export interface ProgressSnapshot {
  executionsDone: number;
  executionsTotal: number;
  /** Entries settled in this run: saved, failed, pending or expired. */
  entriesDone: number;
  /** Entries known from the run histories read so far. */
  entriesKnown: number;
  /** Bytes of saved outputs. */
  bytes: number;
}

interface ExecutionProgress {
  known: number;
  done: number;
  bytes: number;
  finished: boolean;
}

/**
 * Adds up progress events into totals for a progress bar. Totals change by differences, so
 * each event costs the same however many executions the batch has. A finished execution's
 * manifest totals replace what its entry events added up to, so the numbers stay right
 * whether or not entry events arrive.
 */
export class ProgressTracker {
  private readonly executions = new Map<string, ExecutionProgress>();
  private readonly totals: ProgressSnapshot;

  constructor(executionsTotal: number) {
    this.totals = { executionsDone: 0, executionsTotal, entriesDone: 0, entriesKnown: 0, bytes: 0 };
  }

  handle(event: ProgressEvent): void {
    const key = `${event.workflowId}/${event.executeId}`;
    const current = this.executions.get(key) ?? { known: 0, done: 0, bytes: 0, finished: false };

    if (event.type === 'execution-prepared') {
      this.replace(key, current, { known: event.entries, done: 0, bytes: 0, finished: false });
    } else if (event.type === 'entry-settled') {
      const bytes = event.status === 'saved' ? event.bytes : 0;
      this.replace(key, current, { ...current, done: current.done + 1, bytes: current.bytes + bytes });
    } else {
      const { entries, bytes } = event.totals;
      this.replace(key, current, { known: entries, done: entries, bytes, finished: true });
    }
  }

  snapshot(): ProgressSnapshot {
    return { ...this.totals };
  }

  private replace(key: string, before: ExecutionProgress, after: ExecutionProgress): void {
    this.executions.set(key, after);
    this.totals.entriesKnown += after.known - before.known;
    this.totals.entriesDone += after.done - before.done;
    this.totals.bytes += after.bytes - before.bytes;
    this.totals.executionsDone += Number(after.finished) - Number(before.finished);
  }
}
