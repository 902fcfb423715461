import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { archiveExecutionOutputs, CozeOutageError, runBatch, verifyArchive, type ArchiveExecutionOptions, type ExecutionManifest } from '../src/index.js';
import type { FakeCozeServer, Scenario } from '../src/fake-server/index.js';
import { Cleanups } from './helpers/cleanups.js';
import { readJson, runCli } from './helpers/run-cli.js';
import { EXECUTE_ID, executionScenario, TOKEN, WORKFLOW_ID } from './helpers/scenarios.js';

// An outage of Coze in the middle of a run, on the fake server on 127.0.0.1: every output
// request from a given one on gets a gateway error page.

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Makes the execute-node requests from `first` to `last` get an HTML 502. */
function outageFrom(first: number, last = 5_000): NonNullable<Scenario['faults']> {
  const requests = Array.from({ length: last - first + 1 }, (_, index) => first + index);
  return [{ name: 'outage', route: 'execute_node', requests, action: { type: 'html' } }];
}

const QUICK_RETRIES = { retries: 5, retryMinDelayMs: 20, retryMaxDelayMs: 100, qps: 1_000, concurrency: 4 };

function nodeRequests(server: FakeCozeServer): number {
  return server.countRequests({ route: 'execute_node' });
}

async function savedFiles(outDir: string): Promise<string[]> {
  return readdir(path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'nodes'));
}

/** Builds the options of one execution's archive on `server` into `outDir`. */
function archiveOptions(server: FakeCozeServer, outDir: string, extra: Partial<ArchiveExecutionOptions> = {}): ArchiveExecutionOptions {
  return { token: TOKEN, baseUrl: server.url, outDir, workflowId: WORKFLOW_ID, executeId: EXECUTE_ID, ...QUICK_RETRIES, ...extra };
}

/** Runs a batch of `executeIds` on `server` into `outDir`, stopping after 300 ms without a response. */
function runOutageBatch(server: FakeCozeServer, outDir: string, executeIds: readonly string[]) {
  const executions = executeIds.map((executeId) => ({ workflowId: WORKFLOW_ID, executeId }));
  return runBatch({ token: TOKEN, baseUrl: server.url, outDir, ...QUICK_RETRIES, maxOutageMs: 300, executions });
}

function readManifest(outDir: string): Promise<ExecutionManifest> {
  return readJson<ExecutionManifest>(path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'manifest.json'));
}

describe('outage of Coze', () => {
  it('stops the run once the limit passes', async () => {
    const scenario = executionScenario(100, { faults: outageFrom(6) });
    scenario.executions![0]!.record = { output: { Output: '总结' } };
    const server = await cleanups.server(scenario);
    const outDir = await cleanups.folder();
    const run = archiveExecutionOutputs(archiveOptions(server, outDir, { maxOutageMs: 300 }));

    await expect(run).rejects.toThrow(CozeOutageError);
    await expect(run).rejects.toThrow(/Coze sent no usable response for \d+ms, and the last \d+ attempts all failed \(the last: HTTP 502 .*, logid \w+\)/);
    const manifest = await readManifest(outDir);
    expect(manifest.stopped).toMatch(/^Coze sent no usable response/);
    expect(manifest.complete).toBe(false);
    expect(manifest.totals.saved).toBe(6);
    expect(manifest.totals.saved + manifest.totals.failed + manifest.totals.pending).toBe(101);
    expect(manifest.totals.pending).toBeGreaterThan(50);
    expect(await savedFiles(outDir)).toHaveLength(5);
    // Without the breaker each of the 95 nodes would be asked for 6 times.
    expect(nodeRequests(server)).toBeLessThan(100);
  });

  it('still saves the inline output', async () => {
    const scenario = executionScenario(40, { faults: outageFrom(6) });
    scenario.executions![0]!.record = { output: { Output: '总结' } };
    const server = await cleanups.server(scenario);
    const outDir = await cleanups.folder();
    await expect(archiveExecutionOutputs(archiveOptions(server, outDir, { maxOutageMs: 300 }))).rejects.toThrow(CozeOutageError);
    const manifest = await readManifest(outDir);
    const inline = manifest.nodes.find((entry) => entry.source === 'inline');

    expect(inline?.status).toBe('saved');
    expect(inline?.file).toBe('inline/Output.txt');
  });

  it('marks entries it stopped as interrupted', async () => {
    const server = await cleanups.server(executionScenario(40, { faults: outageFrom(6) }));
    const outDir = await cleanups.folder();
    await expect(archiveExecutionOutputs(archiveOptions(server, outDir, { maxOutageMs: 300 }))).rejects.toThrow(CozeOutageError);
    const manifest = await readManifest(outDir);
    const reasons = new Set(manifest.nodes.filter((entry) => entry.status === 'pending').map((entry) => entry.reason));
    const tried = manifest.nodes.filter((entry) => entry.status === 'pending' && entry.attempts > 0);

    expect(reasons).toEqual(new Set(['interrupted']));
    expect(tried.length).toBeGreaterThan(0);
  });

  it('keeps earlier files listed under --force', async () => {
    const healthy = await cleanups.server(executionScenario(40));
    const outDir = await cleanups.folder();
    await archiveExecutionOutputs(archiveOptions(healthy, outDir));
    const failing = await cleanups.server(executionScenario(40, { faults: outageFrom(6) }));
    await expect(archiveExecutionOutputs(archiveOptions(failing, outDir, { maxOutageMs: 300, force: true }))).rejects.toThrow(CozeOutageError);
    const manifest = await readManifest(outDir);
    const report = await verifyArchive(outDir);

    expect(manifest.stopped).toMatch(/^Coze sent no usable response/);
    expect(manifest.nodes.filter((entry) => entry.status === 'saved' && entry.file !== null)).toHaveLength(40);
    expect(report.intact).toBe(true);
    expect(report.unexpected).toEqual([]);
  });

  it('rides out a few failures', async () => {
    const server = await cleanups.server(executionScenario(30, { faults: outageFrom(3, 8) }));
    const outDir = await cleanups.folder();
    const manifest = await archiveExecutionOutputs({ token: TOKEN, baseUrl: server.url, outDir, workflowId: WORKFLOW_ID, executeId: EXECUTE_ID, ...QUICK_RETRIES, maxOutageMs: 1 });

    expect(manifest.stopped).toBeUndefined();
    expect(manifest.totals.saved).toBe(30);
    expect(nodeRequests(server)).toBe(36);
  });

  it('never stops with a limit of 0', async () => {
    const server = await cleanups.server(executionScenario(30, { faults: outageFrom(6) }));
    const outDir = await cleanups.folder();
    const manifest = await archiveExecutionOutputs(archiveOptions(server, outDir, { retries: 1, maxOutageMs: 0 }));

    expect(manifest.stopped).toBeUndefined();
    expect(manifest.totals.saved).toBe(5);
    expect(manifest.totals.failed).toBe(25);
    expect(nodeRequests(server)).toBe(5 + 25 * 2);
  });

  it('stops every execution of a batch', async () => {
    const scenario = executionScenario(60, { faults: outageFrom(6) });
    const second = { ...scenario.executions![0]!, executeId: '7431000000000000102' };
    scenario.executions!.push(second);
    const server = await cleanups.server(scenario);
    const outDir = await cleanups.folder();
    const result = await runOutageBatch(server, outDir, [EXECUTE_ID, second.executeId]);

    expect(result.exitCode).toBe(1);
    expect(result.fatalError).toBeInstanceOf(CozeOutageError);
    expect(result.manifests).toHaveLength(2);
    for (const manifest of result.manifests) expect(manifest.stopped).toMatch(/Coze sent no usable response/);
    expect(nodeRequests(server)).toBeLessThan(120);
  });

  it('stops a batch while reading run histories', async () => {
    const scenario = executionScenario(3, {
      faults: [{ route: 'run_history', requests: Array.from({ length: 200 }, (_, index) => index + 3), action: { type: 'status', status: 503, code: 5000 } }],
    });
    const first = scenario.executions![0]!;
    const executeIds = Array.from({ length: 6 }, (_, index) => `743100000000000020${index}`);
    scenario.executions = executeIds.map((executeId) => ({ ...first, executeId }));
    const server = await cleanups.server(scenario);
    const outDir = await cleanups.folder();
    const result = await runOutageBatch(server, outDir, executeIds);
    const report = await verifyArchive(outDir);
    const emptyStops = report.unfinished_runs.filter((run) => run.reason.includes('it lists no output yet'));

    expect(result.fatalError).toBeInstanceOf(CozeOutageError);
    expect(server.countRequests({ route: 'run_history' })).toBeLessThan(6 * 6);
    expect(emptyStops.length).toBeGreaterThan(0);
    for (const run of emptyStops) expect(run.reason).toContain('it lists no output yet; a fetch of this execution within 24 hours of its run fetches its outputs');
    for (const run of report.unfinished_runs) expect(run.reason).not.toContain('.;');
    for (const run of report.unfinished_runs) expect(run.reason).not.toContain('run stopped:');
  });

  it('exits 1 from the CLI with the reason', async () => {
    const server = await cleanups.server(executionScenario(100, { faults: outageFrom(6) }));
    const outDir = await cleanups.folder();
    const result = await runCli(
      ['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--base-url', server.url, '--out', outDir,
        '--retry-min-delay', '20ms', '--qps', '1000', '--concurrency', '4', '--max-outage', '300ms', '--quiet'],
      { env: { COZE_API_TOKEN: TOKEN } },
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/coze-node-outputs: Coze sent no usable response for \d+m?s, and the last \d+ attempts all failed/);
    expect(result.stderr).not.toContain('at OutageBreaker');
    expect(result.stderr).toContain('run the same command again to resume');
    expect(await savedFiles(outDir)).toHaveLength(5);
    expect(nodeRequests(server)).toBeLessThan(100);
  });

  it('names the error once per batch', async () => {
    const scenario = executionScenario(60, { faults: outageFrom(6) });
    const second = { ...scenario.executions![0]!, executeId: '7431000000000000102' };
    scenario.executions!.push(second);
    const server = await cleanups.server(scenario);
    const outDir = await cleanups.folder();
    const list = path.join(await cleanups.folder(), 'list.txt');
    await writeFile(list, `${WORKFLOW_ID} ${EXECUTE_ID}\n${WORKFLOW_ID} ${second.executeId}\n`);
    const result = await runCli(
      ['fetch', '--from', list, '--base-url', server.url, '--out', outDir, '--retry-min-delay', '20ms', '--qps', '1000', '--concurrency', '4', '--max-outage', '300ms'],
      { env: { COZE_API_TOKEN: TOKEN } },
    );
    const rows = result.stderr.split('\n').filter((line) => line.startsWith(WORKFLOW_ID));

    expect(result.code).toBe(1);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toMatch(/ stopped by the run's error below$/);
    expect(result.stderr.trimEnd().split('\n').at(-1)).toMatch(/^coze-node-outputs: Coze sent no usable response/);
  });
});
