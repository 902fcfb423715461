import { archiveExecution, type ExecutionTarget } from './archive/archive-execution.js';
import { createRun, DEFAULTS, type RunOptions } from './archive/create-run.js';
import type { ExecutionManifest } from './archive/manifest.js';
import { checkOutFolder, makeOutFolder } from './archive/out-folder.js';

export interface ArchiveExecutionOptions extends RunOptions, ExecutionTarget {}

/**
 * Archives every output of one Coze workflow execution and returns its manifest.
 * Entry failures are in the manifest; it throws `AuthError`, `UsageError`,
 * `ArchiveWriteError` or `CozeOutageError` for what stops a run. It never calls `process.exit`.
 */
export async function archiveExecutionOutputs(options: ArchiveExecutionOptions): Promise<ExecutionManifest> {
  const run = createRun(options);
  try {
    await checkOutFolder(options.outDir ?? DEFAULTS.outDir, 'outDir');
    await makeOutFolder(run.context.outDir, 'outDir');
    return await archiveExecution(run.context, { workflowId: options.workflowId, executeId: options.executeId });
  } finally {
    await run.close();
  }
}

export { createRun, DEFAULTS, type Run, type RunOptions } from './archive/create-run.js';
export { archiveExecution, type ExecutionTarget } from './archive/archive-execution.js';
export { exitCodeFor, EXIT_CODES } from './exit-codes.js';
export { ArchiveWriteError, AuthError, CozeOutageError, CozeRequestError, UsageError } from './coze/errors.js';
export type { CozeErrorKind } from './coze/errors.js';
export type {
  EntryError,
  EntrySource,
  EntryStatus,
  ExecutionManifest,
  ManifestEntry,
  ManifestTotals,
} from './archive/manifest.js';
export { DEFAULT_FLAG_BYTES, type IncompleteReason } from './archive/incomplete-flags.js';
export { BASE_URLS, resolveBaseUrl } from './coze/base-url.js';
export { classifyFailure } from './http/retry-policy.js';
export { createLogger } from './logger.js';
export { HEAP_GROWING_PERCENT, limitHeapGrowth } from './heap-growth.js';
export { archiveExecutions } from './batch/archive-executions.js';
export { DEFAULT_EXPIRY_WARNING_MS, DEFAULT_RETRY_SETTINGS } from './config/defaults.js';
export {
  batchExitCode,
  runBatch,
  type BatchOptions,
  type BatchRequestStats,
  type BatchResult,
  type ExecutionOutcome,
} from './batch/batch-runner.js';
export { DEFAULT_POLL_SETTINGS, type PollSettings } from './batch/wait-for-finish.js';
export {
  parseExecutionList,
  type BadLine,
  type ExecutionList,
  type ExecutionListFormat,
} from './batch/input-list.js';
export { ProgressTracker, type ProgressSnapshot } from './batch/progress-tracker.js';
export type { ProgressEvent } from './archive/run-context.js';
export { verifyArchive, type VerifyFinding, type VerifyReport } from './archive/verify-archive.js';
export { exportArchive, exportArchiveToFile, type ExportResult, type ExportSkip } from './archive/export-archive.js';
