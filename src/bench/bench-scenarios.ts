import type { Scenario } from '../fake-server/index.js';

/** Shape of one generated execution on the fake server. */
export interface WorkloadShape {
  nodes: number;
  /** UTF-8 bytes of every node's Chinese text. */
  bytesPerNode: number;
  /** Server delay before headers, in ms, on both endpoints. */
  latencyMs: number;
  /** Requests in flight allowed to the archiver and the undici baseline. */
  concurrency: number;
  /** Requests per second the archiver may send, which is also the server's own limit when `serverLimited`. */
  qps: number;
  /** Whether the fake server rejects requests above `qps` with HTTP 429. */
  serverLimited: boolean;
}

/** Every workload of one bench run, at full or quick size. */
export interface BenchSizes {
  rateBound: WorkloadShape;
  latencyBound: WorkloadShape;
  bytesBound: WorkloadShape;
  /** Two node counts of the same small-node workload, to show that memory does not grow with it. */
  memorySmall: WorkloadShape;
  memoryNodeCounts: readonly [number, number];
  startupRuns: number;
}

/** A rate so high that the archiver's limiter never binds. The server has no limit then. */
export const UNLIMITED_QPS = 100_000;

// Coze's team plan allows 200 requests per second on these endpoints.
const TEAM_PLAN_QPS = 200;
const MIB = 1024 * 1024;
const SMALL_NODE_BYTES = 600;

const FULL_SIZES: BenchSizes = {
  rateBound: { nodes: 2_000, bytesPerNode: SMALL_NODE_BYTES, latencyMs: 20, concurrency: 16, qps: TEAM_PLAN_QPS, serverLimited: true },
  latencyBound: { nodes: 2_000, bytesPerNode: SMALL_NODE_BYTES, latencyMs: 50, concurrency: 16, qps: UNLIMITED_QPS, serverLimited: false },
  bytesBound: { nodes: 40, bytesPerNode: 4 * MIB, latencyMs: 20, concurrency: 8, qps: UNLIMITED_QPS, serverLimited: false },
  memorySmall: { nodes: 2_000, bytesPerNode: SMALL_NODE_BYTES, latencyMs: 2, concurrency: 16, qps: UNLIMITED_QPS, serverLimited: false },
  memoryNodeCounts: [2_000, 20_000],
  startupRuns: 10,
};

// A few dozen nodes: enough to run every code path, far too few for the targets to mean anything.
const QUICK_SIZES: BenchSizes = {
  rateBound: { ...FULL_SIZES.rateBound, nodes: 30 },
  latencyBound: { ...FULL_SIZES.latencyBound, nodes: 30 },
  bytesBound: { ...FULL_SIZES.bytesBound, nodes: 4, bytesPerNode: 256 * 1024 },
  memorySmall: { ...FULL_SIZES.memorySmall, nodes: 100 },
  memoryNodeCounts: [100, 1_000],
  startupRuns: 3,
};

export function benchSizes(quick: boolean): BenchSizes {
  return quick ? QUICK_SIZES : FULL_SIZES;
}

export const BENCH_TOKEN = 'pat_bench_token';
export const BENCH_WORKFLOW_ID = '7350000000000000091';
export const BENCH_EXECUTE_ID = '7431826405913470091';

/** Builds a one-execution scenario whose nodes are generated on each request, so the server stays small. */
export function buildScenario(shape: WorkloadShape): Scenario {
  return {
    description: `bench: ${shape.nodes} nodes of ${shape.bytesPerNode} bytes`,
    token: BENCH_TOKEN,
    latencyMs: shape.latencyMs,
    rateLimit: shape.serverLimited ? { qps: shape.qps, answer: 'http429' } : null,
    executions: [
      {
        workflowId: BENCH_WORKFLOW_ID,
        executeId: BENCH_EXECUTE_ID,
        record: { execute_status: 'Success', run_mode: 2 },
        generatedNodes: { count: shape.nodes, bytes: shape.bytesPerNode, text: 'chinese', titlePrefix: '章节', repeatsPerTitle: 4 },
      },
    ],
  };
}
