import { createHash } from 'node:crypto';

import { listNodeOutputs, type Scenario } from '../../src/fake-server/index.js';
import { runCli, type CliResult, type CliOptions } from './run-cli.js';

// Shared pieces of the batch, verify and export tests: a scenario with one execution of each
// kind a batch meets, and a CLI runner that cannot leave loopback.

export const BATCH_TOKEN = 'pat_batch_test_token_81c4';
export const BATCH_WORKFLOW = '7350000000000000301';

type ScenarioExecution = NonNullable<Scenario['executions']>[number];

/** Execute ids of 19 digits, beyond 2^53 like Coze's. */
export const IDS = {
  saved: '7431826405913473001',
  running: '7431826405913473002',
  expired: '7431826405913473003',
  nearExpiry: '7431826405913473004',
  missing: '7431826405913473099',
};

/** Builds an execution that ran an hour ago, with two output nodes and an end-node output. */
export function savedExecution(executeId = IDS.saved): ScenarioExecution {
  return {
    workflowId: BATCH_WORKFLOW,
    executeId,
    startedSecondsAgo: 3600,
    record: { output: { Output: '{"answer":"完成"}' } },
    nodes: [
      { key: '摘要', nodeId: '310', nodeExecuteUuid: `${executeId}-a`, text: '今天的归档已经完成，共处理三份报告。' },
      { key: '全文', nodeId: '311', nodeExecuteUuid: `${executeId}-b`, generate: { chars: 3000, seed: executeId } },
    ],
  };
}

/**
 * Builds an execution started ten minutes ago (the fake server's default), running at its first
 * run-history read and finished from the second on.
 * Its first node has finished already, so the first pass saves it and the second reuses it.
 */
export function runningExecution(executeId = IDS.running): ScenarioExecution {
  return {
    workflowId: BATCH_WORKFLOW,
    executeId,
    timeline: { finishAfterPolls: 1 },
    nodes: [
      { key: '第一步', nodeId: '320', nodeExecuteUuid: `${executeId}-a`, text: '第一步已完成。', whileRunning: 'finished' },
      { key: '第二步', nodeId: '321', nodeExecuteUuid: `${executeId}-b`, text: '第二步在等待之后完成。' },
    ],
  };
}

/** Builds an execution older than Coze's 24-hour retention, whose node returns the `answer` kind of expiry. */
export function expiredExecution(
  executeId = IDS.expired,
  answer: 'code4200' | 'code4314' | 'emptyOutput' = 'code4200',
): ScenarioExecution {
  return {
    workflowId: BATCH_WORKFLOW,
    executeId,
    startedSecondsAgo: 25 * 3600,
    expiry: { answer },
    nodes: [{ key: '旧输出', nodeId: '330', nodeExecuteUuid: `${executeId}-a`, text: '已经过期的内容' }],
  };
}

/** Builds an execution 21 hours old: still fetchable, but past the default 20-hour warning. */
export function nearExpiryExecution(executeId = IDS.nearExpiry): ScenarioExecution {
  return {
    workflowId: BATCH_WORKFLOW,
    executeId,
    startedSecondsAgo: 21 * 3600,
    nodes: [{ key: '快过期', nodeId: '340', nodeExecuteUuid: `${executeId}-a`, text: '还来得及保存。' }],
  };
}

export function batchScenario(executions: ScenarioExecution[]): Scenario {
  return { token: BATCH_TOKEN, executions };
}

/** Computes the UTF-8 byte length and sha256 of every node output the fake server stores for an execution. */
export function expectedOutputs(scenario: Scenario, executeId: string): Map<string, { bytes: number; sha256: string }> {
  const outputs = new Map<string, { bytes: number; sha256: string }>();
  for (const node of listNodeOutputs(scenario, executeId)) {
    const bytes = Buffer.from(node.text(), 'utf8');
    outputs.set(node.nodeExecuteUuid, { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  return outputs;
}

export { Cleanups } from './cleanups.js';

/**
 * Preloaded into every CLI child: any TCP connection to a host other than loopback throws
 * before DNS, so a test can never reach a real service.
 */
const LOOPBACK_GUARD = `
import net from 'node:net';
const connect = net.Socket.prototype.connect;
const loopback = new Set(['127.0.0.1', 'localhost', '::1']);
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === 'object' && first.path !== undefined) return connect.apply(this, args);
  let host = 'localhost';
  if (first !== null && typeof first === 'object') host = first.host ?? 'localhost';
  else if (typeof args[1] === 'string') host = args[1];
  if (!loopback.has(host)) throw new Error('test guard: connection to ' + host + ' blocked');
  return connect.apply(this, args);
};`;

/** Runs the built CLI with the token and the loopback guard, and no other environment. */
export function runBatchCli(args: readonly string[], options: CliOptions & { token?: string } = {}): Promise<CliResult> {
  const env = {
    COZE_API_TOKEN: options.token ?? BATCH_TOKEN,
    NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(LOOPBACK_GUARD)}`,
    ...options.env,
  };
  return runCli(args, { ...options, env });
}

/** Flags every fetch test passes: a fast retry and a rate that never slows a test down. */
export function fastFlags(url: string, out: string): string[] {
  return ['--base-url', url, '--out', out, '--qps', '200', '--retry-min-delay', '10ms'];
}
