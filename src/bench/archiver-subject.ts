import { performance } from 'node:perf_hooks';

import { archiveExecution } from '../archive/archive-execution.js';
import { createRun, type Run } from '../archive/create-run.js';
import { limitHeapGrowth } from '../heap-growth.js';
import type { ChildJob, SubjectOutcome } from './child-protocol.js';

/**
 * Opens a run with the job's settings, as `coze-node-outputs fetch --force` would, in a child
 * process whose heap growth is capped as the CLI caps its own.
 */
export function createBenchRun(job: ChildJob): Run {
  limitHeapGrowth();
  return createRun({
    token: job.token,
    baseUrl: job.baseUrl,
    outDir: job.outDir,
    qps: job.qps,
    concurrency: job.concurrency,
    force: true,
  });
}

/** Archives the bench execution with this project's library, as the CLI would, and counts the result. */
export async function runArchiverSubject(job: ChildJob): Promise<SubjectOutcome> {
  const run = createBenchRun(job);

  try {
    const started = performance.now();
    const manifest = await archiveExecution(run.context, { workflowId: job.workflowId, executeId: job.executeId });
    const wallMs = performance.now() - started;

    const nodeEntries = manifest.nodes.filter((entry) => entry.source === 'execute_nodes');
    const saved = nodeEntries.filter((entry) => entry.status === 'saved');
    return {
      wallMs,
      nodes: nodeEntries.length,
      saved: saved.length,
      savedBytes: saved.reduce((sum, entry) => sum + (entry.bytes ?? 0), 0),
      overLimitAnswers: run.context.limiter.stats().overLimitAnswers,
    };
  } finally {
    await run.close();
  }
}
