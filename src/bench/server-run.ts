import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';

import { startFakeCozeServer } from '../fake-server/index.js';
import { BENCH_EXECUTE_ID, BENCH_TOKEN, BENCH_WORKFLOW_ID, buildScenario, type WorkloadShape } from './bench-scenarios.js';
import type { ChildResult, SubjectName } from './child-protocol.js';
import { runChild } from './child-runner.js';

/** One run of one subject, with what the fake server saw of it. */
export interface RunSample extends ChildResult {
  serverRequests: number;
  /** Requests the server's own rate limiter rejected. */
  serverOverLimit: number;
  /** Requests that arrived in the busiest 1,000 ms window. */
  maxInSecond: number;
}

/** Slack on top of a run's expected time before its child is killed. */
const CHILD_TIMEOUT_FLOOR_MS = 60_000;

/**
 * Starts a fresh fake server for `shape` in this process and runs `subject` against it in a
 * child process, writing to a new folder in `archiveRoot`. A fresh server per run keeps each
 * request log, and so each over-limit count, to that run alone.
 *
 * The archive stays until the bench removes `archiveRoot` at its end, because deleting it
 * slowed the next run. On this machine's ext4 without a journal, creating a file skips
 * inodes deleted in the last few minutes. After 22,000 deletions, the latency-bound run
 * spent about 3 s of kernel CPU creating its 2,000 files, against 0.9 s without them.
 */
export async function runOnFakeServer(
  shape: WorkloadShape,
  subject: SubjectName,
  archiveRoot: string,
  nodeFlags: readonly string[] = [],
): Promise<RunSample> {
  const server = await startFakeCozeServer({ scenario: buildScenario(shape) });
  const outDir = await mkdtemp(path.join(archiveRoot, `${subject}-`));

  try {
    const result = await runChild(
      {
        subject,
        baseUrl: server.url,
        token: BENCH_TOKEN,
        workflowId: BENCH_WORKFLOW_ID,
        executeId: BENCH_EXECUTE_ID,
        outDir,
        qps: shape.qps,
        concurrency: shape.concurrency,
      },
      childTimeoutMs(shape),
      nodeFlags,
    );
    return {
      ...result,
      serverRequests: server.requests.length,
      serverOverLimit: server.overLimitCount(),
      maxInSecond: server.maxRequestsInWindow(1_000),
    };
  } finally {
    await server.close();
  }
}

/** Returns a timeout that allows several times over for the slowest subject, which fetches one node at a time. */
function childTimeoutMs(shape: WorkloadShape): number {
  const sequentialMs = (shape.nodes + 1) * (shape.latencyMs + 5);
  return CHILD_TIMEOUT_FLOOR_MS + 4 * sequentialMs;
}
