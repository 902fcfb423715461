import { runBatch, type BatchOptions, type BatchResult } from './batch-runner.js';

/**
 * Archives many executions with one shared client and request limiter, oldest first, and
 * returns one outcome per execution with its manifest and the batch's exit code. Failures
 * of single executions are in their manifests. Like `archiveExecutionOutputs`, it throws
 * `AuthError` or `ArchiveWriteError` when the run must stop, after writing the manifests of
 * the executions it started. `runBatch` returns that error in `fatalError` instead.
 */
export async function archiveExecutions(options: BatchOptions): Promise<BatchResult> {
  const result = await runBatch(options);
  if (result.fatalError !== undefined) throw result.fatalError;
  return result;
}
