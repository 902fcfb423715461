import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import pLimit, { type LimitFunction } from 'p-limit';

import { ExecutionArchiver, type ExecutionTarget } from '../archive/archive-execution.js';
import { createRun, DEFAULTS, type RunOptions } from '../archive/create-run.js';
import { isDigitId } from '../archive/file-names.js';
import { MANIFEST_FILE, type ExecutionManifest, type ManifestEntry } from '../archive/manifest.js';
import { checkOutFolder, makeOutFolder } from '../archive/out-folder.js';
import { NODE_OUTPUT_RETENTION_MS, type ProgressEvent, type RunContext } from '../archive/run-context.js';
import { DEFAULT_EXPIRY_WARNING_MS } from '../config/defaults.js';
import { ArchiveWriteError, AuthError, CozeOutageError, isAuthError, isPermissionDenied, UsageError } from '../coze/errors.js';
import type { RunHistoryResult } from '../coze/client.js';
import { EXIT_CODES, exitCodeFor } from '../exit-codes.js';
import { DEFAULT_POLL_SETTINGS, waitUntilFinished, type PollSettings } from './wait-for-finish.js';

export interface BatchOptions extends RunOptions {
  executions: readonly ExecutionTarget[];
  /** Time in ms, from the start of the run, to wait for running executions to finish. Default 0: no wait. */
  waitMs?: number;
  /** Backoff between polls of one running execution. Tests shorten it. */
  poll?: Partial<PollSettings>;
  /** Executions older than this get an expiry warning. Default 20 hours. */
  expiryWarningMs?: number;
  /** Executions whose outputs are fetched at once. Default 2, so the oldest go first. */
  executionConcurrency?: number;
  /**
   * Whether each manifest of the result keeps its saved entries. False keeps only the entries
   * not saved or flagged as possibly incomplete, while totals and the manifest.json files still
   * cover every entry. The CLI sets it to false, so that a batch does not hold every entry of
   * every execution in memory. Default true.
   */
  keepSavedEntries?: boolean;
  onProgress?: (event: ProgressEvent) => void;
}

/** Result of one execution of the batch. */
export interface ExecutionOutcome {
  workflowId: string;
  executeId: string;
  /** Undefined when the run stopped before this execution started. */
  manifest: ExecutionManifest | undefined;
  /** Time since the execution's `update_time` (else `create_time`), when run history was read. */
  ageMs: number | undefined;
  /** True when the execution is older than the expiry warning and its outputs expire soon. */
  expiryWarning: boolean;
  /** Run-history polls made while waiting for the execution to finish. */
  polls: number;
  /** Saved entries that an earlier run had saved and this one found intact, so it did not fetch them. */
  keptEntries: number;
  /** An error that ended this execution alone, outside its manifest. */
  error?: string;
  /** True when Coze returned 4101: the token may not read this workflow. The exit code is then 3. */
  permissionDenied?: boolean;
}

export interface BatchResult {
  outDir: string;
  /** When the batch started, as an ISO date: entries saved before it were kept from earlier runs. */
  startedAt: string;
  /** Executions with an expiry warning first, then oldest first. */
  executions: ExecutionOutcome[];
  manifests: ExecutionManifest[];
  exitCode: number;
  /** The error that stopped the whole batch: a rejected token or a disk that cannot be written. */
  fatalError?: unknown;
  /** Requests sent to Coze, and over-limit responses, which show whether `qps` is above the plan's limit. */
  requests: BatchRequestStats;
}

export interface BatchRequestStats {
  /** Request attempts, retries included. */
  sent: number;
  overLimitResponses: number;
  /** The `qps` the run was given. */
  qps: number;
  /** The lowest rate that over-limit responses slowed the run to; `qps` when they did not. */
  lowestQps: number;
  /** The lowest rate at which Coze still returned an over-limit response, or undefined without one. */
  lowestOverLimitQps: number | undefined;
}


const DEFAULT_EXECUTION_CONCURRENCY = 2;

interface BatchSettings {
  waitMs: number;
  poll: PollSettings;
  expiryWarningMs: number;
  executionConcurrency: number;
  prepareConcurrency: number;
  keepSavedEntries: boolean;
}

interface BatchItem {
  outcome: ExecutionOutcome;
  index: number;
  archiver?: ExecutionArchiver;
  archived: boolean;
}

/**
 * Archives many executions with one client and one request limiter. Phase 1 reads every run
 * history. Phase 2 fetches outputs oldest first, so those closest to Coze's 24-hour expiry
 * go first. When `waitMs` is set, phase 3 waits for running executions and archives them
 * again, reusing what phase 2 saved. A failed execution never stops the others. A rejected
 * token, an unwritable disk or an outage of Coze stops the batch, and `fatalError` reports it.
 */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const settings = batchSettings(options);
  const targets = uniqueTargets(options.executions);
  await checkOutFolder(options.outDir ?? DEFAULTS.outDir, 'outDir');
  const startedAt = Date.now();

  const stop = new AbortController();
  const signal = options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal]);
  // Every execution of the batch listens on this one signal.
  setMaxListeners(0, signal);

  const run = createRun({ ...options, signal });
  run.context.onProgress = options.onProgress;
  try {
    await makeOutFolder(run.context.outDir, 'outDir');
    return await new Batch(run.context, settings, stop).run(targets, startedAt + settings.waitMs);
  } finally {
    await run.close();
  }
}

class Batch {
  private readonly context: RunContext;
  private readonly settings: BatchSettings;
  private readonly stop: AbortController;
  private fatalError: unknown;
  private readonly startedAt: string;
  /** True when the batch has more than one execution, so that each plan would wait for its turn. */
  private several = false;

  constructor(context: RunContext, settings: BatchSettings, stop: AbortController) {
    this.startedAt = new Date(context.now()).toISOString();
    this.context = context;
    this.settings = settings;
    this.stop = stop;
  }

  async run(targets: readonly ExecutionTarget[], waitDeadline: number): Promise<BatchResult> {
    const items = targets.map((target, index) => newItem(target, index));
    this.several = items.length > 1;

    const prepareSlots = pLimit(this.settings.prepareConcurrency);
    await Promise.all(items.map((item) => prepareSlots(() => this.prepare(item))));
    this.warnAboutExpiry(items);

    const archiveSlots = pLimit(this.settings.executionConcurrency);
    // NOTE: executions archived at once share the limiter's first-come queue, so the older one
    // is not served first. A strict order would need priorities in the request limiter.
    const oldestFirst = [...items].sort(byAgeDescending);
    await Promise.all(oldestFirst.map((item) => archiveSlots(() => this.archive(item))));

    if (this.settings.waitMs > 0) await this.waitForRunning(items, waitDeadline, archiveSlots);
    return this.result(items);
  }

  /**
   * Reads the execution's run history. When that fails the execution is finished at once:
   * it needs no node request, and a rejected token then stops the batch before the rest.
   */
  private async prepare(item: BatchItem, runHistory?: RunHistoryResult, { evenIfStopped = false } = {}): Promise<void> {
    if (this.context.signal.aborted && !evenIfStopped) return;

    // A second pass after --wait belongs to the same run, so its manifest keeps the first pass's start.
    const archiver = new ExecutionArchiver(this.context, ids(item), item.outcome.manifest?.started_at);
    item.archiver = archiver;
    const record = await archiver.prepare(runHistory);
    item.outcome.ageMs = archiver.ageMs;
    // With several executions, each execution.json is written within the prepare slots, so a
    // full disk stops the batch at the first one, and each plan is read back from it later.
    if (this.several) await archiver.executionFileSettled;

    if (record === undefined || archiver.hasFatalError) {
      await this.archive(item);
      return;
    }
    this.emit({ type: 'execution-prepared', ...ids(item), entries: archiver.plannedEntries });
    if (this.several) archiver.releasePlan();
  }

  private warnAboutExpiry(items: readonly BatchItem[]): void {
    for (const item of items) {
      const ageMs = item.outcome.ageMs;
      if (ageMs === undefined || ageMs <= this.settings.expiryWarningMs) continue;

      item.outcome.expiryWarning = true;
      this.context.logger.warn(
        { ...ids(item), ageHours: Math.round(ageMs / 360_000) / 10 },
        'execution is close to or past the 24-hour expiry of its output-node results; archiving it first',
      );
    }
  }

  /** Saves the execution's outputs. It runs once per prepared archiver, so every manifest is written. */
  private async archive(item: BatchItem): Promise<void> {
    const archiver = item.archiver;
    if (archiver === undefined || item.archived) return;
    item.archived = true;

    try {
      item.outcome.manifest = await archiver.archive();
    } catch (error) {
      this.noteError(item, error);
      item.outcome.manifest = await readWrittenManifest(this.context.outDir, item.outcome);
    }
    // Only the manifest is needed from now on, so the archiver's own state can go.
    item.archiver = undefined;

    const manifest = item.outcome.manifest;
    if (manifest === undefined) return;
    item.outcome.keptEntries = manifest.nodes.filter((node) => isKept(node, this.startedAt)).length;
    if (!this.settings.keepSavedEntries) {
      manifest.nodes = manifest.nodes.filter((node) => node.status !== 'saved' || node.possibly_incomplete);
    }
    this.emit({ type: 'execution-finished', ...ids(item), totals: manifest.totals });
  }

  private async waitForRunning(items: readonly BatchItem[], deadline: number, slots: LimitFunction): Promise<void> {
    const running = items.filter((item) => item.outcome.manifest?.execute_status === 'Running');
    if (running.length === 0 || this.context.signal.aborted) return;
    if (Date.now() >= deadline) {
      // Archiving the finished executions can use up the whole wait, so the log explains why these were never polled.
      for (const item of running) {
        this.context.logger.warn({ ...ids(item), polls: 0 }, 'execution still running at the --wait deadline, which passed while the others were archived');
      }
      return;
    }

    this.context.logger.info(
      { executions: running.length, until: new Date(deadline).toISOString() },
      'waiting for running executions to finish',
    );
    await Promise.all(running.map((item) => this.waitAndArchive(item, deadline, slots)));
  }

  /** Polls until the execution finished or the deadline passed, then archives it again. */
  private async waitAndArchive(item: BatchItem, deadline: number, slots: LimitFunction): Promise<void> {
    let waited: Awaited<ReturnType<typeof waitUntilFinished>>;
    try {
      waited = await waitUntilFinished(this.context, item.outcome, deadline, this.settings.poll);
      item.outcome.polls += waited.polls;
      if (this.context.signal.aborted) {
        this.context.logger.warn({ ...ids(item), polls: waited.polls }, 'waiting for the execution to finish was interrupted');
      } else if (!waited.finished) {
        this.context.logger.warn({ ...ids(item), polls: waited.polls }, 'execution still running at the --wait deadline');
      }
    } catch (error) {
      this.noteError(item, error);
      return;
    }
    await slots(() => this.archiveAgain(item, waited.lastRunHistory));
  }

  /**
   * Archives a waited-for execution again with a fresh archiver, which reuses the files saved
   * before. It takes the last poll's run history, so waiting costs no extra read. A wait cut
   * short by Ctrl+C is archived again too, with no request, so that its manifest records the
   * interruption. After an error that stops the batch, nothing more is written.
   */
  private async archiveAgain(item: BatchItem, runHistory: RunHistoryResult | undefined): Promise<void> {
    if (this.fatalError !== undefined) return;

    item.archiver = undefined;
    item.archived = false;
    await this.prepare(item, runHistory, { evenIfStopped: true });
    await this.archive(item);
  }

  /** Stops the batch for a rejected token, an unwritable disk or an outage of Coze. Any other error ends one execution. */
  private noteError(item: BatchItem, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (isPermissionDenied(error)) {
      // 4101 concerns one workflow, not the token: the other executions go on.
      item.outcome.error = message;
      item.outcome.permissionDenied = true;
      this.context.logger.error({ ...ids(item), err: message }, 'token lacks permission for this workflow');
      return;
    }
    if (!isBatchFatal(error)) {
      item.outcome.error = message;
      this.context.logger.error({ ...ids(item), err: message }, 'execution could not be archived');
      return;
    }

    if (this.fatalError !== undefined) return;
    this.fatalError = error;
    // A warning, not an error: the caller reports the error itself, so --quiet shows it once.
    // For a rejected token that report carries the advice, which this line leaves out.
    const reason = error instanceof AuthError ? error.reason : message;
    this.context.logger.warn({ ...ids(item), err: reason }, 'stopping the batch');
    this.stop.abort(error);
  }

  private emit(event: ProgressEvent): void {
    try {
      this.context.onProgress?.(event);
    } catch (error) {
      this.context.logger.warn({ err: (error as Error).message }, 'progress callback failed');
    }
  }

  private requestStats(): BatchRequestStats {
    const stats = this.context.limiter.stats();
    return {
      sent: stats.started,
      overLimitResponses: stats.overLimitAnswers,
      qps: this.context.limiter.qps,
      lowestQps: stats.lowestQps,
      lowestOverLimitQps: stats.lowestOverLimitQps,
    };
  }

  private result(items: readonly BatchItem[]): BatchResult {
    const executions = [...items].sort(summaryOrder).map((item) => item.outcome);
    const manifests = executions.flatMap((outcome) => (outcome.manifest === undefined ? [] : [outcome.manifest]));
    const result: BatchResult = {
      outDir: this.context.outDir,
      startedAt: this.startedAt,
      executions,
      manifests,
      exitCode: batchExitCode(executions, this.fatalError),
      requests: this.requestStats(),
    };
    if (this.fatalError !== undefined) result.fatalError = this.fatalError;
    return result;
  }
}

/** Maps a batch to one exit code: a stopped batch first, then the rules of `exitCodeFor`. */
export function batchExitCode(executions: readonly ExecutionOutcome[], fatalError: unknown): number {
  if (fatalError !== undefined) return isAuthError(fatalError) || fatalError instanceof AuthError ? EXIT_CODES.auth : EXIT_CODES.failed;
  if (executions.some((outcome) => outcome.permissionDenied === true)) return EXIT_CODES.auth;
  if (executions.some((outcome) => outcome.error !== undefined || outcome.manifest === undefined)) return EXIT_CODES.failed;
  return exitCodeFor(executions.map((outcome) => outcome.manifest!));
}

function batchSettings(options: BatchOptions): BatchSettings {
  const poll = { ...DEFAULT_POLL_SETTINGS, ...options.poll };
  return {
    waitMs: nonNegative(options.waitMs ?? 0, 'wait'),
    poll: { initialDelayMs: positive(poll.initialDelayMs, 'poll delay'), maxDelayMs: positive(poll.maxDelayMs, 'poll delay cap') },
    expiryWarningMs: withinRetention(options.expiryWarningMs ?? DEFAULT_EXPIRY_WARNING_MS),
    executionConcurrency: positiveWhole(options.executionConcurrency ?? DEFAULT_EXECUTION_CONCURRENCY, 'execution concurrency'),
    prepareConcurrency: positiveWhole(options.concurrency ?? DEFAULTS.concurrency, 'concurrency'),
    keepSavedEntries: options.keepSavedEntries ?? true,
  };
}

/** Checks every id before any request, and keeps each pair once in input order. */
function uniqueTargets(executions: readonly ExecutionTarget[]): ExecutionTarget[] {
  if (!Array.isArray(executions)) throw new UsageError('Missing executions: pass a list of { workflowId, executeId }.');
  const seen = new Map<string, ExecutionTarget>();
  for (const { workflowId, executeId } of executions) {
    if (!isDigitId(workflowId) || !isDigitId(executeId)) {
      throw new UsageError(`Invalid ids workflow_id="${workflowId}" execute_id="${executeId}": both must be digit strings.`);
    }
    seen.set(`${workflowId}/${executeId}`, { workflowId, executeId });
  }
  return [...seen.values()];
}

/** True for an entry saved before `since`, by an earlier run, and kept by this one. */
function isKept(entry: ManifestEntry, since: string): boolean {
  return entry.status === 'saved' && entry.saved_at !== undefined && entry.saved_at < since;
}

function newItem(target: ExecutionTarget, index: number): BatchItem {
  const outcome: ExecutionOutcome = { ...target, manifest: undefined, ageMs: undefined, expiryWarning: false, polls: 0, keptEntries: 0 };
  return { outcome, index, archived: false };
}

/** Reads the manifest an archiver wrote before it threw, for the summary. */
async function readWrittenManifest(outDir: string, target: ExecutionTarget): Promise<ExecutionManifest | undefined> {
  try {
    const text = await readFile(path.join(outDir, target.workflowId, target.executeId, MANIFEST_FILE), 'utf8');
    return JSON.parse(text) as ExecutionManifest;
  } catch {
    return undefined;
  }
}

function isBatchFatal(error: unknown): boolean {
  return error instanceof AuthError || error instanceof ArchiveWriteError || error instanceof CozeOutageError || isAuthError(error);
}

function byAgeDescending(a: BatchItem, b: BatchItem): number {
  const ageA = a.outcome.ageMs ?? -Infinity;
  const ageB = b.outcome.ageMs ?? -Infinity;
  return ageA === ageB ? a.index - b.index : ageB - ageA;
}

function summaryOrder(a: BatchItem, b: BatchItem): number {
  if (a.outcome.expiryWarning !== b.outcome.expiryWarning) return a.outcome.expiryWarning ? -1 : 1;
  return byAgeDescending(a, b);
}

function ids(item: BatchItem): ExecutionTarget {
  return { workflowId: item.outcome.workflowId, executeId: item.outcome.executeId };
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`Invalid ${name} ${value}: expected a number above 0.`);
  return value;
}

/** Checks a count of things run at once, which p-limit takes only as a whole number. */
function positiveWhole(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`Invalid ${name} ${value}: expected a whole number above 0.`);
  return value;
}

/** Checks the expiry warning's age, which past Coze's 24 hours would warn after the outputs are gone. */
function withinRetention(value: number): number {
  nonNegative(value, 'expiry warning');
  if (value > NODE_OUTPUT_RETENTION_MS) {
    throw new UsageError(`Invalid expiry warning ${value} ms: at most 24 hours, because Coze deletes output-node results 24 hours after the run.`);
  }
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`Invalid ${name} ${value}: expected a number, 0 or more.`);
  return value;
}
