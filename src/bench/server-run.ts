import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

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
  /** CPU time of the bench process, which runs the fake server, while the child ran. */
  serverCpuMs: number;
}

/** Settings of one run besides its workload and subject. */
export interface RunOptions {
  /** Flags for the child's `node`, such as a cap on the young generation. */
  nodeFlags?: readonly string[];
  /** Removes the run's archive once the run ends, instead of keeping it until the bench ends. */
  removeArchive?: boolean;
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
 *
 * `removeArchive` removes it as soon as the run ends instead, for runs of a few large files.
 * Each such archive kept grows the page cache by 160 MiB, into memory the guest has not used
 * lately. On the test machine's VM, writing 160 MiB there took about 400 ms of kernel CPU,
 * against 30 ms into memory freed a moment before. Removed, it leaves the next run its pages.
 *
 * Each run starts with the disk's dirty pages written out. The baseline script does not
 * fsync, so the 160 MiB of a bytes-bound run stay in the page cache. The kernel writes them
 * out about 30 s later, during whichever run comes then, whose own fsync calls wait behind
 * them. Flushing first charges each program for its own writes only.
 */
export async function runOnFakeServer(
  shape: WorkloadShape,
  subject: SubjectName,
  archiveRoot: string,
  options: RunOptions = {},
): Promise<RunSample> {
  await flushDirtyPages();
  const server = await startFakeCozeServer({ scenario: buildScenario(shape) });
  const outDir = await mkdtemp(path.join(archiveRoot, `${subject}-`));

  try {
    const cpuBefore = process.cpuUsage();
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
      options.nodeFlags ?? [],
    );
    const serverCpu = process.cpuUsage(cpuBefore);
    return {
      ...result,
      serverRequests: server.requests.length,
      serverOverLimit: server.overLimitCount(),
      maxInSecond: server.maxRequestsInWindow(1_000),
      serverCpuMs: (serverCpu.user + serverCpu.system) / 1000,
    };
  } finally {
    await server.close();
    if (options.removeArchive === true) await rm(outDir, { recursive: true, force: true });
  }
}

/** Runs `sync`. Where there is no such command, the run starts without the flush. */
async function flushDirtyPages(): Promise<void> {
  await promisify(execFile)('sync').catch(() => undefined);
}

/** Returns a timeout that allows several times over for the slowest subject, which fetches one node at a time. */
function childTimeoutMs(shape: WorkloadShape): number {
  const sequentialMs = (shape.nodes + 1) * (shape.latencyMs + 5);
  return CHILD_TIMEOUT_FLOOR_MS + 4 * sequentialMs;
}
