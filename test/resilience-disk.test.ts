import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { runBatch, UsageError } from '../src/index.js';
import type { FakeCozeServer, Scenario } from '../src/fake-server/index.js';
import { Cleanups } from './helpers/cleanups.js';
import { CLI_PATH, PROJECT_ROOT, runCli, runInMountNamespace } from './helpers/run-cli.js';
import { EXECUTE_ID, executionScenario, nodeText, TOKEN, WORKFLOW_ID } from './helpers/scenarios.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const start = (scenario: Scenario): Promise<FakeCozeServer> => cleanups.server(scenario);

interface DiskRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  listing: string;
  manifest: string;
}

interface RunOptions {
  /** More CLI arguments. */
  extraArgs?: string[];
  /** A folder below the tmpfs to pass as --out, which the CLI must make. */
  outBelow?: string;
}

/**
 * Runs the CLI with its output folder on a small tmpfs inside a private mount namespace
 * (`unshare --mount`), so a full or read-only disk is real and vanishes with the process.
 * The script prints the exit code, the folder listing and the manifest before the
 * namespace ends.
 */
async function runOnSmallDisk(server: FakeCozeServer, mountOptions: string, asNobody = false, options: RunOptions = {}): Promise<DiskRun> {
  const outDir = await cleanups.folder();
  const folder = `${outDir}/${WORKFLOW_ID}/${EXECUTE_ID}`;
  // Root ignores file modes, so a permission test runs the CLI as the unprivileged user
  // `nobody` (uid 65534). The checkout may sit in a folder only root can enter, so the CLI's
  // files are bind-mounted at a world-readable path, private to the namespace like the tmpfs.
  const view = `${outDir}-view`;
  const runAs = asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
  const cliPath = asNobody ? path.join(view, path.relative(PROJECT_ROOT, CLI_PATH)) : CLI_PATH;
  const cli = [...runAs, process.execPath, cliPath, 'fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID,
    '--base-url', server.url, '--out', path.join(outDir, options.outBelow ?? ''), '--retry-min-delay', '10ms', '--concurrency', '1',
    ...(options.extraArgs ?? [])]
    .map((part) => `'${part}'`).join(' ');
  const script = [
    asNobody ? viewScript(view) : ':',
    `mount -t tmpfs -o ${mountOptions} tmpfs '${outDir}' || exit 97`,
    `${cli} >"${outDir}.stdout" 2>"${outDir}.stderr"; echo "EXIT=$?"`,
    `echo "---listing"; ls "${folder}/nodes" 2>/dev/null`,
    `echo "---manifest"; cat "${folder}/manifest.json" 2>/dev/null`,
  ].join('\n');

  let out: string;
  try {
    out = await runInMountNamespace(script, { PATH: process.env.PATH, COZE_API_TOKEN: TOKEN });
  } finally {
    if (asNobody) await rm(view, { recursive: true, force: true });
  }

  const [stdout, stderr] = await Promise.all([readFile(`${outDir}.stdout`, 'utf8'), readFile(`${outDir}.stderr`, 'utf8')]);
  await Promise.all([rm(`${outDir}.stdout`, { force: true }), rm(`${outDir}.stderr`, { force: true })]);
  return {
    exitCode: Number(/EXIT=(\d+)/.exec(out)?.[1]),
    stdout,
    stderr,
    listing: out.split('---listing\n')[1]?.split('---manifest')[0] ?? '',
    manifest: out.split('---manifest\n')[1] ?? '',
  };
}

/**
 * Builds shell lines that mount the CLI's files at `view` for the unprivileged user: a small
 * tmpfs anyone may enter, with package.json, dist and node_modules bind-mounted from the checkout.
 */
function viewScript(view: string): string {
  const parts = ['package.json', 'dist', 'node_modules'];
  return [
    `mkdir -p '${view}' && mount -t tmpfs -o size=64k,mode=0755 tmpfs '${view}' || exit 97`,
    `touch '${view}/package.json' && mkdir '${view}/dist' '${view}/node_modules' || exit 97`,
    ...parts.map((part) => `mount --bind '${path.join(PROJECT_ROOT, part)}' '${view}/${part}' || exit 97`),
  ].join('\n');
}

describe('disk errors', () => {
  it('stops at once on a full disk', async () => {
    // Ten nodes of about 90 KB each on a 256 KiB disk: the third or so cannot be written.
    const server = await start(executionScenario(10, {}, (index) => ({ text: nodeText(index, 30_000) })));
    const run = await runOnSmallDisk(server, 'size=256k');
    const nodeRequests = server.countRequests({ route: 'execute_node' });

    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('ENOSPC');
    expect(run.stderr).toContain('Free space on that disk, then run the same command again');
    expect(run.stderr).toContain(`${WORKFLOW_ID}/${EXECUTE_ID}/nodes/`);
    expect(nodeRequests).toBeLessThan(10);
    // Nothing is retried: each node was asked for at most once.
    expect(new Set(server.requests.map((request) => request.nodeExecuteUuid)).size).toBe(server.requests.length);
    expect(run.listing).not.toContain('.tmp-');
  });

  it('names the path without write permission', async () => {
    const server = await start(executionScenario(2));
    const run = await runOnSmallDisk(server, 'size=64k,mode=0555', true);

    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('EACCES');
    expect(run.stderr).toContain('Give this user write permission there');
    expect(run.stderr).toContain(WORKFLOW_ID);
    // The execution's folder was never made, so no manifest is attempted there.
    expect(run.stderr).not.toContain('manifest could not be written');
    expect(server.requests).toHaveLength(0);
  });

  it('names the path on a read-only disk', async () => {
    const server = await start(executionScenario(2));
    const run = await runOnSmallDisk(server, 'size=64k,ro');

    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('EROFS');
    expect(run.stderr).toContain('Mount that disk read-write or choose a folder on another one');
    expect(run.stderr).toContain(WORKFLOW_ID);
    expect(run.stderr).not.toContain('manifest could not be written');
    expect(server.requests).toHaveLength(0);
  });

  it('prints one JSON document on a read-only disk', async () => {
    const server = await start(executionScenario(2));
    // The execution's folder cannot be made, so the run ends with its summary.
    const inFolder = await runOnSmallDisk(server, 'size=64k,ro', false, { extraArgs: ['--json'] });
    // --out itself cannot be made, so the run stops before its summary.
    const newFolder = await runOnSmallDisk(server, 'size=64k,ro', false, { extraArgs: ['--json'], outBelow: 'new' });

    expect(inFolder.exitCode).toBe(1);
    const summary = JSON.parse(inFolder.stdout) as { exit_code: number; executions: unknown[] };
    expect(summary.exit_code).toBe(1);
    expect(summary.executions).toHaveLength(1);
    expect(newFolder.exitCode).toBe(1);
    expect(JSON.parse(newFolder.stdout)).toEqual({ exit_code: 1, error: expect.stringMatching(/^Cannot write .*\/new: EROFS /) });
    expect(newFolder.stderr).toContain('EROFS');
    expect(server.requests).toHaveLength(0);
  });

  it('dry run exits 1 on read-only disk', async () => {
    const server = await start(executionScenario(2));
    const dryRun = await runOnSmallDisk(server, 'size=64k,ro', false, { extraArgs: ['--dry-run'], outBelow: 'new' });
    const run = await runOnSmallDisk(server, 'size=64k,ro', false, { outBelow: 'new' });

    expect(dryRun.exitCode).toBe(1);
    expect(dryRun.stderr).toContain('EROFS');
    expect(dryRun.stderr).toContain('Mount that disk read-write or choose a folder on another one, then run the dry run again.');
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('EROFS');
    expect(server.requests).toHaveLength(0);
  });

  it('stops on a folder /proc refuses', async () => {
    // /proc exists, yet making a folder in it fails with ENOENT. Node 20.20's recursive mkdir never returned then.
    const server = await start(executionScenario(2));
    const outDir = `/proc/coze-node-outputs-${process.pid}/archive`;
    const result = await runCli(['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--base-url', server.url, '--out', outDir], {
      env: { COZE_API_TOKEN: TOKEN },
      timeoutMs: 10_000,
    });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`Invalid --out ${outDir}: creating /proc/coze-node-outputs-${process.pid} failed with ENOENT.`);
    expect(server.requests).toHaveLength(0);
  });

  it('rejects a /proc folder in the library', async () => {
    const server = await start(executionScenario(2));
    const outDir = `/proc/coze-node-outputs-${process.pid}/library`;
    const run = runBatch({ token: TOKEN, baseUrl: server.url, outDir, executions: [{ workflowId: WORKFLOW_ID, executeId: EXECUTE_ID }] });

    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(`Invalid outDir ${outDir}: creating /proc/coze-node-outputs-${process.pid} failed with ENOENT.`);
    expect(server.requests).toHaveLength(0);
  });
});
