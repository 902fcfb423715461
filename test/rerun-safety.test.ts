import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ExecutionManifest, ManifestEntry } from '../src/index.js';
import type { FakeCozeServer, Scenario } from '../src/fake-server/index.js';
import { Cleanups } from './helpers/cleanups.js';
import { readJson, runCli } from './helpers/run-cli.js';
import { EXECUTE_ID, executionScenario, nodeUuid, TOKEN, UNREACHABLE_URL, WORKFLOW_ID } from './helpers/scenarios.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const start = (scenario: Scenario): Promise<FakeCozeServer> => cleanups.server(scenario);
const env = { COZE_API_TOKEN: TOKEN };
/** A server that is down, because nothing accepts connections at its address. */
const SERVER_DOWN = { url: UNREACHABLE_URL };

function fetchArgs(server: Pick<FakeCozeServer, 'url'>, outDir: string, extra: string[] = []): string[] {
  return ['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--base-url', server.url, '--out', outDir,
    '--retry-min-delay', '10ms', '--qps', '500', ...extra];
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const manifestPath = (outDir: string): string => path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'manifest.json');
const manifestOf = (outDir: string): Promise<ExecutionManifest> => readJson<ExecutionManifest>(manifestPath(outDir));

/** Returns the manifest entry of the first node run, the one the tests below change or delete. */
const firstNodeEntry = async (outDir: string): Promise<ManifestEntry> =>
  (await manifestOf(outDir)).nodes.find((node) => node.node_execute_uuid === nodeUuid(1))!;

describe('re-runs that stop early', () => {
  it('SIGINT keeps entries saved earlier', async () => {
    const failFirst = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(5), times: 1, action: { type: 'status' as const, status: 200, code: 4200 } };
    // The re-run is stopped before its run history arrives, so nothing of this run is known yet.
    const stallSecond = { route: 'run_history' as const, requests: [2], action: { type: 'stallBeforeHeaders' as const, ms: 20_000 } };
    const server = await start(executionScenario(5, { faults: [failFirst, stallSecond] }));
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(1);
    const second = await runCli(fetchArgs(server, outDir, ['--timeout', '30s', '--json']), {
      env,
      onSpawn: (child) => {
        void waitFor(() => server.countRequests({ route: 'run_history' }) === 2).then(() => child.kill('SIGINT'));
      },
    });
    const manifest = await manifestOf(outDir);

    expect(second.code).toBe(130);
    expect((JSON.parse(second.stdout) as { stopped: string | null }).stopped).toBe('interrupted');
    expect(manifest.totals.saved).toBe(4);
    expect(manifest.execute_status).toBe('Success');
    expect(manifest.stopped).toBe('interrupted');
  });

  it('rejected token keeps complete manifest', async () => {
    const server = await start(executionScenario(3));
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(0);
    const before = await readFile(manifestPath(outDir), 'utf8');
    const rejected = await runCli(fetchArgs(server, outDir, ['--json']), { env: { COZE_API_TOKEN: 'pat_wrong_token' } });
    const manifest = await manifestOf(outDir);
    const verify = await runCli(['verify', outDir], { env });

    expect(rejected.code).toBe(3);
    // The run's report gives the reason it stopped and counts the archive complete.
    const report = JSON.parse(rejected.stdout) as { stopped: string | null; executions: { complete: boolean }[] };
    expect(report.stopped).toMatch(/^Coze rejected the token \(code 4100, .*logid \w+\)/);
    expect(report.executions[0]!.complete).toBe(true);
    expect(await readFile(manifestPath(outDir), 'utf8')).toBe(before);
    expect([manifest.complete, manifest.stopped, manifest.totals.saved]).toEqual([true, undefined, 3]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).not.toContain('Not complete');
  });

  it('unreachable server keeps complete manifest', async () => {
    const server = await start(executionScenario(2));
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(0);
    const before = await readFile(manifestPath(outDir), 'utf8');
    const offline = await runCli(fetchArgs(SERVER_DOWN, outDir, ['--retries', '0', '--json']), { env });

    expect(offline.code).toBe(1);
    const report = JSON.parse(offline.stdout) as { executions: { error: { kind?: string } | null; complete: boolean }[] };
    expect(report.executions[0]!.error?.kind).toBe('transport');
    expect(report.executions[0]!.complete).toBe(true);
    expect(await readFile(manifestPath(outDir), 'utf8')).toBe(before);

    // The table's row names this run's error, and its last line counts the archive complete.
    const table = await runCli(fetchArgs(SERVER_DOWN, outDir, ['--retries', '0', '--log-level', 'silent']), { env });
    expect(table.code).toBe(1);
    expect(table.stderr).toMatch(/ error .* Run history could not be read: Request failed: connect ECONNREFUSED .*; nothing accepts connections at that address, so check the base URL\n/);
    expect(table.stderr).toContain('1 execution: 1 archive complete; 2 saved (2 kept from earlier runs)');
  });

  it('unreachable server marks unfinished manifest', async () => {
    const failOne = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(2), action: { type: 'status' as const, status: 200, code: 4200 } };
    const server = await start(executionScenario(2, { faults: [failOne] }));
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir, ['--retries', '0']), { env })).code).toBe(1);
    const offline = await runCli(fetchArgs(SERVER_DOWN, outDir, ['--retries', '0']), { env });
    const manifest = await manifestOf(outDir);

    expect(offline.code).toBe(1);
    expect(manifest.error?.kind).toBe('transport');
    expect(manifest.error?.message).toMatch(/^Run history could not be read: /);
    expect([manifest.complete, manifest.totals.saved, manifest.totals.entries]).toEqual([false, 1, 2]);
    expect(manifest.create_time).toBeTypeOf('number');
  });

  it('a deleted file stays on record', async () => {
    const server = await start(executionScenario(2));
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(0);
    const deleted = await firstNodeEntry(outDir);
    const deletedPath = path.join(outDir, WORKFLOW_ID, EXECUTE_ID, deleted.file!);
    const content = await readFile(deletedPath);
    await rm(deletedPath);
    const offline = await runCli(fetchArgs(SERVER_DOWN, outDir, ['--retries', '0']), { env });
    const manifest = await manifestOf(outDir);
    const entry = manifest.nodes.find((node) => node.node_execute_uuid === nodeUuid(1))!;

    expect(offline.code).toBe(1);
    expect(manifest.totals.saved).toBe(1);
    expect([entry.status, entry.file, entry.bytes, entry.sha256]).toEqual(['pending', deleted.file, deleted.bytes, deleted.sha256]);
    expect(entry.reason).toBe(`file_missing_or_altered; the file an earlier run saved, ${deleted.file}, is missing`);
    expect(manifest.complete).toBe(false);

    // verify reports the loss, so the record shows what to restore.
    const verify = await runCli(['verify', outDir], { env });
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`missing: ${WORKFLOW_ID}/${EXECUTE_ID}/${deleted.file} (file not found; `);

    // A file restored from a copy with the recorded bytes is saved again, even while Coze cannot be reached.
    await writeFile(deletedPath, content);
    expect((await runCli(fetchArgs(SERVER_DOWN, outDir, ['--retries', '0']), { env })).code).toBe(1);
    const restored = await firstNodeEntry(outDir);
    expect([restored.status, restored.reason]).toEqual(['saved', undefined]);
    expect((await runCli(['verify', outDir], { env })).code).toBe(0);
  });

  it('outputs no longer listed stay', async () => {
    const outDir = await cleanups.folder();
    const full = await start(executionScenario(4));
    expect((await runCli(fetchArgs(full, outDir), { env })).code).toBe(0);
    const first = await manifestOf(outDir);
    const [unlisted, lost] = [3, 4].map((index) => first.nodes.find((node) => node.node_execute_uuid === nodeUuid(index))!);
    await rm(path.join(outDir, WORKFLOW_ID, EXECUTE_ID, lost!.file!));

    // The same execution, whose run history now lists two of the four node runs.
    const shrunk = await start(executionScenario(2));
    const rerun = await runCli(fetchArgs(shrunk, outDir), { env });
    const manifest = await manifestOf(outDir);
    const [keptEntry, lostEntry] = [3, 4].map((index) => manifest.nodes.find((node) => node.node_execute_uuid === nodeUuid(index))!);
    const verify = await runCli(['verify', outDir, '--json'], { env });
    const report = JSON.parse(verify.stdout) as { missing: { path: string; refetchable?: boolean }[] };

    expect(rerun.stderr).toContain('the run history no longer lists this output; the file an earlier run saved stays listed');
    expect(manifest.totals.entries).toBe(first.totals.entries);
    expect([keptEntry!.status, keptEntry!.file, keptEntry!.bytes, keptEntry!.sha256]).toEqual(['saved', unlisted!.file, unlisted!.bytes, unlisted!.sha256]);
    // A file lost as well can never be fetched again: the entry is expired, which exits 1 and not 4.
    expect(rerun.code).toBe(1);
    expect([lostEntry!.status, lostEntry!.file, lostEntry!.sha256]).toEqual(['expired', lost!.file, lost!.sha256]);
    expect(lostEntry!.reason).toBe(`no longer listed in the run history; file_missing_or_altered; the file an earlier run saved, ${lost!.file}, is missing`);
    expect(shrunk.countRequests({ nodeExecuteUuid: nodeUuid(3) }) + shrunk.countRequests({ nodeExecuteUuid: nodeUuid(4) })).toBe(0);
    expect(verify.code).toBe(1);
    expect(report.missing.map((finding) => [finding.path, finding.refetchable])).toEqual([[`${WORKFLOW_ID}/${EXECUTE_ID}/${lost!.file}`, false]]);
  });

  it('an altered file keeps its record', async () => {
    const server = await start(executionScenario(2));
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(0);
    const saved = await firstNodeEntry(outDir);
    const savedPath = path.join(outDir, WORKFLOW_ID, EXECUTE_ID, saved.file!);
    await writeFile(savedPath, 'edited by hand');

    // Two re-runs that cannot reach the server: the second starts from the manifest the first wrote.
    for (let run = 1; run <= 2; run += 1) {
      const offline = await runCli(fetchArgs(SERVER_DOWN, outDir, ['--retries', '0']), { env });
      const entry = await firstNodeEntry(outDir);
      const verify = await runCli(['verify', outDir, '--json'], { env });
      const report = JSON.parse(verify.stdout) as { altered: { path: string; reason: string }[]; entries_not_saved: number };

      expect(offline.code).toBe(1);
      expect([entry.status, entry.file, entry.bytes, entry.sha256]).toEqual(['pending', saved.file, saved.bytes, saved.sha256]);
      expect(entry.reason).toBe(`file_missing_or_altered; the file an earlier run saved, ${saved.file}, was changed since and is left as it is`);
      expect(verify.code).toBe(1);
      expect(report.altered.map((finding) => [finding.path, finding.reason])).toEqual([[`${WORKFLOW_ID}/${EXECUTE_ID}/${saved.file}`, 'size differs']]);
      expect(report.entries_not_saved).toBe(1);
    }

    // Once the server is back, the output is fetched into the same file.
    const online = await start(executionScenario(2));
    expect((await runCli(fetchArgs(online, outDir), { env })).code).toBe(0);
    const restored = await firstNodeEntry(outDir);
    expect([restored.status, restored.file, restored.sha256]).toEqual(['saved', saved.file, saved.sha256]);
    expect((await runCli(['verify', outDir], { env })).code).toBe(0);
  });
});

describe('execution.json on a re-run', () => {
  const executionPath = (outDir: string): string => path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'execution.json');
  const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

  it('keeps the file of an unchanged run history', async () => {
    // Each response has a logid of its own, so only the file's logid distinguishes the runs.
    const server = await start(executionScenario(2));
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(0);
    const firstBytes = await readFile(executionPath(outDir));
    const first = await manifestOf(outDir);
    expect((await runCli(fetchArgs(server, outDir, ['--force']), { env })).code).toBe(0);
    const second = await manifestOf(outDir);

    expect(server.countRequests({ route: 'run_history' })).toBe(2);
    expect(await readFile(executionPath(outDir))).toEqual(firstBytes);
    expect(firstBytes.toString()).toContain(`"logid":"${first.run_history_logid}"`);
    expect([second.run_history_logid, second.execution_sha256]).toEqual([first.run_history_logid, sha256(firstBytes)]);
    expect(second.complete).toBe(true);
  });

  it('saves a run history that changed', async () => {
    const finished = executionScenario(2);
    const server = await start({ ...finished, executions: [{ ...finished.executions![0]!, timeline: { finishAfterPolls: 1 } }] });
    const outDir = await cleanups.folder();

    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(4);
    const first = await manifestOf(outDir);
    expect((await runCli(fetchArgs(server, outDir), { env })).code).toBe(0);
    const secondBytes = await readFile(executionPath(outDir));
    const second = await manifestOf(outDir);

    expect([first.execute_status, second.execute_status]).toEqual(['Running', 'Success']);
    expect(secondBytes.toString()).toContain('"execute_status":"Success"');
    expect(secondBytes.toString()).toContain(`"logid":"${second.run_history_logid}"`);
    expect(second.run_history_logid).not.toBe(first.run_history_logid);
    expect(second.execution_sha256).toBe(sha256(secondBytes));
  });
});

describe('permission for one workflow', () => {
  it('4101 fails that workflow only', async () => {
    const forbiddenWorkflow = '7350000000000000199';
    const scenario = executionScenario(2, { auth: { forbiddenWorkflowIds: [forbiddenWorkflow] } });
    scenario.executions!.push({ workflowId: forbiddenWorkflow, executeId: '7431000000000000199', nodes: [] });
    const server = await start(scenario);
    const outDir = await cleanups.folder();
    const list = path.join(outDir, 'list.txt');
    await writeFile(list, `${forbiddenWorkflow} 7431000000000000199\n${WORKFLOW_ID} ${EXECUTE_ID}\n`);

    const result = await runCli(['fetch', '--from', list, '--base-url', server.url, '--out', outDir, '--retry-min-delay', '10ms'], { env });
    const manifest = await manifestOf(outDir);
    const denied = await readJson<ExecutionManifest>(path.join(outDir, forbiddenWorkflow, '7431000000000000199', 'manifest.json'));

    expect(result.code).toBe(3);
    expect(manifest.totals.saved).toBe(2);
    expect(server.countRequests({ route: 'run_history' })).toBe(2);
    // The denied execution records why, and no message claims that the token or the run failed.
    expect(denied.error?.code).toBe(4101);
    expect(denied.error?.logid).toMatch(/^\w{10,}/);
    expect(denied.run_history_logid).toBe(denied.error?.logid);
    expect(denied.stopped).toBeUndefined();
    expect(denied.complete).toBe(false);
    expect(result.stderr).toContain(`denied this token access to workflow ${forbiddenWorkflow}`);
    expect(result.stderr).not.toContain('rejected the token');
  });
});

describe('input mistakes', () => {
  it('token file with two lines exits 2', async () => {
    const server = await start(executionScenario(1));
    const outDir = await cleanups.folder();
    const tokenFile = path.join(outDir, 'token');
    await writeFile(tokenFile, `${TOKEN}\nsecond line\n`);

    const result = await runCli(fetchArgs(server, outDir, ['--token-file', tokenFile]), { env: {} });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('line break');
    expect(result.stderr).not.toContain(TOKEN);
    expect(server.requests).toHaveLength(0);
  });

  it('dry run of a comment-only list', async () => {
    const outDir = await cleanups.folder();
    const list = path.join(outDir, 'list.txt');
    await writeFile(list, '# nothing to archive today\n\n');

    const result = await runCli(['fetch', '--from', list, '--dry-run'], { env: {} });

    // A pruned cron list is no mistake, so the plan reports that the run would archive nothing and exit 0.
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('The list names no execution, so a run would archive nothing and exit 0.');
    expect(result.stderr).not.toContain('No valid execution');
  });

  it('--out naming a file exits 2', async () => {
    const server = await start(executionScenario(1));
    const outDir = await cleanups.folder();
    const file = path.join(outDir, 'not-a-folder');
    await writeFile(file, 'x');

    const result = await runCli(fetchArgs(server, file), { env });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('is not a folder');
    expect(server.requests).toHaveLength(0);
  });

  it('export to a missing folder exits 2', async () => {
    const server = await start(executionScenario(1));
    const outDir = await cleanups.folder();
    await runCli(fetchArgs(server, outDir), { env });

    const missing = await runCli(['export', outDir, '--output', path.join(outDir, 'no-such-folder', 'x.jsonl')], { env });
    await mkdir(path.join(outDir, 'a-folder'));
    const folder = await runCli(['export', outDir, '--output', path.join(outDir, 'a-folder')], { env });

    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ENOENT');
    expect(missing.stderr).not.toContain('    at ');
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain('it is a folder');
    expect((await readdir(outDir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });
});
