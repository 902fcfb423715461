import { setMaxListeners } from 'node:events';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { ArchiveWriteError, AuthError, CozeOutageError, CozeRequestError, isAuthError, isPermissionDenied, OutputWriteError, TOKEN_ADVICE, UsageError } from '../coze/errors.js';
import { estimateStartFromId } from '../coze/execute-id-time.js';
import type { ParsedRunHistory, RunHistoryResult, StreamedNodeOutput } from '../coze/client.js';
import type { RunHistoryRecord } from '../coze/schemas.js';
import { withRetry, type AttemptTally } from '../http/with-retry.js';
import { removeStaleTemporaryFiles, toArchiveError, writeFileAtomic } from './atomic-write.js';
import { discoverInlineOutputs, discoverNodeRuns, invalidNodeRunEntry, type PlannedEntry } from './discover-entries.js';
import { blankEntry, describeError, errorLogFields } from './entry-results.js';
import { digestFile, fileMatches, sha256Hex } from './file-digest.js';
import { isDigitId, outputFileName, resolveInside, sanitizeComponent, UniqueNames } from './file-names.js';
import { incompleteReasons } from './incomplete-flags.js';
import {
  computeTotals,
  entryKey,
  EXECUTION_FILE,
  INLINE_FOLDER,
  isComplete,
  MANIFEST_FILE,
  MANIFEST_VERSION,
  NODES_FOLDER,
  readPreviousManifest,
  RUN_STOPPED_PREFIX,
  type ExecutionManifest,
  type ManifestEntry,
  type PreviousEntry,
} from './manifest.js';
import { ManifestWriter } from './manifest-writer.js';
import { makeFolderLevels } from './out-folder.js';
import { OutputFile } from './output-file.js';
import { NODE_OUTPUT_RETENTION_MS, type RunContext } from './run-context.js';

/** Facts from Coze about an output, for the possibly-incomplete flags. */
interface OutputFacts {
  isFinish?: boolean | undefined;
  isOutputTrimmed?: boolean | undefined;
}

interface OutputPlan {
  planned: PlannedEntry[];
  isRunning: boolean;
  isTrimmed: boolean;
}

export interface ExecutionTarget {
  workflowId: string;
  executeId: string;
}

/** Coze codes that mean "no such resource"; for an old execution they mean expired. */
const GONE_CODES = new Set([4200, 4314]);

/**
 * Archives one execution into `<outDir>/<workflow_id>/<execute_id>/` and returns its
 * manifest. Failures of single entries are recorded, not thrown. It throws only for what
 * must stop the whole run: a rejected token, a disk that cannot be written, bad ids.
 */
export async function archiveExecution(context: RunContext, target: ExecutionTarget): Promise<ExecutionManifest> {
  const archiver = new ExecutionArchiver(context, target);
  await archiver.prepare();
  return archiver.archive();
}

/**
 * The two phases of one execution's archive, apart so that a batch can read every run
 * history first and then fetch node outputs oldest first: `prepare` reads the run history,
 * `archive` saves the outputs and returns the manifest.
 */
export class ExecutionArchiver {
  private readonly context: RunContext;
  private readonly target: ExecutionTarget;
  private readonly folder: string;
  private readonly manifest: ExecutionManifest;
  private readonly writer: ManifestWriter;
  private readonly names = new UniqueNames();
  private readonly previous = new Map<string, PreviousEntry>();
  /** The earlier manifest's top-level fields, kept when run history cannot be read now. */
  private previousFields: Record<string, unknown> | undefined;
  /** Aborts this execution's requests on the run's signal or on a fatal error here. */
  private readonly controller = new AbortController();
  private fatalError: unknown;
  private executionAgeMs: number | undefined;
  /** Time since `create_time`, for the grace period in which Coze may return 4314. */
  private startedAgeMs: number | undefined;
  /**
   * The outputs to archive, planned in `prepare` so that the parsed run history can go at once,
   * because a batch prepares every execution before it archives the first.
   */
  private plan: OutputPlan | undefined;
  /** True once `archiveOutputs` has listed the planned entries, each starting from the earlier run's. */
  private outputsListed = false;
  private prepared = false;
  /** Whether the execution's folder exists, so that the manifest has somewhere to go. */
  private folderMade = false;
  /** The write of execution.json, which runs while the outputs are fetched. It never rejects. */
  private executionSaved: Promise<void> = Promise.resolve();
  /** True after `releasePlan`, so that `archive` plans the outputs again from execution.json. */
  private planReleased = false;
  /** SHA-256 of the execution.json this run saved, to detect a change before the file is read back. */
  private executionDigest: string | undefined;

  /** `startedAt` carries the first pass's start into a second pass of the same run, after `--wait`. */
  constructor(context: RunContext, target: ExecutionTarget, startedAt?: string) {
    if (!isDigitId(target.workflowId) || !isDigitId(target.executeId)) {
      throw new UsageError(
        `Invalid ids workflow_id="${target.workflowId}" execute_id="${target.executeId}": both must be digit strings.`,
      );
    }
    this.context = context;
    this.target = target;
    // Each worker's retry loop, request and limiter wait listen on this signal at once.
    setMaxListeners(0, this.controller.signal);
    this.folder = resolveInside(context.outDir, path.join(target.workflowId, target.executeId));
    this.manifest = emptyManifest(context, target);
    if (startedAt !== undefined) this.manifest.started_at = startedAt;
    this.writer = new ManifestWriter(path.join(this.folder, MANIFEST_FILE), () => this.snapshot());
  }

  /**
   * Reads the run history, or takes one the caller just read while polling, and saves
   * execution.json. Errors are kept for `archive`, which reports them, so this never rejects.
   */
  async prepare(runHistory?: RunHistoryResult): Promise<RunHistoryRecord | undefined> {
    this.listenForAbort();
    let record: RunHistoryRecord | undefined;
    try {
      await this.createFolder();
      await removeStaleTemporaryFiles(this.folder, [NODES_FOLDER, INLINE_FOLDER]);
      await this.loadPrevious();
      this.context.logger.info(this.ids(), 'execution started');
      const parsed = await this.readRunHistory(runHistory);
      record = parsed?.record;
      if (parsed !== undefined) {
        this.plan = planOutputs(parsed);
        await this.createOutputFolders();
      } else {
        this.ageFromEarlierRun();
      }
    } catch (error) {
      this.noteFatal(error);
    }
    this.prepared = true;
    return record;
  }

  /** Number of entries that `prepare` planned from the run history, until `archive` starts on them. */
  get plannedEntries(): number {
    return this.plan?.planned.length ?? 0;
  }

  /** Number of node runs among `plannedEntries`, without the inline outputs. */
  get plannedNodeRuns(): number {
    return this.plan?.planned.filter((entry) => entry.source === 'execute_nodes').length ?? 0;
  }

  /** Settles once the execution.json that `prepare` started is written, or its failure recorded. */
  get executionFileSettled(): Promise<void> {
    return this.executionSaved;
  }

  /** True once an error that stops the run has happened here, such as a disk that cannot take files. */
  get hasFatalError(): boolean {
    return this.fatalError !== undefined;
  }

  /**
   * Drops the planned outputs, which `archive` then plans again from execution.json, so a batch
   * need not hold every plan until its turn. Call it once `executionFileSettled` has settled.
   */
  releasePlan(): void {
    if (this.plan === undefined || this.manifest.execution_file === null) return;
    this.plan = undefined;
    this.planReleased = true;
  }

  /** Age of the execution from its `update_time` (else `create_time`), once prepared. */
  get ageMs(): number | undefined {
    return this.executionAgeMs;
  }

  /** Saves every output found in the run history and returns the final manifest. */
  async archive(): Promise<ExecutionManifest> {
    if (!this.prepared) await this.prepare();

    try {
      if (this.planReleased && this.fatalError === undefined) this.plan = await this.planAgain();
      const plan = this.plan;
      this.plan = undefined;
      if (plan !== undefined && this.fatalError === undefined) await this.archiveOutputs(plan);
    } catch (error) {
      this.noteFatal(error);
    } finally {
      this.context.signal.removeEventListener('abort', this.abortFromRun);
    }
    await this.executionSaved;
    return this.finish();
  }

  /**
   * Plans the outputs from the execution.json that `prepare` saved. If that file is missing or
   * its bytes changed since, the run history is requested again and the file saved again.
   */
  private async planAgain(): Promise<OutputPlan | undefined> {
    this.planReleased = false;
    let body: Buffer | undefined;
    try {
      body = await readFile(path.join(this.folder, EXECUTION_FILE));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.context.logger.warn({ ...this.ids(), err: reason }, 'failed to read back execution.json; requesting run history again');
    }

    if (body !== undefined && sha256Hex(body) === this.executionDigest) {
      return planOutputs(this.context.client.parseRunHistory(body, this.target.workflowId, this.target.executeId));
    }
    if (body !== undefined) {
      this.context.logger.warn(this.ids(), 'execution.json changed since it was saved; requesting run history again');
    }
    const parsed = await this.readRunHistory(undefined);
    return parsed === undefined ? undefined : planOutputs(parsed);
  }

  private readonly abortFromRun = (): void => this.controller.abort(this.context.signal.reason);

  private listenForAbort(): void {
    this.context.signal.addEventListener('abort', this.abortFromRun, { once: true });
    if (this.context.signal.aborted) this.abortFromRun();
  }

  private async createFolder(): Promise<void> {
    // One level at a time: a recursive mkdir reports ENOENT where the disk returned EROFS.
    const levels = [this.target.workflowId, this.target.executeId];
    let current = this.context.outDir;
    try {
      await makeFolderLevels(current);
      for (const level of levels) {
        current = path.join(current, level);
        await mkdirIfMissing(current);
      }
      this.folderMade = true;
    } catch (error) {
      throw toArchiveError(current, error);
    }
  }

  /** Makes the output folders once the run history is read, so a failed read leaves no empty ones. */
  private async createOutputFolders(): Promise<void> {
    for (const name of [NODES_FOLDER, INLINE_FOLDER]) {
      const folder = path.join(this.folder, name);
      try {
        await mkdirIfMissing(folder);
      } catch (error) {
        throw toArchiveError(folder, error);
      }
    }
  }

  /** Reads the earlier manifest, also with --force, which fetches again but falls back on it. */
  private async loadPrevious(): Promise<void> {
    const { entries, fields, problem } = await readPreviousManifest(path.join(this.folder, MANIFEST_FILE), this.target);
    this.previousFields = fields;
    if (problem !== undefined) this.context.logger.warn({ ...this.ids(), problem }, 'ignoring earlier manifest; fetching everything');

    for (const entry of entries) {
      if (entry.file !== null && !isOutputFilePath(entry.file)) {
        this.context.logger.warn({ ...this.ids(), file: entry.file }, 'ignoring an earlier manifest entry whose file is not an output file');
        continue;
      }
      this.previous.set(entryKey(entry), entry);
      if (entry.file !== null) this.names.reserve(path.basename(entry.file));
    }
  }

  /** Reads run history and starts saving it raw as execution.json. Returns undefined if the read failed. */
  private async readRunHistory(preRead: RunHistoryResult | undefined): Promise<ParsedRunHistory | undefined> {
    const tally: AttemptTally = { attempts: 0 };
    try {
      const result =
        preRead ??
        (await withRetry(
          (signal, responded) => this.context.client.getRunHistory(this.target.workflowId, this.target.executeId, signal, { onResponse: responded }),
          this.retryCall(tally, this.ids()),
        ));
      this.applyRecord(result.record, result.logid);
      this.executionSaved = this.saveExecution(result);
      return { record: result.record, invalidNodeRuns: result.invalidNodeRuns };
    } catch (error) {
      if (isPermissionDenied(error)) this.manifest.run_history_logid = error.logid ?? null;
      if (isFatal(error)) throw error;
      if (this.controller.signal.aborted) {
        // The run stopped while this read waited to try again, so the manifest records why the last attempt failed.
        if (tally.lastFailure !== undefined) this.noteRunHistoryError(tally.lastFailure, true);
        throw error;
      }

      this.noteRunHistoryError(error);
      return undefined;
    }
  }

  /** Records why the run history could not be read, and whether the run stopped before a retry. */
  private noteRunHistoryError(error: unknown, beforeStop = false): void {
    const step = beforeStop ? 'could not be read before the run stopped' : 'could not be read';
    this.manifest.error = describeError(error);
    // The summary and verify quote this message alone, so it names the step that failed.
    this.manifest.error.message = `Run history ${step}: ${this.manifest.error.message}`;
    this.context.logger.error({ ...this.ids(), ...errorLogFields(this.manifest.error) }, `run history ${step}`);
  }

  /**
   * Writes the run history as execution.json while the outputs are fetched, because Coze deletes
   * those and not the run history. A full or read-only disk stops the run. Any other failure
   * becomes the execution's error.
   */
  private async saveExecution(result: RunHistoryResult): Promise<void> {
    if (await this.keepEarlierExecutionFile(result)) return;
    try {
      await writeFileAtomic(path.join(this.folder, EXECUTION_FILE), result.rawBody);
      this.manifest.execution_file = EXECUTION_FILE;
      this.executionDigest = sha256Hex(result.rawBody);
      this.manifest.execution_sha256 = this.executionDigest;
    } catch (error) {
      if (isFatal(error)) {
        this.noteFatal(error);
        return;
      }
      const reason = error instanceof Error ? error.message : String(error);
      this.manifest.error = { message: `Failed to save execution.json, so the run history is not kept beside the outputs: ${reason}` };
      this.context.logger.error({ ...this.ids(), err: reason }, 'failed to save execution.json; the outputs are still fetched');
    }
  }

  /**
   * Keeps the execution.json an earlier run saved while it matches its sha256 and every field
   * this tool reads is unchanged, so a killed re-run cannot leave it out of step with the manifest.
   */
  private async keepEarlierExecutionFile(result: ParsedRunHistory): Promise<boolean> {
    const recorded = this.previousFields?.['execution_sha256'];
    if (typeof recorded !== 'string') return false;
    const body = await readFile(path.join(this.folder, EXECUTION_FILE)).catch(() => undefined);
    if (body === undefined || sha256Hex(body) !== recorded) return false;

    let earlier: ParsedRunHistory;
    try {
      earlier = this.context.client.parseRunHistory(body, this.target.workflowId, this.target.executeId);
    } catch {
      return false;
    }
    const current: ParsedRunHistory = { record: result.record, invalidNodeRuns: result.invalidNodeRuns };
    if (JSON.stringify(earlier) !== JSON.stringify(current)) return false;

    const earlierLogid = this.previousFields?.['run_history_logid'];
    this.manifest.run_history_logid = typeof earlierLogid === 'string' ? earlierLogid : null;
    this.manifest.execution_file = EXECUTION_FILE;
    this.executionDigest = recorded;
    this.manifest.execution_sha256 = recorded;
    return true;
  }

  private applyRecord(record: RunHistoryRecord, requestLogid: string | undefined): void {
    const m = this.manifest;
    m.execute_status = record.execute_status;
    m.error_code = record.error_code;
    m.error_message = record.error_message ?? null;
    m.create_time = record.create_time ?? null;
    m.update_time = record.update_time ?? null;
    m.execution_logid = record.logid ?? null;
    m.run_history_logid = requestLogid ?? null;
    m.is_output_trimmed = record.is_output_trimmed ?? false;
    m.debug_url = record.debug_url ?? null;

    if (record.create_time !== undefined) this.startedAgeMs = this.context.now() - record.create_time * 1000;
    const referenceSeconds = record.update_time ?? record.create_time;
    this.executionAgeMs = referenceSeconds === undefined ? undefined : this.context.now() - referenceSeconds * 1000;

    if (record.execute_status === 'Fail') {
      this.context.logger.warn(
        { ...this.ids(), errorCode: record.error_code, errorMessage: record.error_message },
        'execution failed in Coze; archiving the outputs it produced',
      );
    }
  }

  private async archiveOutputs({ planned, isRunning, isTrimmed }: OutputPlan): Promise<void> {
    this.manifest.nodes = planned.map((entry) => this.startingEntry(entry));
    this.outputsListed = true;
    await this.keepUnlisted(new Set(planned.map((entry) => entry.key)));

    // Workers take entries one at a time, so waiting work costs memory per worker, not per
    // entry: 20,000 entries started at once held about 6 KB of promise chains each. Twice the
    // concurrency keeps every request slot busy while other workers write files.
    let next = 0;
    const pending: (PlannedEntry | undefined)[] = planned;
    const worker = async (): Promise<void> => {
      while (next < pending.length) {
        const index = next;
        next += 1;
        const entry = pending[index]!;
        // A planned entry is needed only until it settles; inline ones can carry large text.
        pending[index] = undefined;
        await this.settleEntry(entry, this.manifest.nodes[index]!, isRunning, isTrimmed);
      }
    };
    const workerCount = Math.min(planned.length, 2 * this.context.limiter.concurrency);
    await Promise.all(Array.from({ length: workerCount }, worker));
  }

  /**
   * Starts an entry as the earlier run left it when that run recorded a file: saved, or not saved
   * with the record of a saved file changed or deleted since. A manifest written before this run
   * reaches the entry, or the last one a killed run left, then still names the file.
   */
  private startingEntry(planned: PlannedEntry): ManifestEntry {
    const entry = blankEntry(planned);
    const earlier = this.previous.get(planned.key) as Partial<ManifestEntry> | undefined;
    if (typeof earlier?.file !== 'string' || typeof earlier.sha256 !== 'string') return entry;
    if (earlier.status !== 'saved') {
      const status = earlier.status === 'failed' || earlier.status === 'expired' ? earlier.status : 'pending';
      return Object.assign(entry, { status, file: earlier.file, bytes: earlier.bytes ?? null, sha256: earlier.sha256, reason: earlier.reason });
    }

    return Object.assign(entry, {
      status: 'saved',
      file: earlier.file,
      bytes: earlier.bytes ?? null,
      sha256: earlier.sha256,
      is_finish: earlier.is_finish ?? entry.is_finish,
      possibly_incomplete: earlier.possibly_incomplete ?? false,
      incomplete_reasons: earlier.incomplete_reasons ?? [],
      attempts: earlier.attempts ?? 0,
      saved_at: earlier.saved_at,
    });
  }

  private async settleEntry(planned: PlannedEntry, entry: ManifestEntry, isRunning: boolean, isTrimmed: boolean): Promise<void> {
    try {
      await this.archiveEntry(planned, entry, isRunning, isTrimmed);
    } catch (error) {
      this.noteFatal(error);
    }
    // The earlier run's entry has served its purpose: resume check and file name.
    this.previous.delete(planned.key);
    this.writer.schedule();

    // The callback belongs to the caller, so an error it throws is logged and the archive goes on.
    try {
      this.context.onProgress?.({ type: 'entry-settled', ...this.ids(), status: entry.status, bytes: entry.bytes ?? 0 });
    } catch (error) {
      this.context.logger.warn({ ...this.ids(), title: planned.title, err: (error as Error).message }, 'progress callback failed');
    }
  }

  private async archiveEntry(planned: PlannedEntry, entry: ManifestEntry, isRunning: boolean, isTrimmed: boolean): Promise<void> {
    if (planned.invalid !== undefined) {
      this.failInvalid(planned, entry, planned.invalid);
      return;
    }
    // Checked first, even when the run is stopping, so an interrupted re-run keeps what was saved.
    if (await this.reuseSaved(planned, entry)) return;
    const expiry = this.earlierExpiry(planned);
    if (expiry !== undefined) {
      await this.keepExpired(planned, entry, expiry);
      return;
    }

    // While this run tries again, the manifest keeps listing what the earlier run saved.
    const outcome = entry.file !== null ? blankEntry(planned) : entry;
    if (entry.status === 'saved' && !this.context.force && !this.controller.signal.aborted) {
      // Otherwise a re-run that repairs the archive would leave no trace but a smaller kept count.
      this.context.logger.info({ ...this.ids(), title: planned.title, file: entry.file }, 'saved file is missing or altered; fetching it again');
    }
    let stop: { error: unknown } | undefined;
    try {
      await this.attemptEntry(planned, outcome, isRunning, isTrimmed);
    } catch (error) {
      // An error that stops the run still leaves this entry the file an earlier run saved.
      stop = { error };
    } finally {
      if (outcome !== entry) replaceEntry(entry, outcome);
    }
    if (entry.status !== 'saved') await this.keepEarlierFile(planned, entry);
    if (entry.status === 'expired') {
      // Logged as an error, as a failed fetch is, because the output is lost for good and --quiet shows errors.
      const logFields = { ...this.ids(), title: entry.title, nodeExecuteUuid: entry.node_execute_uuid, reason: entry.reason };
      this.context.logger.error(logFields, 'output node expired');
    }
    // A --force request cut off by a stop found nothing new, so the earlier expiry stays on record.
    const cutOffExpiry = entry.status === 'pending' ? this.earlierExpiry(planned) : undefined;
    if (cutOffExpiry !== undefined) await this.keepExpired(planned, entry, cutOffExpiry);
    if (stop !== undefined) throw stop.error;
  }

  /**
   * Returns the entry an earlier run recorded as expired, with no file, for a node output that
   * this run should not request again. --force requests it again, unless the run is stopping.
   */
  private earlierExpiry(planned: PlannedEntry): Partial<ManifestEntry> | undefined {
    const requestsAgain = this.context.force && !this.controller.signal.aborted;
    if (requestsAgain || planned.source !== 'execute_nodes' || !this.isPastRetention()) return undefined;
    const earlier = this.previous.get(planned.key) as Partial<ManifestEntry> | undefined;
    // An entry that names a file an earlier run saved goes the usual way, which keeps that record.
    if (earlier?.status !== 'expired' || typeof earlier.file === 'string') return undefined;
    return earlier;
  }

  /**
   * Records the earlier expiry without a request, since Coze deleted the output and each request
   * counts against the token's limits. A file under the output's name, such as a backup, is saved.
   */
  private async keepExpired(planned: PlannedEntry, entry: ManifestEntry, earlier: Partial<ManifestEntry>): Promise<void> {
    entry.status = 'expired';
    entry.reason = earlier.reason ?? 'expired in an earlier run';
    if (earlier.is_finish !== undefined) entry.is_finish = earlier.is_finish;
    const logFields = { ...this.ids(), title: planned.title, nodeExecuteUuid: planned.nodeExecuteUuid };
    if (await this.takeFileUnderName(planned, entry)) {
      this.context.logger.warn({ ...logFields, file: entry.file }, 'output expired in Coze, so the file under its name is kept');
      return;
    }

    if (earlier.error !== undefined) entry.error = earlier.error;
    this.context.logger.info(logFields, 'output expired in an earlier run; not requested again');
  }

  /** Saves an inline output or fetches a node's, recording the outcome in `entry`. */
  private async attemptEntry(planned: PlannedEntry, entry: ManifestEntry, isRunning: boolean, isTrimmed: boolean): Promise<void> {
    // A node still running is not requested in any case, so that stays its reason when the run stops too.
    if (planned.source === 'execute_nodes' && isRunning && planned.isFinish === false) {
      entry.reason = 'node_not_finished';
      return;
    }
    // An inline output is already in memory and needs no request, so an interrupted run still
    // writes it, also after a rejected token or an outage. After a disk error nothing more is written.
    const keepsInline = planned.source === 'inline' && !(this.fatalError instanceof ArchiveWriteError);
    if (this.controller.signal.aborted && !keepsInline) {
      entry.reason = 'interrupted';
      return;
    }

    if (planned.source === 'inline') {
      try {
        await this.saveText(planned, entry, planned.inlineText ?? '', { isOutputTrimmed: isTrimmed });
      } catch (error) {
        if (!(error instanceof OutputWriteError)) throw error;
        this.failWrite(planned, entry, error);
      }
      return;
    }
    await this.fetchNode(planned, entry);
  }


  /**
   * Keeps the file an earlier run saved for an output this run could not fetch again. With
   * --force, or once the manifest is lost, Coze may no longer have the output after its 24
   * hours, and that file is then the only copy.
   */
  private async keepEarlierFile(planned: PlannedEntry, entry: ManifestEntry): Promise<void> {
    const message = entry.error?.message ?? entry.reason;
    const earlier = this.previous.get(planned.key);
    if (earlier !== undefined && earlier.file !== null) {
      // With --force the earlier file was not checked yet, and its recorded size and sha256 vouch for it.
      const attempts = entry.attempts;
      if (this.context.force && (await this.keepSaved(planned, entry))) {
        entry.attempts = attempts;
      } else {
        await this.noteChangedFile(planned, entry, earlier);
        return;
      }
    } else if (entry.status !== 'expired' || !(await this.takeFileUnderName(planned, entry))) {
      return;
    }
    delete entry.error;
    const logFields = { ...this.ids(), title: planned.title, file: entry.file, err: message };
    const text = 'output could not be fetched again, so the file an earlier run saved is kept';
    // A stop cuts off every request in flight, and the summary already reports the interruption.
    if (this.controller.signal.aborted) this.context.logger.info(logFields, text);
    else this.context.logger.warn(logFields, text);
  }

  /**
   * Records the file under the output's name as saved, for an output no record names a file for,
   * such as one a killed run wrote whole or one restored from a backup. Returns false without one.
   */
  private async takeFileUnderName(planned: PlannedEntry, entry: ManifestEntry): Promise<boolean> {
    const file = this.fileFor(planned);
    const found = await digestFile(resolveInside(this.folder, file));
    if (found === undefined) return false;

    const reasons = incompleteReasons({ bytes: found.bytes, isFinish: entry.is_finish ?? undefined }, this.context.flagBytes);
    Object.assign(entry, {
      status: 'saved',
      file,
      bytes: found.bytes,
      sha256: found.sha256,
      possibly_incomplete: reasons.length > 0,
      incomplete_reasons: reasons,
      saved_at: new Date(found.mtimeMs).toISOString(),
    });
    delete entry.reason;
    return true;
  }

  /** Records a node run whose run-history entry is not shaped as documented, so its output cannot be requested. */
  private failInvalid(planned: PlannedEntry, entry: ManifestEntry, problem: string): void {
    entry.status = 'failed';
    entry.error = {
      kind: 'invalid_response',
      message: `Its entry in the run history is not shaped as documented, so its output was not requested: ${problem}`,
    };
    // Coze support finds the run-history response that listed it by this logid.
    if (this.manifest.run_history_logid !== null) entry.error.logid = this.manifest.run_history_logid;
    const logFields = { ...this.ids(), title: planned.title, err: problem };
    this.context.logger.error(logFields, 'node run listed in an unexpected shape; its output was not requested');
  }

  /** Records an output whose file could not be written, while the other entries go on. */
  private failWrite(planned: PlannedEntry, entry: ManifestEntry, error: OutputWriteError): void {
    entry.status = 'failed';
    entry.error = describeError(error);
    const logFields = { ...this.ids(), title: planned.title, source: planned.source, errno: error.errno, err: error.message };
    this.context.logger.error(logFields, 'output could not be saved');
  }

  /**
   * Keeps the record of a file an earlier run saved and someone changed or deleted since, when
   * this run could not fetch the output again. The entry keeps its status but names the file,
   * with the size and sha256 it had when saved. A changed file may be the only copy once Coze
   * deletes the output, and the record sets it apart from Coze's output. `verify` reports the
   * file, and a file restored to the recorded bytes is taken as saved again.
   */
  private async noteChangedFile(planned: PlannedEntry, entry: ManifestEntry, earlier: PreviousEntry): Promise<void> {
    // An earlier run may have recorded the same, so the file stays named from run to run.
    if (entry.status === 'saved' || earlier.file === null || earlier.sha256 === null) return;
    const missing = (await digestFile(resolveInside(this.folder, earlier.file))) === undefined;

    Object.assign(entry, { file: earlier.file, bytes: earlier.bytes, sha256: earlier.sha256 });
    entry.reason = `${entry.reason ?? entry.status}; ${changedFileNote(earlier.file, missing)}`;
    const logFields = { ...this.ids(), title: planned.title, status: entry.status, file: earlier.file };
    this.context.logger.warn(logFields, `output not fetched again, and the file an earlier run saved was ${missing ? 'deleted' : 'changed'} since`);
  }

  /**
   * Keeps an entry an earlier run saved when its file still matches size and sha256, unless
   * --force fetches every output again. A stopping run fetches nothing, so then it keeps it too.
   */
  private async reuseSaved(planned: PlannedEntry, entry: ManifestEntry): Promise<boolean> {
    if (this.context.force && !this.controller.signal.aborted) return false;
    return this.keepSaved(planned, entry);
  }

  /**
   * Takes over the file an earlier run saved, when it matches the size and sha256 on record. An
   * unsaved entry has such a record only for a saved file that was changed or deleted since, so
   * a file restored to those bytes counts as saved again.
   */
  private async keepSaved(planned: PlannedEntry, entry: ManifestEntry): Promise<boolean> {
    const earlier = this.previous.get(planned.key);
    if (earlier === undefined || earlier.file === null) return false;
    if (earlier.bytes === null || earlier.sha256 === null) return false;

    const filePath = resolveInside(this.folder, earlier.file);
    if (!(await fileMatches(filePath, earlier.bytes, earlier.sha256))) return false;

    const earlierEntry = earlier as unknown as ManifestEntry;
    const isFinish = earlierEntry.is_finish ?? entry.is_finish;
    // The size flags follow this run's --flag-bytes, and the other facts are those of the kept file.
    const facts = { bytes: earlier.bytes, isFinish: isFinish ?? undefined, isOutputTrimmed: earlierEntry.incomplete_reasons?.includes('output_trimmed') };
    const reasons = incompleteReasons(facts, this.context.flagBytes);
    Object.assign(entry, {
      status: 'saved',
      file: earlier.file,
      bytes: earlier.bytes,
      sha256: earlier.sha256,
      is_finish: isFinish,
      possibly_incomplete: reasons.length > 0,
      incomplete_reasons: reasons,
      attempts: earlier.attempts ?? 0,
      saved_at: earlierEntry.saved_at,
    });
    delete entry.reason;
    return true;
  }

  private async fetchNode(planned: PlannedEntry, entry: ManifestEntry): Promise<void> {
    const tally: AttemptTally = { attempts: 0 };
    const logFields = { ...this.ids(), nodeExecuteUuid: planned.nodeExecuteUuid, nodeId: planned.nodeId, title: planned.title };

    try {
      const { result, output } = await this.requestOutput(planned, tally, logFields);
      entry.attempts = tally.attempts;
      entry.is_finish = result.isFinish ?? entry.is_finish;

      if (result.bytes === 0 && this.isPastRetention()) {
        await output.discard();
        this.markExpired(entry, 'Coze returned an empty output for an execution older than 24 hours');
        return;
      }
      await this.saveOutput(planned, entry, output, { isFinish: result.isFinish });
    } catch (error) {
      entry.attempts = tally.attempts;
      if (isFatal(error)) {
        // The run stops here, as it does for Ctrl+C, and the manifest's `stopped` records why.
        entry.reason = 'interrupted';
        throw error;
      }
      if (error instanceof OutputWriteError) {
        this.failWrite(planned, entry, error);
        return;
      }

      if (this.controller.signal.aborted) {
        entry.reason = 'interrupted';
        return;
      }
      if (error instanceof CozeRequestError && error.code !== undefined && GONE_CODES.has(error.code) && this.isPastRetention()) {
        this.markExpired(entry, error.message);
        entry.error = describeError(error);
        return;
      }

      entry.status = 'failed';
      entry.error = describeError(error);
      this.context.logger.error({ ...logFields, attempts: tally.attempts, ...errorLogFields(entry.error) }, 'output node could not be fetched');
    }
  }

  /**
   * Fetches one node's output into a new `OutputFile`, with retries. After a body that could
   * not be read as it arrived, later attempts read the body whole before decoding it.
   */
  private requestOutput(
    planned: PlannedEntry,
    tally: AttemptTally,
    logFields: Record<string, unknown>,
  ): Promise<{ result: StreamedNodeOutput; output: OutputFile }> {
    let whole = false;
    return withRetry(async (signal, responded) => {
      // Each attempt streams into a file of its own, removed if the attempt fails.
      const output = new OutputFile(path.join(this.folder, NODES_FOLDER));
      try {
        const result = await this.context.client.streamNodeOutput(
          this.target.workflowId,
          this.target.executeId,
          planned.nodeExecuteUuid!,
          output,
          signal,
          { whole, onResponse: responded },
        );
        return { result, output };
      } catch (error) {
        await output.discard();
        if (error instanceof CozeRequestError && error.kind === 'unreadable_stream') whole = true;
        throw error;
      }
    }, this.retryCall(tally, logFields));
  }

  private async saveText(planned: PlannedEntry, entry: ManifestEntry, text: string, facts: OutputFacts): Promise<void> {
    const output = new OutputFile(path.join(this.folder, INLINE_FOLDER));
    await output.write(Buffer.from(text, 'utf8'));
    await this.saveOutput(planned, entry, output, facts);
  }

  /** Gives a complete output its file name and records it as saved. */
  private async saveOutput(planned: PlannedEntry, entry: ManifestEntry, output: OutputFile, facts: OutputFacts): Promise<void> {
    const file = this.fileFor(planned);
    const bytes = output.bytes;
    let sha256: string;
    try {
      sha256 = await output.commit(resolveInside(this.folder, file));
    } catch (error) {
      throw asOutputWriteError(error, file);
    }

    const reasons = incompleteReasons({ bytes, ...facts }, this.context.flagBytes);
    entry.status = 'saved';
    entry.file = file;
    entry.bytes = bytes;
    entry.sha256 = sha256;
    entry.possibly_incomplete = reasons.length > 0;
    entry.incomplete_reasons = reasons;
    entry.saved_at = new Date(this.context.now()).toISOString();
    delete entry.reason;
    delete entry.error;

    if (reasons.length > 0) {
      // A node's output can also come inline in the run history under the same title, so the
      // source and the file tell the two warnings apart.
      this.context.logger.warn({ ...this.ids(), title: planned.title, source: planned.source, file, bytes, reasons }, 'output may be incomplete');
    }
  }

  /** Returns the entry's relative path: the earlier run's name when resuming, else a fresh unique one. */
  private fileFor(planned: PlannedEntry): string {
    const earlier = this.previous.get(planned.key)?.file;
    if (earlier !== undefined && earlier !== null) {
      resolveInside(this.folder, earlier);
      return earlier;
    }

    const folder = planned.source === 'inline' ? INLINE_FOLDER : NODES_FOLDER;
    const name = outputFileName({
      title: planned.title,
      nodeId: planned.nodeId ?? undefined,
      loopIndex: planned.loopIndex ?? undefined,
      batchIndex: planned.batchIndex ?? undefined,
      nodeExecuteUuid: planned.nodeExecuteUuid,
    });
    return `${folder}/${this.names.claim(name)}`;
  }

  /** Records an output that Coze deleted. `archiveEntry` logs it unless an earlier file takes its place. */
  private markExpired(entry: ManifestEntry, message: string): void {
    entry.status = 'expired';
    entry.reason = message;
  }

  /**
   * Takes the execution's age from the times an earlier run recorded, when this run cannot read
   * the run history, so that an execution near Coze's 24 hours still gets its warning.
   */
  private ageFromEarlierRun(): void {
    const fields = this.previousFields;
    const seconds = [fields?.['update_time'], fields?.['create_time']].find((value): value is number => typeof value === 'number');
    if (this.executionAgeMs === undefined && seconds !== undefined) this.executionAgeMs = this.context.now() - seconds * 1000;
  }

  /** Age estimated from the execute id, until the run history gives `create_time`. */
  private ageFromId(): number | undefined {
    const startMs = estimateStartFromId(this.target.executeId, this.context.now());
    return startMs === undefined ? undefined : this.context.now() - startMs;
  }

  private isPastRetention(): boolean {
    return this.executionAgeMs !== undefined && this.executionAgeMs > NODE_OUTPUT_RETENTION_MS;
  }

  /**
   * Keeps the earlier run's entries and execution fields when this run stops before it lists the
   * outputs, and checks each entry's file. Returns true when every saved file checks out.
   */
  private async carryPrevious(): Promise<boolean> {
    this.manifest.nodes = [...this.previous.values()] as unknown as ManifestEntry[];
    let intact = true;
    for (const entry of this.manifest.nodes) {
      if (await this.recheckCarried(entry)) {
        intact = false;
        this.context.logger.warn({ ...this.ids(), file: entry.file }, 'saved file is missing or altered; the next run that reads run history fetches it again');
      }
    }

    const earlier = this.previousFields;
    if (earlier === undefined) return intact;
    const target = this.manifest as unknown as Record<string, unknown>;
    for (const field of CARRIED_FIELDS) {
      if (target[field] === null && earlier[field] !== undefined) target[field] = earlier[field];
    }
    return intact;
  }

  /** Returns true when execution.json still has the sha256 that the earlier manifest recorded. */
  private async executionFileAsRecorded(): Promise<boolean> {
    const recorded = this.previousFields?.['execution_sha256'];
    if (typeof recorded !== 'string') return false;
    return (await digestFile(path.join(this.folder, EXECUTION_FILE)))?.sha256 === recorded;
  }

  /**
   * Checks the file of an entry taken over from the earlier manifest as it was. A saved file
   * that is gone or altered makes the entry pending with a note, and the next run that can
   * fetch the output fetches it again. A file restored to its recorded bytes is saved again.
   * Returns true when it found a saved file gone or altered.
   */
  private async recheckCarried(entry: ManifestEntry): Promise<boolean> {
    if (entry.file === null || entry.bytes === null || entry.sha256 === null) return false;
    const filePath = resolveInside(this.folder, entry.file);
    if (await fileMatches(filePath, entry.bytes, entry.sha256)) {
      if (entry.status === 'saved') return false;
      entry.status = 'saved';
      delete entry.reason;
      delete entry.error;
      return false;
    }
    // An unsaved entry that names a file already records how that file changed.
    if (entry.status !== 'saved') return false;

    entry.status = 'pending';
    const missing = (await digestFile(filePath)) === undefined;
    entry.reason = `file_missing_or_altered; ${changedFileNote(entry.file, missing)}`;
    return true;
  }

  /**
   * Keeps the entries of files an earlier run saved whose node runs or inline outputs the run
   * history no longer lists. Nothing fetches them again, and their files may be the only copy.
   */
  private async keepUnlisted(plannedKeys: ReadonlySet<string>): Promise<void> {
    for (const [key, earlier] of this.previous) {
      if (plannedKeys.has(key) || earlier.file === null || earlier.sha256 === null) continue;
      const entry = { ...earlier } as unknown as ManifestEntry;
      await this.recheckCarried(entry);
      if (entry.status !== 'saved') {
        // No fetch can request an output the run history no longer lists, so its loss is final, as for an expired one.
        entry.status = 'expired';
        entry.reason = `no longer listed in the run history; ${entry.reason ?? 'not saved'}`;
      }
      this.manifest.nodes.push(entry);
      this.previous.delete(key);
      const logFields = { ...this.ids(), title: earlier.title, file: earlier.file, status: entry.status };
      const message =
        entry.status === 'saved'
          ? 'the run history no longer lists this output; the file an earlier run saved stays listed'
          : 'the run history no longer lists this output, and the file an earlier run saved is missing or altered; only a backup can restore it';
      this.context.logger.warn(logFields, message);
    }
  }

  private retryCall(tally: AttemptTally, logFields: Record<string, unknown>) {
    return {
      limiter: this.context.limiter,
      breaker: this.context.breaker,
      settings: this.context.retry,
      signal: this.controller.signal,
      logger: this.context.logger,
      logFields,
      tally,
      context: () => ({ executionAgeMs: this.startedAgeMs ?? this.ageFromId() }),
    };
  }

  /** Records the first error that must stop the run and aborts this execution's requests. */
  private noteFatal(error: unknown): void {
    if (error instanceof CozeRequestError && error.kind === 'aborted') return;
    if (this.controller.signal.aborted && !isFatal(error)) return;
    if (this.fatalError === undefined) this.fatalError = error;
    this.controller.abort(error);
  }

  /**
   * Returns whether this run listed the outputs of an execution finished in Coze and found every
   * one saved, so that a stop of the whole run cut nothing short here.
   */
  private savedBeforeStop(): boolean {
    const m = this.manifest;
    const finished = m.execute_status !== null && m.execute_status !== 'Running';
    return this.outputsListed && finished && m.error === undefined && m.nodes.every((entry) => entry.status === 'saved');
  }

  private async finish(): Promise<ExecutionManifest> {
    const m = this.manifest;
    // A run that stopped before listing the outputs (rejected token, outage, signal, full disk)
    // checked none of them, so the earlier entries stay listed. A complete archive whose files
    // all check out keeps its manifest as it was.
    const carriedIntact = !this.outputsListed && (await this.carryPrevious());
    const keepEarlierManifest = carriedIntact && this.previousFields?.['complete'] === true && (await this.executionFileAsRecorded());
    const interrupted = this.context.signal.aborted;
    for (const entry of m.nodes) {
      if (entry.status === 'pending' && entry.reason === undefined) entry.reason = interrupted ? 'interrupted' : 'not_started';
    }

    // A 4101 is this execution's error, not a reason the whole run stopped.
    if (isPermissionDenied(this.fatalError)) m.error ??= describeError(this.fatalError);
    else if (this.fatalError !== undefined) m.stopped = describeFatal(this.fatalError);
    else if (interrupted && !this.savedBeforeStop()) m.stopped = describeStop(this.context.signal.reason);
    m.finished_at = new Date(this.context.now()).toISOString();

    try {
      if (keepEarlierManifest) {
        // The result reports this run's error or stop, and its `complete` matches the file.
        this.snapshot();
        m.complete = true;
        this.context.logger.info(this.ids(), 'outputs not checked again; manifest.json of the complete archive is left as it was');
      } else if (!this.folderMade) {
        // The disk refused the execution's folder, an error the run reports, so no manifest can go there.
        this.snapshot();
      } else {
        await this.writer.flush();
      }
    } catch (error) {
      // A full or read-only disk may refuse the manifest too; the first fatal error is the one to report.
      if (this.fatalError === undefined) throw error;
      this.context.logger.error({ ...this.ids(), err: (error as Error).message }, 'manifest could not be written');
    }

    const outcome = { ...this.ids(), status: m.execute_status, ...computeTotals(m.nodes) };
    if (m.stopped === undefined) {
      this.context.logger.info(outcome, 'execution finished');
    } else {
      this.context.logger.warn({ ...outcome, stopped: m.stopped }, 'execution stopped early');
    }

    if (isAuthError(this.fatalError)) {
      if (isPermissionDenied(this.fatalError)) throw new AuthError(this.permissionMessage(this.fatalError), this.fatalError);
      throw new AuthError(authReason(this.fatalError), this.fatalError, TOKEN_ADVICE);
    }
    if (this.fatalError !== undefined) throw this.fatalError;
    // The flush took the final snapshot; another would stamp a newer `updated_at` than the file.
    return m;
  }

  private permissionMessage(error: CozeRequestError): string {
    return (
      `Coze denied this token access to workflow ${this.target.workflowId} (code 4101${error.cozeMsg ? `, ${error.cozeMsg}` : ''}` +
      `${error.logid ? `, logid ${error.logid}` : ''}). The token itself is valid: give it permission for this workflow's ` +
      'workspace, or leave the workflow out of the list.'
    );
  }

  private snapshot(): ExecutionManifest {
    const m = this.manifest;
    m.totals = computeTotals(m.nodes);
    // The last version carries the finish time, so `updated_at` never comes after `finished_at`.
    m.updated_at = m.finished_at ?? new Date(this.context.now()).toISOString();
    m.complete = isComplete(m);
    return m;
  }

  private ids(): { workflowId: string; executeId: string } {
    return { workflowId: this.target.workflowId, executeId: this.target.executeId };
  }
}

/** Says what happened to the file an earlier run saved, for the reason of an entry that names it. */
function changedFileNote(file: string, missing: boolean): string {
  return `the file an earlier run saved, ${file}, ${missing ? 'is missing' : 'was changed since and is left as it is'}`;
}

function emptyManifest(context: RunContext, target: ExecutionTarget): ExecutionManifest {
  const now = new Date(context.now()).toISOString();
  return {
    manifest_version: MANIFEST_VERSION,
    tool: `coze-node-outputs ${context.toolVersion}`,
    workflow_id: target.workflowId,
    execute_id: target.executeId,
    execute_status: null,
    error_code: null,
    error_message: null,
    create_time: null,
    update_time: null,
    execution_logid: null,
    run_history_logid: null,
    is_output_trimmed: false,
    debug_url: null,
    execution_file: null,
    execution_sha256: null,
    started_at: now,
    updated_at: now,
    finished_at: null,
    complete: false,
    totals: computeTotals([]),
    nodes: [],
  };
}

/**
 * Lists the outputs to archive. The archiver keeps this plan rather than the parsed run
 * history, which is several times larger: for 20,000 nodes, about 40 MB against 5 MB (estimates).
 */
function planOutputs({ record, invalidNodeRuns }: ParsedRunHistory): OutputPlan {
  const isRunning = record.execute_status === 'Running';
  const nodeRuns = [...discoverNodeRuns(record), ...invalidNodeRuns.map(invalidNodeRunEntry)];
  // The inline outputs of a running execution are not final; the next run archives them.
  const inline = isRunning ? [] : discoverInlineOutputs(record);
  return { planned: [...nodeRuns, ...inline], isRunning, isTrimmed: record.is_output_trimmed === true };
}

/** Gives `entry`, which the manifest lists, the fields of `outcome` and no others. */
function replaceEntry(entry: ManifestEntry, outcome: ManifestEntry): void {
  for (const key of Object.keys(entry) as (keyof ManifestEntry)[]) {
    if (!(key in outcome)) delete entry[key];
  }
  Object.assign(entry, outcome);
}

/** Turns a file system error at one output's own path into that entry's failure, and passes any other error through. */
function asOutputWriteError(error: unknown, file: string): unknown {
  const isFileSystemError = error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
  if (!isFileSystemError || isFatal(error)) return error;
  return new OutputWriteError(file, error as NodeJS.ErrnoException);
}

function isFatal(error: unknown): boolean {
  return isAuthError(error) || error instanceof ArchiveWriteError || error instanceof UsageError || error instanceof CozeOutageError;
}

function describeFatal(error: unknown): string {
  if (isAuthError(error)) return `token rejected: ${error.message}${error.logid ? ` (logid ${error.logid})` : ''}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Says why the run's signal fired: `interrupted` for SIGINT or SIGTERM, or the error with
 * which a batch stopped every execution, such as a rejected token elsewhere in the list.
 */
function describeStop(reason: unknown): string {
  if (reason instanceof AuthError || reason instanceof ArchiveWriteError || reason instanceof CozeOutageError) return `${RUN_STOPPED_PREFIX}${reason.message}`;
  if (isAuthError(reason)) return `${RUN_STOPPED_PREFIX}${describeFatal(reason)}`;
  return 'interrupted';
}

/** Execution fields an earlier manifest supplies when run history cannot be read now. */
const CARRIED_FIELDS = [
  'execute_status',
  'error_code',
  'error_message',
  'create_time',
  'update_time',
  'execution_logid',
  'run_history_logid',
  'debug_url',
  'execution_file',
  'execution_sha256',
] as const;

function authReason(error: CozeRequestError): string {
  return (
    `Coze rejected the token (code ${error.code ?? error.httpStatus}${error.cozeMsg ? `, ${error.cozeMsg}` : ''}` +
    `${error.logid ? `, logid ${error.logid}` : ''}).`
  );
}

async function mkdirIfMissing(folder: string): Promise<void> {
  try {
    await mkdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * Accepts only `nodes/<name>` or `inline/<name>` with a name this tool could have made, so an
 * edited manifest can neither point outside the folder nor make an output overwrite
 * execution.json or manifest.json.
 */
function isOutputFilePath(file: string): boolean {
  const match = /^(nodes|inline)\/([^/\\]+)$/.exec(file);
  return match !== null && sanitizeComponent(match[2]!, '') === match[2];
}
