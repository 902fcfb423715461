import { performance } from 'node:perf_hooks';

import { ExecutionArchiver } from '../archive/archive-execution.js';
import { createBenchRun } from './archiver-subject.js';
import type { ChildJob, SubjectOutcome } from './child-protocol.js';

/**
 * Runs the archiver's first step only: reads the run history, saves execution.json and lists
 * the node runs, then stops without fetching any of them. Its peak RSS is what the input
 * itself costs, since a run history lists every node run and is read whole.
 */
export async function runRunHistorySubject(job: ChildJob): Promise<SubjectOutcome> {
  const run = createBenchRun(job);

  try {
    const started = performance.now();
    const archiver = new ExecutionArchiver(run.context, { workflowId: job.workflowId, executeId: job.executeId });
    const record = await archiver.prepare();
    if (record === undefined) throw new Error(`Failed to read the run history of execution ${job.executeId} from the fake server at ${job.baseUrl}.`);
    await archiver.executionFileSettled;
    const wallMs = performance.now() - started;

    return { wallMs, nodes: archiver.plannedNodeRuns, saved: 0, savedBytes: 0, overLimitAnswers: run.context.limiter.stats().overLimitAnswers };
  } finally {
    await run.close();
  }
}
