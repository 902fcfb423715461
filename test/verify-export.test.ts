import { createHash } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';

import { afterEach, describe, expect, it } from 'vitest';

import { archiveExecutions, exportArchive, verifyArchive, type ExecutionManifest, type VerifyReport } from '../src/index.js';
import { computeTotals, type ManifestEntry } from '../src/archive/manifest.js';
import type { Scenario } from '../src/fake-server/index.js';
import {
  BATCH_TOKEN,
  BATCH_WORKFLOW,
  batchScenario,
  Cleanups,
  expectedOutputs,
  expiredExecution,
  fastFlags,
  IDS,
  nearExpiryExecution,
  runBatchCli,
  savedExecution,
} from './helpers/batch-fixtures.js';
import { readJson } from './helpers/run-cli.js';

// `verify` and `export` on archives written by a real batch against the fake Coze server.

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Archives the saved and near-expiry executions and returns the archive folder. */
async function makeArchive(scenario: Scenario = batchScenario([savedExecution(), nearExpiryExecution()])): Promise<string> {
  const server = await cleanups.server(scenario);
  const outDir = await cleanups.folder('coze-verify-');
  const executions = (scenario.executions ?? []).map(({ workflowId, executeId }) => ({ workflowId, executeId }));

  const result = await archiveExecutions({ token: BATCH_TOKEN, baseUrl: server.url, outDir, qps: 200, retryMinDelayMs: 10, executions });
  expect(result.exitCode).toBe(0);
  return outDir;
}

function manifestOf(out: string, executeId: string): Promise<ExecutionManifest> {
  return readJson<ExecutionManifest>(path.join(out, BATCH_WORKFLOW, executeId, 'manifest.json'));
}

/** Gives an edited manifest the totals fetch would write for its entries. */
function withTotals<T extends { nodes: readonly object[] }>(manifest: T): T & { totals: ReturnType<typeof computeTotals> } {
  return { ...manifest, totals: computeTotals(manifest.nodes as ManifestEntry[]) };
}

function folderOf(out: string, executeId: string): string {
  return path.join(out, BATCH_WORKFLOW, executeId);
}

function sha256(text: string): string {
  return createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
}

describe('verify', () => {
  it('intact archive exits 0', async () => {
    const out = await makeArchive();

    const result = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(result.stdout) as VerifyReport;

    expect(result.code).toBe(0);
    expect(report.intact).toBe(true);
    expect(report.complete).toBe(true);
    expect((await runBatchCli(['verify', out, '--require-complete'])).code).toBe(0);
    expect(report.manifests).toBe(2);
    expect(report.entries_checked).toBe(4);
    expect(report.missing).toEqual([]);
    expect(report.altered).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.temporary).toEqual([]);
    expect(report.invalid).toEqual([]);
    expect(report.execution_errors).toEqual([]);
    expect(report.unfinished_runs).toEqual([]);
    expect(report.entries_expired).toBe(0);
  });

  it('names an execution error', async () => {
    const out = await makeArchive();
    const manifestPath = path.join(folderOf(out, IDS.saved), 'manifest.json');
    const message = 'Failed to save execution.json, so the run history is not kept beside the outputs: EISDIR';
    await writeFile(manifestPath, JSON.stringify({ ...(await manifestOf(out, IDS.saved)), error: { message } }));

    const text = await runBatchCli(['verify', out]);
    const json = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(json.stdout) as VerifyReport;

    // The files are intact, so the exit code stays 0, although the archive is not complete.
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Archive intact.');
    expect(text.stdout).toContain(`Not complete: ${BATCH_WORKFLOW}/${IDS.saved}/manifest.json: ${message}`);
    expect(report.execution_errors).toEqual([{ manifest: `${BATCH_WORKFLOW}/${IDS.saved}/manifest.json`, message }]);
    expect([report.intact, report.complete]).toEqual([true, false]);
    expect((await runBatchCli(['verify', out, '--require-complete'])).code).toBe(1);
  });

  it('unknown execution suggests deleting its folder', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder('coze-verify-');
    const mistyped = '7431826405913479999';
    const fetched = await runBatchCli(['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', mistyped, ...fastFlags(server.url, out)]);
    const manifest = await manifestOf(out, mistyped);

    const text = await runBatchCli(['verify', out]);

    expect(fetched.code).toBe(1);
    expect(manifest.error?.code).toBe(4314);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `Not complete: ${BATCH_WORKFLOW}/${mistyped}/manifest.json: ${manifest.error!.message} (logid ${manifest.error!.logid}); ` +
        "if its ids are mistyped, delete this execution's folder",
    );
  });

  it('checks the saved run history', async () => {
    const out = await makeArchive();
    const manifest = await manifestOf(out, IDS.saved);
    const executionPath = path.join(folderOf(out, IDS.saved), 'execution.json');
    expect(manifest.execution_sha256).toBe(createHash('sha256').update(await readFile(executionPath)).digest('hex'));
    await writeFile(executionPath, '{}');

    const text = await runBatchCli(['verify', out]);
    const report = JSON.parse((await runBatchCli(['verify', out, '--json'])).stdout) as VerifyReport;

    expect(text.code).toBe(1);
    expect(report.altered.map((finding) => [finding.path, finding.reason, finding.expected_sha256])).toEqual([
      [`${BATCH_WORKFLOW}/${IDS.saved}/execution.json`, 'run-history sha256 differs', manifest.execution_sha256],
    ]);
    expect(text.stdout).toContain(`manifest says ${manifest.execution_sha256}; a fetch of this execution saves it again)`);

    // A manifest written before the field existed is checked for the file alone.
    const { execution_sha256: _dropped, ...older } = manifest;
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), JSON.stringify(older));
    expect((await runBatchCli(['verify', out])).code).toBe(0);
  });

  it('stopped run with all saved', async () => {
    const out = await makeArchive();
    const saved = await manifestOf(out, IDS.saved);
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), JSON.stringify({ ...saved, stopped: 'interrupted', complete: false }));

    const text = await runBatchCli(['verify', out]);
    const strict = await runBatchCli(['verify', out, '--require-complete']);

    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Not complete: ${BATCH_WORKFLOW}/${IDS.saved}/manifest.json: the run stopped early: interrupted; every entry it lists is saved`);
    // The same report, and an exit code that a cron job can test for completeness.
    expect(strict.stdout).toBe(text.stdout);
    expect(strict.code).toBe(1);
  });

  it('unknown execution with outputs keeps them', async () => {
    const out = await makeArchive();
    // An unfinished archive, as a stopped run leaves it. A complete one would be left unchanged.
    const saved = await manifestOf(out, IDS.saved);
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), JSON.stringify({ ...saved, stopped: 'interrupted', complete: false }));
    // The same ids against a server that has no record of the execution.
    const forgetting = await cleanups.server(batchScenario([nearExpiryExecution()]));
    const fetched = await runBatchCli(['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.saved, ...fastFlags(forgetting.url, out)]);
    const manifest = await manifestOf(out, IDS.saved);

    const text = await runBatchCli(['verify', out]);

    expect(fetched.code).toBe(1);
    expect(manifest.error?.code).toBe(4314);
    expect(manifest.totals.saved).toBeGreaterThan(0);
    expect(manifest.error?.logid).toMatch(/^\d{14}[0-9A-F]{20}$/);
    expect(text.stdout).toContain(`${manifest.error!.message} (logid ${manifest.error!.logid}); the outputs saved before stay listed, so keep this folder`);
    expect(text.stdout).not.toContain('delete this execution');
  });

  it('names stopped runs and expired entries', async () => {
    const out = await makeArchive();
    const nearExpiry = await manifestOf(out, IDS.nearExpiry);
    const expiredEntry = nearExpiry.nodes[0]!;
    await rm(path.join(folderOf(out, IDS.nearExpiry), expiredEntry.file!));
    const nodes = nearExpiry.nodes.map((node) => (node === expiredEntry ? { ...node, status: 'expired', file: null, bytes: null, sha256: null } : node));
    const stopped = 'token rejected (HTTP 401)';
    const edited = withTotals({ ...nearExpiry, nodes, stopped, execute_status: 'Running' });
    await writeFile(path.join(folderOf(out, IDS.nearExpiry), 'manifest.json'), JSON.stringify(edited));

    const text = await runBatchCli(['verify', out]);
    const json = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(json.stdout) as VerifyReport;
    const manifest = `${BATCH_WORKFLOW}/${IDS.nearExpiry}/manifest.json`;

    // Nothing saved is damaged, so the exit code stays 0, and the text names what is missing and why.
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Archive intact.');
    expect(text.stdout).toContain('Not complete: 1 entry not saved; fetch reports why. It expired in Coze, so no re-run can fetch it.');
    expect(text.stdout).toContain(
      `Not complete: ${manifest}: the run stopped early: ${stopped}; a fetch of this execution within 24 hours of its run fetches the rest`,
    );
    expect(text.stdout).toContain(`Not complete: ${manifest}: the execution was still running in Coze`);
    expect(report.entries_not_saved).toBe(1);
    expect(report.entries_expired).toBe(1);
    expect(report.unfinished_runs.map((run) => run.manifest)).toEqual([manifest, manifest]);
  });

  it('sorts entries a re-run cannot fetch', async () => {
    const out = await makeArchive();
    const saved = await manifestOf(out, IDS.saved);
    const [malformed, expired, failed] = saved.nodes;
    expect(saved.nodes.length).toBeGreaterThanOrEqual(3);
    const notSaved = { file: null, bytes: null, sha256: null };
    const nodes = saved.nodes.map((node) => {
      if (node === malformed) {
        const { node_execute_uuid: _dropped, ...rest } = node;
        return { ...rest, ...notSaved, source: 'execute_nodes', status: 'failed' };
      }
      if (node === expired) return { ...node, ...notSaved, status: 'expired' };
      if (node === failed) return { ...node, ...notSaved, status: 'failed' };
      return node;
    });
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), JSON.stringify(withTotals({ ...saved, nodes })));
    for (const node of [malformed, expired, failed]) await rm(path.join(folderOf(out, IDS.saved), node!.file!));

    const text = await runBatchCli(['verify', out]);
    const report = JSON.parse((await runBatchCli(['verify', out, '--json'])).stdout) as VerifyReport;

    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      'Not complete: 3 entries not saved; fetch reports why. 1 of them is listed in the run history in an unexpected shape ' +
        'and 1 expired in Coze, so no re-run can fetch those; a re-run within 24 hours of the run fetches the others.',
    );
    expect(report.entries_not_saved).toBe(3);
    expect(report.entries_expired).toBe(1);
    expect(report.entries_malformed).toBe(1);
  });

  it('finds missing, altered and unexpected files', async () => {
    const out = await makeArchive();
    const saved = await manifestOf(out, IDS.saved);
    const nearExpiry = await manifestOf(out, IDS.nearExpiry);
    const missingFile = saved.nodes.find((node) => node.source === 'execute_nodes')!.file!;
    const grownFile = saved.nodes.find((node) => node.source === 'inline')!.file!;
    const changedFile = nearExpiry.nodes[0]!.file!;

    await rm(path.join(folderOf(out, IDS.saved), missingFile));
    await appendFile(path.join(folderOf(out, IDS.saved), grownFile), 'x');
    const changedPath = path.join(folderOf(out, IDS.nearExpiry), changedFile);
    const original = await readFile(changedPath);
    original[0] = original[0]! ^ 0x01;
    await writeFile(changedPath, original);
    await writeFile(path.join(folderOf(out, IDS.saved), 'nodes', 'notes.txt'), 'hand-written note');
    await writeFile(path.join(folderOf(out, IDS.saved), 'nodes', 'part.txt.tmp-0a1b2c3d'), 'half');
    // Only the tool's own temporary names are temporary; this one is the user's.
    await writeFile(path.join(folderOf(out, IDS.saved), 'nodes', 'draft.tmp-old'), 'a user file');
    // Files outside execution folders are not the archive's business.
    await writeFile(path.join(out, 'README.txt'), 'archive of the nightly runs');

    const result = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(result.stdout) as VerifyReport;
    const prefix = (executeId: string) => `${BATCH_WORKFLOW}/${executeId}`;

    expect(result.code).toBe(1);
    expect(report.intact).toBe(false);
    expect(report.missing.map((finding) => finding.path)).toEqual([`${prefix(IDS.saved)}/${missingFile}`]);
    expect(report.altered.map((finding) => [finding.path, finding.reason]).sort()).toEqual(
      [
        [`${prefix(IDS.saved)}/${grownFile}`, 'size differs'],
        [`${prefix(IDS.nearExpiry)}/${changedFile}`, 'sha256 differs'],
      ].sort(),
    );
    const sizeFinding = report.altered.find((finding) => finding.reason === 'size differs')!;
    expect(sizeFinding.actual_bytes).toBe(sizeFinding.expected_bytes! + 1);
    expect(report.altered.find((finding) => finding.reason === 'sha256 differs')!.expected_sha256).toBe(nearExpiry.nodes[0]!.sha256);
    expect(report.unexpected.map((finding) => finding.path).sort()).toEqual(
      [`${prefix(IDS.saved)}/nodes/draft.tmp-old`, `${prefix(IDS.saved)}/nodes/notes.txt`].sort(),
    );
    expect(report.unexpected[0]!.reason).toContain('if it stays unlisted, move it out of the archive');
    expect(report.unexpected[0]!.reason).toContain("a fetch of this execution lists it again if it is one of the execution's outputs");
    expect(report.temporary.map((finding) => finding.path)).toEqual([`${prefix(IDS.saved)}/nodes/part.txt.tmp-0a1b2c3d`]);
    expect(report.temporary[0]!.reason).toContain('the next fetch of this execution removes it');
    expect(report.invalid).toEqual([]);
  });

  it('unreadable manifest replaced by fetch', async () => {
    const scenario = batchScenario([savedExecution()]);
    const server = await cleanups.server(scenario);
    const out = await cleanups.folder('coze-verify-');
    const fetch = () => runBatchCli(['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.saved, ...fastFlags(server.url, out)]);
    expect((await fetch()).code).toBe(0);
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), '{"workflow_id": "7350000000000000301", "nodes": [');

    const damaged = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(damaged.stdout) as VerifyReport;

    expect(damaged.code).toBe(1);
    expect(report.invalid.map((finding) => finding.path)).toEqual([`${BATCH_WORKFLOW}/${IDS.saved}/manifest.json`]);
    expect(report.invalid[0]!.reason).toMatch(/^cannot read the manifest: /);
    expect(report.invalid[0]!.reason).toMatch(
      /; a fetch of this execution writes a new one, fetching the outputs again or, after Coze deleted them, keeping the files saved under their names$/,
    );

    expect((await fetch()).code).toBe(0);
    expect((await runBatchCli(['verify', out])).code).toBe(0);
  });

  it('foreign manifest named on one line', async () => {
    const out = await makeArchive();
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), '{}');

    const result = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(result.stdout) as VerifyReport;

    expect(result.code).toBe(1);
    expect(report.invalid.map((finding) => finding.reason)).toEqual([
      'not a manifest of coze-node-outputs: manifest.workflow_id: missing, expected string; manifest.execute_id: missing, expected string; ' +
        'manifest.nodes: missing, expected array; a fetch of this execution writes a new one, fetching the outputs again or, ' +
        'after Coze deleted them, keeping the files saved under their names',
    ]);
  });

  it('totals differing from entries', async () => {
    const out = await makeArchive();
    const saved = await manifestOf(out, IDS.saved);
    const totals = { ...saved.totals, saved: saved.totals.saved + 1, bytes: 7 };
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), JSON.stringify({ ...saved, totals }));

    const result = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(result.stdout) as VerifyReport;
    const manifest = `${BATCH_WORKFLOW}/${IDS.saved}/manifest.json`;

    expect(result.code).toBe(1);
    expect(report.invalid).toEqual([
      {
        path: manifest,
        manifest,
        reason:
          `totals do not match the entries (saved ${saved.totals.saved + 1} in totals, ${saved.totals.saved} in entries; ` +
          `bytes 7 in totals, ${saved.totals.bytes} in entries); a fetch of this execution writes the manifest again`,
      },
    ]);
    // The files themselves are still checked.
    expect(report.entries_checked).toBe(4);
    expect(report.missing).toEqual([]);
  });

  it('names execution folders without a manifest', async () => {
    const out = await makeArchive();
    await rm(path.join(folderOf(out, IDS.saved), 'manifest.json'));
    // As a run killed before its first manifest leaves it, and a folder made by hand.
    const killed = path.join(out, BATCH_WORKFLOW, '7431826405913479001');
    await mkdir(killed, { recursive: true });
    await writeFile(path.join(killed, 'execution.json'), '{"code":0}');
    const byHand = path.join(out, BATCH_WORKFLOW, '7431826405913479002', 'nodes');
    await mkdir(byHand, { recursive: true });
    await writeFile(path.join(byHand, 'x.txt'), 'x');

    const result = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(result.stdout) as VerifyReport;
    const reason = 'manifest.json missing from a folder laid out as an execution\'s, so its files cannot be checked; a fetch of this execution writes it again';

    expect(result.code).toBe(1);
    expect(report.intact).toBe(false);
    expect(report.manifests).toBe(1);
    expect(report.invalid.map((finding) => [finding.path, finding.reason])).toEqual(
      [IDS.saved, '7431826405913479001', '7431826405913479002'].map((id) => [`${BATCH_WORKFLOW}/${id}/manifest.json`, reason]),
    );

    // With no manifest left at all, the archive is still damaged, not the wrong folder.
    await rm(path.join(folderOf(out, IDS.nearExpiry), 'manifest.json'));
    const none = await runBatchCli(['verify', out]);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain(`invalid: ${BATCH_WORKFLOW}/${IDS.nearExpiry}/manifest.json (${reason})`);
  });

  it('names a folder in place of a file', async () => {
    const out = await makeArchive();
    const saved = await manifestOf(out, IDS.saved);
    const file = saved.nodes[0]!.file!;
    await rm(path.join(folderOf(out, IDS.saved), file));
    await mkdir(path.join(folderOf(out, IDS.saved), file));

    const result = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(result.stdout) as VerifyReport;

    expect(result.code).toBe(1);
    expect(report.missing.map((finding) => [finding.path, finding.reason])).toEqual([
      [`${BATCH_WORKFLOW}/${IDS.saved}/${file}`, 'a folder, not a file'],
    ]);
    expect(report.altered).toEqual([]);
    expect(report.unexpected).toEqual([]);

    const text = await runBatchCli(['verify', out]);
    expect(text.stdout).toContain(
      `missing: ${BATCH_WORKFLOW}/${IDS.saved}/${file} (a folder, not a file; once it is moved out of the way, ` +
        'a fetch of this execution within 24 hours of its run saves the file)',
    );

    // A file put in that folder is named as such, and export names the folder.
    await writeFile(path.join(folderOf(out, IDS.saved), file, 'note.txt'), 'x');
    const inside = JSON.parse((await runBatchCli(['verify', out, '--json'])).stdout) as VerifyReport;
    expect(inside.unexpected.map((finding) => [finding.path, finding.reason])).toEqual([
      [
        `${BATCH_WORKFLOW}/${IDS.saved}/${file}/note.txt`,
        'inside a folder that sits where an output file belongs; move that folder out of the archive, ' +
          'then a fetch of this execution within 24 hours of its run saves the file',
      ],
    ]);
    const exported = await runBatchCli(['export', out]);
    expect(exported.code).toBe(1);
    expect(exported.stderr).toContain(`skipped ${BATCH_WORKFLOW}/${IDS.saved}/${file}: a folder, not a file; run verify`);
  });

  it('text report gives advice', async () => {
    const out = await makeArchive();
    const saved = await manifestOf(out, IDS.saved);
    const [missing, altered] = saved.nodes.map((node) => node.file!);
    await rm(path.join(folderOf(out, IDS.saved), missing!));
    await appendFile(path.join(folderOf(out, IDS.saved), altered!), 'x');
    const bytes = saved.nodes[1]!.bytes!;

    const result = await runBatchCli(['verify', out]);

    expect(result.code).toBe(1);
    const refetch = 'a fetch of this execution within 24 hours of its run saves it again';
    expect(result.stdout).toContain(`missing: ${BATCH_WORKFLOW}/${IDS.saved}/${missing} (file not found; ${refetch})`);
    expect(result.stdout).toContain(`altered: ${BATCH_WORKFLOW}/${IDS.saved}/${altered} (size ${bytes + 1}, manifest says ${bytes}; ${refetch})`);
    expect(result.stdout).toContain('Archive damaged: 2 problems.');
  });

  it('temporary files alone are no damage', async () => {
    const out = await makeArchive();
    await writeFile(path.join(folderOf(out, IDS.saved), 'nodes', 'part.txt.tmp-0a1b2c3d'), 'half');

    const result = await runBatchCli(['verify', out]);

    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`temporary: ${BATCH_WORKFLOW}/${IDS.saved}/nodes/part.txt.tmp-0a1b2c3d`);
    expect(result.stdout).toContain('No damage, but 1 temporary file left by a stopped or killed run: the next fetch of each execution removes them.');
    expect(result.stdout).not.toContain('Archive damaged');
  });

  it('advice after Coze deleted outputs', async () => {
    const out = await makeArchive();
    const saved = await manifestOf(out, IDS.saved);
    // Two node runs, then the inline output, which a fetch saves again from the run history at any age.
    const [missing, pending, altered] = saved.nodes;
    expect([missing!.source, pending!.source, altered!.source]).toEqual(['execute_nodes', 'execute_nodes', 'inline']);
    // Two days ago: the run history's times are Unix seconds.
    const twoDaysAgo = Math.floor(Date.now() / 1000) - 2 * 86_400;
    const nodes = saved.nodes.map((node) => (node === pending ? { ...node, status: 'pending', file: null, bytes: null, sha256: null } : node));
    const edited = withTotals({ ...saved, nodes, create_time: twoDaysAgo - 60, update_time: twoDaysAgo, stopped: 'interrupted' });
    await writeFile(path.join(folderOf(out, IDS.saved), 'manifest.json'), JSON.stringify(edited));
    for (const node of [missing, pending]) await rm(path.join(folderOf(out, IDS.saved), node!.file!));
    await appendFile(path.join(folderOf(out, IDS.saved), altered!.file!), 'x');
    const recent = (await manifestOf(out, IDS.nearExpiry)).nodes[0]!.file!;
    await rm(path.join(folderOf(out, IDS.nearExpiry), recent));

    const text = await runBatchCli(['verify', out]);
    const report = JSON.parse((await runBatchCli(['verify', out, '--json'])).stdout) as VerifyReport;
    const manifest = `${BATCH_WORKFLOW}/${IDS.saved}/manifest.json`;
    const deleted = 'Coze no longer has this output, so no fetch can save it again: restore it from a backup';

    expect(text.code).toBe(1);
    expect(report.deleted_in_coze).toEqual([manifest]);
    expect(report.entries_past_retention).toBe(1);
    expect(text.stdout).toContain(`missing: ${BATCH_WORKFLOW}/${IDS.saved}/${missing!.file} (file not found; ${deleted})`);
    expect(text.stdout).toContain(
      `altered: ${BATCH_WORKFLOW}/${IDS.saved}/${altered!.file} (size ${altered!.bytes! + 1}, manifest says ${altered!.bytes}; a fetch of this execution saves it again)`,
    );
    expect(report.missing.find((finding) => finding.path.endsWith(missing!.file!))?.refetchable).toBe(false);
    expect(report.altered.map((finding) => [finding.refetchable, finding.entry_source])).toEqual([[true, 'inline']]);
    expect(text.stdout).toContain(
      'Not complete: 1 entry not saved; fetch reports why. 1 of them belongs to an execution that ran more than 24 hours ago, so no re-run can fetch it.',
    );
    expect(text.stdout).toContain(
      `Not complete: ${manifest}: the run stopped early: interrupted; Coze deleted this execution's outputs 24 hours after its run, so no fetch can bring back the rest`,
    );
    // The other execution ran 21 hours ago, so a fetch can still save what it lacks.
    expect(text.stdout).toContain(
      `missing: ${BATCH_WORKFLOW}/${IDS.nearExpiry}/${recent} (file not found; a fetch of this execution within 24 hours of its run saves it again)`,
    );
  });

  it('missing or empty folder exits 2', async () => {
    const empty = await cleanups.folder('coze-verify-empty-');

    const absent = await runBatchCli(['verify', path.join(empty, 'absent')]);
    const noManifest = await runBatchCli(['verify', empty]);
    const emptyPath = await runBatchCli(['verify', '']);
    const emptyOutput = await runBatchCli(['export', empty, '--output', '']);

    expect(emptyPath.code).toBe(2);
    expect(emptyPath.stderr).toContain('Invalid archive folder "": name the folder');
    expect(emptyOutput.code).toBe(2);
    expect(emptyOutput.stderr).toContain('Invalid --output "": name a file');
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain('ENOENT');
    expect(noManifest.code).toBe(2);
    expect(noManifest.stderr).toContain('No manifest.json');
  });

  it('paths outside the folder are not read', async () => {
    const out = await makeArchive();
    const outside = await cleanups.folder('coze-verify-outside-');
    const secret = path.join(outside, 'secret.txt');
    await writeFile(secret, 'not part of the archive');

    const manifestPath = path.join(folderOf(out, IDS.saved), 'manifest.json');
    const manifest = await readJson<ExecutionManifest>(manifestPath);
    manifest.nodes[0]!.file = '../../../../../../../../etc/hostname';
    await writeFile(manifestPath, JSON.stringify(manifest));

    const nearExpiry = await manifestOf(out, IDS.nearExpiry);
    const linked = path.join(folderOf(out, IDS.nearExpiry), nearExpiry.nodes[0]!.file!);
    await rm(linked);
    await symlink(secret, linked);

    const report = await verifyArchive(out);

    expect(report.intact).toBe(false);
    expect(report.invalid.map((finding) => finding.reason)).toEqual(
      expect.arrayContaining([expect.stringContaining('resolves outside'), expect.stringContaining('links outside')]),
    );
    expect(report.altered).toEqual([]);
  });
});

describe('a folder where an output file goes', () => {
  it('fails entries alone, then saves them', async () => {
    const scenario = batchScenario([savedExecution()]);
    const server = await cleanups.server(scenario);
    const out = await cleanups.folder('coze-verify-');
    const fetch = () => runBatchCli(['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.saved, ...fastFlags(server.url, out)]);
    expect((await fetch()).code).toBe(0);

    const first = await manifestOf(out, IDS.saved);
    const node = first.nodes.find((entry) => entry.source === 'execute_nodes')!;
    const inline = first.nodes.find((entry) => entry.source === 'inline')!;
    for (const entry of [node, inline]) {
      await rm(path.join(folderOf(out, IDS.saved), entry.file!));
      await mkdir(path.join(folderOf(out, IDS.saved), entry.file!));
    }

    const blocked = await fetch();
    const second = await manifestOf(out, IDS.saved);
    const message = (file: string) => `Could not save ${file}: a folder is in its place. Move the folder out of the way, then fetch again.`;

    expect(blocked.code).toBe(1);
    expect(second.stopped).toBeUndefined();
    expect(second.nodes.map((entry) => [entry.title, entry.status, entry.error?.kind, entry.error?.message])).toEqual([
      [node.title, 'failed', 'write_failed', message(node.file!)],
      [first.nodes[1]!.title, 'saved', undefined, undefined],
      [inline.title, 'failed', 'write_failed', message(inline.file!)],
    ]);
    // The message names the file inside its execution folder, not the absolute path of a temporary file.
    expect(blocked.stderr).not.toContain(folderOf(out, IDS.saved));
    // Entries without a uuid, such as inline ones, list the title and the message with one space.
    expect(blocked.stderr).toContain(`failed: ${inline.title} ${message(inline.file!)}`);

    const verified = await runBatchCli(['verify', out, '--json']);
    const report = JSON.parse(verified.stdout) as VerifyReport;
    // Each entry keeps the record of the file saved before, which a folder has replaced.
    expect(verified.code).toBe(1);
    // Findings come sorted by path: inline/ before nodes/.
    expect(report.missing.map((finding) => [finding.path, finding.reason])).toEqual(
      [inline, node].map((entry) => [`${BATCH_WORKFLOW}/${IDS.saved}/${entry.file}`, 'a folder, not a file']),
    );
    expect([report.entries_not_saved, report.entries_unwritable]).toEqual([2, 2]);
    expect((await runBatchCli(['verify', out])).stdout).toContain(
      "2 of them failed because their files could not be written: fix what fetch names, such as a folder in a file's place, before the re-run.",
    );
    // The manifest no longer lists the name, but a file inside that folder is still named as such.
    await writeFile(path.join(folderOf(out, IDS.saved), node.file!, 'note.txt'), 'x');
    const inside = JSON.parse((await runBatchCli(['verify', out, '--json'])).stdout) as VerifyReport;
    expect(inside.unexpected.map((finding) => finding.reason)).toEqual([expect.stringMatching(/^inside a folder that sits where an output file belongs; /)]);

    for (const entry of [node, inline]) await rm(path.join(folderOf(out, IDS.saved), entry.file!), { recursive: true });
    const moved = await fetch();
    const third = await manifestOf(out, IDS.saved);

    expect(moved.code).toBe(0);
    expect(third.nodes.map((entry) => [entry.status, entry.file, entry.bytes, entry.sha256])).toEqual(
      first.nodes.map((entry) => ['saved', entry.file, entry.bytes, entry.sha256]),
    );
    expect(expectedOutputs(scenario, IDS.saved).get(node.node_execute_uuid!)?.sha256).toBe(node.sha256);
    for (const entry of third.nodes) {
      const text = await readFile(path.join(folderOf(out, IDS.saved), entry.file!), 'utf8');
      expect(sha256(text)).toBe(entry.sha256);
    }
  });
});

/**
 * Archives the 25-hour-old execution from a server that still has its output, as Coze had it a
 * day earlier, and starts a second server that has deleted it.
 */
async function savedBeforeDeletion() {
  const serving = await cleanups.server(batchScenario([{ ...expiredExecution(), expiry: { afterSeconds: 10 * 86_400 } }]));
  const deleted = await cleanups.server(batchScenario([expiredExecution()]));
  const out = await cleanups.folder('coze-verify-');
  const fetch = (url: string) => runBatchCli(['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.expired, ...fastFlags(url, out)]);
  expect((await fetch(serving.url)).code).toBe(0);
  const saved = (await manifestOf(out, IDS.expired)).nodes[0]!;
  return { serving, deleted, out, fetch, saved };
}

describe('after Coze deleted the outputs', () => {
  it('keeps files through force and lost manifest', async () => {
    // One server still has the 25-hour-old outputs, as Coze had them a day earlier. The other has deleted them.
    const serving = await cleanups.server(batchScenario([{ ...expiredExecution(), expiry: { afterSeconds: 10 * 86_400 } }]));
    const deleted = await cleanups.server(batchScenario([expiredExecution()]));
    const out = await cleanups.folder('coze-verify-');
    const fetch = (url: string, extra: string[] = []) =>
      runBatchCli(['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.expired, ...fastFlags(url, out), ...extra]);
    const manifestPath = path.join(folderOf(out, IDS.expired), 'manifest.json');

    expect((await fetch(serving.url)).code).toBe(0);
    const first = await manifestOf(out, IDS.expired);
    const savedFields = first.nodes.map((entry) => [entry.status, entry.file, entry.bytes, entry.sha256]);
    expect(savedFields).toEqual([['saved', expect.any(String), expect.any(Number), expect.any(String)]]);

    const forced = await fetch(deleted.url, ['--force']);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toContain('output could not be fetched again, so the file an earlier run saved is kept');
    expect((await manifestOf(out, IDS.expired)).nodes.map((entry) => [entry.status, entry.file, entry.bytes, entry.sha256])).toEqual(savedFields);

    for (const loseManifest of [() => writeFile(manifestPath, '{'), () => rm(manifestPath)]) {
      await loseManifest();
      const result = await fetch(deleted.url);
      const manifest = await manifestOf(out, IDS.expired);

      expect(result.code).toBe(0);
      expect(manifest.nodes.map((entry) => [entry.status, entry.file, entry.bytes, entry.sha256])).toEqual(savedFields);
      expect((await runBatchCli(['verify', out])).code).toBe(0);
    }
    // The first server sent the output once, and the second returned code 4200 for each request.
    expect(serving.countRequests({ route: 'execute_node' })).toBe(1);
    expect(deleted.countRequests({ route: 'execute_node' })).toBe(3);
  });

  it('keeps the record of a deleted file', async () => {
    const { deleted, out, fetch, saved } = await savedBeforeDeletion();
    const savedPath = path.join(folderOf(out, IDS.expired), saved.file!);
    const content = await readFile(savedPath);
    await rm(savedPath);

    // Coze no longer has the output, and the manifest keeps the loss on record.
    expect((await fetch(deleted.url)).code).toBe(1);
    const lost = (await manifestOf(out, IDS.expired)).nodes[0]!;
    const verified = await runBatchCli(['verify', out]);
    expect([lost.status, lost.file, lost.bytes, lost.sha256]).toEqual(['expired', saved.file, saved.bytes, saved.sha256]);
    expect(lost.reason).toContain(`; the file an earlier run saved, ${saved.file}, is missing`);
    expect(verified.code).toBe(1);
    expect(verified.stdout).toContain(`missing: ${BATCH_WORKFLOW}/${IDS.expired}/${saved.file} (file not found; Coze no longer has this output`);

    // A copy with other bytes is not taken for the output.
    await writeFile(savedPath, 'from a stale backup');
    expect((await fetch(deleted.url)).code).toBe(1);
    expect((await manifestOf(out, IDS.expired)).nodes[0]!.status).toBe('expired');
    const wrongCopy = JSON.parse((await runBatchCli(['verify', out, '--json'])).stdout) as VerifyReport;
    expect(wrongCopy.altered.map((finding) => finding.path)).toEqual([`${BATCH_WORKFLOW}/${IDS.expired}/${saved.file}`]);

    // The right copy is saved again without a request.
    await writeFile(savedPath, content);
    const requestsBefore = deleted.countRequests({ route: 'execute_node' });
    expect((await fetch(deleted.url)).code).toBe(0);
    const restored = (await manifestOf(out, IDS.expired)).nodes[0]!;
    expect([restored.status, restored.sha256, restored.reason]).toEqual(['saved', saved.sha256, undefined]);
    expect(deleted.countRequests({ route: 'execute_node' })).toBe(requestsBefore);
    expect((await runBatchCli(['verify', out])).code).toBe(0);
  });

  it('keeps naming a changed file', async () => {
    const { deleted, out, fetch, saved } = await savedBeforeDeletion();
    await appendFile(path.join(folderOf(out, IDS.expired), saved.file!), '（改过）');

    // A re-run stopped while it fetches the output again keeps the record of what was saved.
    const slowBody = { route: 'execute_node' as const, action: { type: 'slowBody' as const, chunkBytes: 4, delayMs: 300 } };
    const stalled = await cleanups.server({
      ...batchScenario([{ ...expiredExecution(), expiry: { afterSeconds: 10 * 86_400 } }]),
      faults: [slowBody],
    });
    const stopped = await runBatchCli(['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.expired, ...fastFlags(stalled.url, out)], {
      onSpawn: (child) => {
        const poll = setInterval(() => {
          if (stalled.countRequests({ route: 'execute_node' }) === 0) return;
          clearInterval(poll);
          setTimeout(() => child.kill('SIGINT'), 200);
        }, 20);
      },
    });
    const interrupted = (await manifestOf(out, IDS.expired)).nodes[0]!;
    expect(stopped.code).toBe(130);
    expect([interrupted.status, interrupted.file, interrupted.bytes, interrupted.sha256]).toEqual(['pending', saved.file, saved.bytes, saved.sha256]);
    expect(interrupted.reason).toBe(`interrupted; the file an earlier run saved, ${saved.file}, was changed since and is left as it is`);

    for (let run = 1; run <= 2; run += 1) {
      const result = await fetch(deleted.url);
      const entry = (await manifestOf(out, IDS.expired)).nodes[0]!;
      const verified = JSON.parse((await runBatchCli(['verify', out, '--json'])).stdout) as VerifyReport;

      expect(result.code).toBe(1);
      expect([entry.status, entry.file, entry.bytes, entry.sha256]).toEqual(['expired', saved.file, saved.bytes, saved.sha256]);
      expect(entry.reason).toContain(`; the file an earlier run saved, ${saved.file}, was changed since and is left as it is`);
      expect(verified.unexpected).toEqual([]);
      expect([verified.entries_not_saved, verified.entries_expired]).toEqual([1, 1]);
      // The changed file is still reported, so a check after the fetch still finds the damage.
      expect(verified.altered.map((finding) => finding.path)).toEqual([`${BATCH_WORKFLOW}/${IDS.expired}/${saved.file}`]);
    }
  });
});

describe('export', () => {
  it('JSON lines match the manifests', async () => {
    const scenario = batchScenario([savedExecution(), nearExpiryExecution()]);
    const out = await makeArchive(scenario);

    const result = await runBatchCli(['export', out]);
    const lines = result.stdout.split('\n').filter((line) => line !== '');
    const rows = lines.map((line) => JSON.parse(line) as Record<string, unknown>);

    expect(result.code).toBe(0);
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(rows).toHaveLength(4);
    expect(result.stderr).toContain('Exported 4 entries');

    for (const executeId of [IDS.saved, IDS.nearExpiry]) {
      const manifest = await manifestOf(out, executeId);
      const expected = expectedOutputs(scenario, executeId);
      for (const entry of manifest.nodes) {
        const row = rows.find((candidate) => candidate['execute_id'] === executeId && candidate['title'] === entry.title)!;
        expect(row['workflow_id']).toBe(BATCH_WORKFLOW);
        expect(row['source']).toBe(entry.source);
        expect(row['node_execute_uuid']).toBe(entry.node_execute_uuid ?? null);
        expect(row['node_id']).toBe(entry.node_id);
        expect(row['bytes']).toBe(entry.bytes);
        expect(row['sha256']).toBe(entry.sha256);
        expect(sha256(row['output'] as string)).toBe(entry.sha256);
        expect(Buffer.byteLength(row['output'] as string, 'utf8')).toBe(entry.bytes);
        expect(row).toHaveProperty('possibly_incomplete', false);
        expect(row).toHaveProperty('incomplete_reasons', []);
        expect(row).toHaveProperty('loop_index', null);
        if (entry.source === 'execute_nodes') expect(row['sha256']).toBe(expected.get(entry.node_execute_uuid!)!.sha256);
      }
    }
  });

  it('skips folder without manifest', async () => {
    const out = await makeArchive();
    await rm(path.join(folderOf(out, IDS.saved), 'manifest.json'));

    const result = await runBatchCli(['export', out]);
    const rows = result.stdout.split('\n').filter((line) => line !== '');

    expect(result.code).toBe(1);
    expect(rows).toHaveLength((await manifestOf(out, IDS.nearExpiry)).nodes.length);
    expect(result.stderr).toContain(
      `skipped ${BATCH_WORKFLOW}/${IDS.saved}/manifest.json: no manifest.json, so this execution's outputs are not exported; ` +
        'a fetch of this execution writes it again',
    );
    expect(result.stderr).toContain('from 1 manifest to stdout; 1 skipped.');
  });

  it('escapes line and paragraph separators', async () => {
    const text = '第一段\u2028第二段\u2029第三段\u0085完\u202E';
    const execution = { ...savedExecution(), record: {}, nodes: [{ ...savedExecution().nodes![0]!, text }] };
    const out = await makeArchive(batchScenario([execution]));

    const result = await runBatchCli(['export', out]);

    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(/[\u0085\u2028\u2029\u202e]/);
    expect(result.stdout).toContain('第一段\\u2028第二段\\u2029第三段\\u0085完\\u202e');
    const rows = result.stdout.split('\n').filter((line) => line !== '');
    expect(rows.map((row) => (JSON.parse(row) as { output: string }).output)).toEqual([text]);
  });

  it('counts entries not saved', async () => {
    const out = await makeArchive();
    // One entry keeps the record of its earlier file, as a re-run leaves it after that file was
    // deleted, and one never had a file.
    const manifestPath = path.join(folderOf(out, IDS.saved), 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ExecutionManifest;
    manifest.nodes[0]!.status = 'failed';
    Object.assign(manifest.nodes[1]!, { status: 'pending', file: null, bytes: null, sha256: null });
    await writeFile(manifestPath, JSON.stringify(manifest));

    const result = await runBatchCli(['export', out]);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      'Not exported: 2 entries not saved (failed, pending or expired), 1 of them with a file saved earlier that was changed or deleted since. ' +
        'Run verify to see which, and what to do.',
    );
  });

  it('singular for one entry', async () => {
    const single = { ...savedExecution(), record: {}, nodes: savedExecution().nodes!.slice(0, 1) };
    const out = await makeArchive(batchScenario([single]));

    const result = await runBatchCli(['export', out]);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`Exported 1 entry (${Buffer.byteLength('今天的归档已经完成，共处理三份报告。')} bytes) from 1 manifest to stdout.`);
  });

  it('--output replaces the file atomically', async () => {
    const out = await makeArchive();
    const target = await cleanups.folder('coze-export-');
    const file = path.join(target, 'outputs.jsonl');
    await writeFile(file, 'old content\n');

    const result = await runBatchCli(['export', out, '--output', file]);
    const lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');

    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(JSON.parse(line)).toHaveProperty('output');
    expect(await readdir(target)).toEqual(['outputs.jsonl']);
  });

  it('altered file is skipped with exit 1', async () => {
    const out = await makeArchive();
    const nearExpiry = await manifestOf(out, IDS.nearExpiry);
    await appendFile(path.join(folderOf(out, IDS.nearExpiry), nearExpiry.nodes[0]!.file!), '!');

    const result = await runBatchCli(['export', out]);
    const rows = result.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { execute_id: string });

    expect(result.code).toBe(1);
    expect(rows).toHaveLength(3);
    expect(rows.some((row) => row.execute_id === IDS.nearExpiry)).toBe(false);
    expect(result.stderr).toContain('skipped');
    expect(result.stderr).toContain('run verify');
  });

  it('waits for drain on a slow stream', async () => {
    const large = savedExecution('7431826405913473021');
    large.nodes = Array.from({ length: 6 }, (_, index) => ({
      key: `长输出${index}`,
      nodeId: String(350 + index),
      nodeExecuteUuid: `large-${index}`,
      generate: { bytes: 120_000, seed: `large-${index}` },
    }));
    const out = await makeArchive(batchScenario([large]));

    const highWaterMark = 1024;
    let maxBuffered = 0;
    let longestLine = 0;
    const received: string[] = [];
    const slow = new Writable({
      highWaterMark,
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk.toString('utf8'));
        longestLine = Math.max(longestLine, chunk.length);
        setTimeout(callback, 2);
      },
    });
    const originalWrite = slow.write.bind(slow);
    slow.write = ((chunk: string) => {
      const accepted = originalWrite(chunk);
      maxBuffered = Math.max(maxBuffered, slow.writableLength);
      return accepted;
    }) as typeof slow.write;

    const result = await exportArchive(out, slow);

    expect(result.exported).toBe(7);
    expect(received).toHaveLength(7);
    // Without backpressure the buffer would hold every line at once, over 700 KB.
    expect(maxBuffered).toBeLessThanOrEqual(highWaterMark + longestLine);
    expect(maxBuffered).toBeLessThan(300_000);
  });

  it('missing folder exits 2', async () => {
    const empty = await cleanups.folder('coze-export-empty-');
    await mkdir(path.join(empty, 'sub'));

    const result = await runBatchCli(['export', empty]);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
  });
});
