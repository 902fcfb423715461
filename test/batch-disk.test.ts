import { readFile, rm } from 'node:fs/promises';

import { afterEach, describe, expect, it } from 'vitest';

import type { ExecutionManifest } from '../src/index.js';
import type { FakeCozeServer, Scenario } from '../src/fake-server/index.js';
import { BATCH_TOKEN, BATCH_WORKFLOW, batchScenario, Cleanups, savedExecution } from './helpers/batch-fixtures.js';
import { CLI_PATH, runInMountNamespace } from './helpers/run-cli.js';

// A full disk stops the whole batch: the CLI runs with its archive on a small tmpfs inside a
// private mount namespace, so the disk is really full and vanishes with it.

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const EXECUTIONS = ['7431826405913474001', '7431826405913474002', '7431826405913474003'];

/** The fields of `fetch --json` that these tests read. */
interface BatchJson {
  exit_code: number;
  stopped: string | null;
}

/** Three executions of ten 90 KB outputs each, the first the oldest. */
function largeScenario(): Scenario {
  return batchScenario(
    EXECUTIONS.map((executeId, index) => ({
      workflowId: BATCH_WORKFLOW,
      executeId,
      startedSecondsAgo: 3 * 3600 - index * 3600,
      nodes: Array.from({ length: 10 }, (_, node) => ({
        key: `输出${node}`,
        nodeId: String(400 + node),
        nodeExecuteUuid: `${executeId}-${node}`,
        generate: { bytes: 90_000, seed: `${executeId}-${node}` },
      })),
    })),
  );
}

/** Runs `fetch --from` over `EXECUTIONS` with its archive on a tmpfs of `size`, one execution at a time. */
async function fetchOnSmallDisk(server: FakeCozeServer, size: string): Promise<{ exitCode: number; summary: BatchJson; stderr: string }> {
  const out = await cleanups.folder('coze-batch-disk-');
  const list = `${out}.list`;
  const summaryFile = `${out}.json`;
  const stderrFile = `${out}.stderr`;
  cleanups.add(async () => {
    await Promise.all([list, summaryFile, stderrFile].map((file) => rm(file, { force: true })));
  });

  const cli = [process.execPath, CLI_PATH, 'fetch', '--from', list, '--base-url', server.url, '--out', out, '--qps', '200', '--retry-min-delay', '10ms', '--concurrency', '1', '--json']
    .map((part) => `'${part}'`)
    .join(' ');
  const script = [
    `printf '%s\\n' ${EXECUTIONS.map((id) => `'${BATCH_WORKFLOW} ${id}'`).join(' ')} > '${list}'`,
    `mount -t tmpfs -o size=${size} tmpfs '${out}' || exit 97`,
    `${cli} > '${summaryFile}' 2> '${stderrFile}'; echo "EXIT=$?"`,
  ].join('\n');
  const output = await runInMountNamespace(script, { PATH: process.env.PATH, COZE_API_TOKEN: BATCH_TOKEN });

  return {
    exitCode: Number(/EXIT=(\d+)/.exec(output)?.[1]),
    summary: JSON.parse(await readFile(summaryFile, 'utf8')) as BatchJson,
    stderr: await readFile(stderrFile, 'utf8'),
  };
}

/**
 * Archives the first execution alone from `server` on a tmpfs of `size`, then `EXECUTIONS` from
 * `secondServer` on the same disk, and returns both exit codes and the first execution's
 * manifest after the second run.
 */
async function rerunOnSmallDisk(
  server: FakeCozeServer,
  secondServer: FakeCozeServer,
  size: string,
): Promise<{ firstExit: number; secondExit: number; manifest: ExecutionManifest }> {
  const out = await cleanups.folder('coze-batch-disk-');
  const lists = [`${out}.first`, `${out}.second`];
  const manifestCopy = `${out}.manifest`;
  cleanups.add(async () => {
    await Promise.all([...lists, manifestCopy].map((file) => rm(file, { force: true })));
  });

  const cli = (url: string): string =>
    [process.execPath, CLI_PATH, 'fetch', '--base-url', url, '--out', out, '--qps', '200', '--retry-min-delay', '10ms', '--quiet', '--from']
      .map((part) => `'${part}'`)
      .join(' ');
  const script = [
    `printf '%s\\n' '${BATCH_WORKFLOW} ${EXECUTIONS[0]}' > '${lists[0]}'`,
    `printf '%s\\n' ${EXECUTIONS.map((id) => `'${BATCH_WORKFLOW} ${id}'`).join(' ')} > '${lists[1]}'`,
    `mount -t tmpfs -o size=${size} tmpfs '${out}' || exit 97`,
    `${cli(server.url)} '${lists[0]}'; echo "FIRST=$?"`,
    `${cli(secondServer.url)} '${lists[1]}'; echo "SECOND=$?"`,
    `cp '${out}/${BATCH_WORKFLOW}/${EXECUTIONS[0]}/manifest.json' '${manifestCopy}'`,
  ].join('\n');
  const output = await runInMountNamespace(script, { PATH: process.env.PATH, COZE_API_TOKEN: BATCH_TOKEN });

  return {
    firstExit: Number(/FIRST=(\d+)/.exec(output)?.[1]),
    secondExit: Number(/SECOND=(\d+)/.exec(output)?.[1]),
    manifest: JSON.parse(await readFile(manifestCopy, 'utf8')) as ExecutionManifest,
  };
}

describe('full disk', () => {
  it('stops the batch with exit 1', async () => {
    const server = await cleanups.server(largeScenario());
    const run = await fetchOnSmallDisk(server, '256k');

    expect(run.exitCode).toBe(1);
    expect(run.summary.exit_code).toBe(1);
    expect(run.summary.stopped).toContain('ENOSPC');
    expect(run.stderr).toContain('ENOSPC');
    // Every run history was read, then the oldest execution filled the disk and nothing else was fetched.
    expect(server.countRequests({ route: 'run_history' })).toBe(3);
    expect(server.countRequests({ route: 'execute_node', executeId: EXECUTIONS[0] })).toBeGreaterThan(0);
    expect(server.countRequests({ route: 'execute_node', executeId: EXECUTIONS[0] })).toBeLessThan(10);
    expect(server.countRequests({ route: 'execute_node', executeId: EXECUTIONS[2] })).toBe(0);
  });

  it('stops at the first execution.json', async () => {
    // Run histories of about 60 KB each, on a disk of 16 KiB.
    const server = await cleanups.server(
      batchScenario(EXECUTIONS.map((executeId) => ({ ...savedExecution(executeId), record: { output: { Output: '字'.repeat(20_000) } } }))),
    );
    const run = await fetchOnSmallDisk(server, '16k');

    expect(run.exitCode).toBe(1);
    expect(run.summary.stopped).toContain('ENOSPC');
    expect(run.stderr).toContain('execution.json');
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });

  it('keeps a complete manifest on re-run', async () => {
    // The run history of about 60 KB is saved twice, as execution.json and as the inline output.
    // The disk takes both and the outputs, but not a second execution.json beside the first.
    const executions = EXECUTIONS.map((executeId) => ({ ...savedExecution(executeId), record: { output: { Output: '字'.repeat(20_000) } } }));
    const server = await cleanups.server(batchScenario(executions));
    // The second server's run history reports that the first execution ended a second later,
    // so the re-run saves execution.json again.
    const changed = await cleanups.server(batchScenario([{ ...executions[0]!, durationSeconds: 13 }, ...executions.slice(1)]));
    const run = await rerunOnSmallDisk(server, changed, '152k');

    expect(run.firstExit).toBe(0);
    expect(run.secondExit).toBe(1);
    // The batch stopped before it listed this execution's outputs, so only the earlier entries can list its files.
    expect(run.manifest.complete).toBe(true);
    expect(run.manifest.stopped).toBeUndefined();
    expect(run.manifest.nodes.map((node) => node.status)).toEqual(['saved', 'saved', 'saved']);
    expect(run.manifest.totals.saved).toBe(run.manifest.totals.entries);
    expect(server.countRequests({ route: 'run_history', executeId: EXECUTIONS[0] })).toBe(1);
    expect(changed.countRequests({ route: 'run_history', executeId: EXECUTIONS[0] })).toBe(1);
  });
});
